//! `ipkg doctor`: is this machine ready, and is what is installed whole?
//!
//! Checks the prefix, the bin dir and `PATH`, bubblewrap, the registries'
//! freshness, an interrupted transaction, and every installed package's
//! links, tree and receipt. Unless told only to look, it repairs what it
//! safely can: it finishes or undoes an interrupted transaction, re-creates
//! missing command links and package links from the receipts, unpacks a
//! missing tree again from the store, and removes command links into the
//! prefix that no package claims.

use std::fs;
use std::path::Path;

use serde::Serialize;

use super::lifecycle::installed;
use super::lifecycle::journal::{self, Recovered};
use super::lifecycle::lock::PrefixLock;
use super::lifecycle::unpack;
use super::{Error, Layout};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something is worth knowing.
    Warn,
    /// Broken (and not repaired).
    Fail,
    /// Was broken and is repaired.
    Fixed,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, hint: Option<String>) -> Check {
    Check {
        name: name.to_owned(),
        status,
        detail: detail.into(),
        hint,
    }
}

/// Run every check; repair when `fix` is set.
pub fn doctor(layout: &Layout, fix: bool) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    out.push(prefix_check(layout));
    out.push(path_check(layout));
    out.push(sandbox_check());
    let writable = writable(&layout.prefix);
    if !layout.state_root().exists() {
        return Ok(out);
    }
    if !writable {
        out.push(check(
            "packages",
            Status::Warn,
            "the prefix is not writable: not checking installed packages",
            Some("run `ipkg doctor` as the prefix's owner".into()),
        ));
        return Ok(out);
    }
    let _lock = PrefixLock::exclusive(layout, &|| {})?;
    out.push(match fix.then(|| journal::recover(layout)).transpose()? {
        Some(Some(Recovered::Finished { op, name })) => check(
            "journal",
            Status::Fixed,
            format!("finished the interrupted {op} of `{name}`"),
            None,
        ),
        Some(Some(Recovered::Undone { op, name })) => check(
            "journal",
            Status::Fixed,
            format!("undid the interrupted {op} of `{name}`"),
            None,
        ),
        _ if layout.journal_dir().join("tx.json").exists() => check(
            "journal",
            Status::Fail,
            "an interrupted transaction is pending",
            Some(
                "run `ipkg doctor` (or any ipkg command that changes packages) to finish it".into(),
            ),
        ),
        _ => check("journal", Status::Ok, "no interrupted transaction", None),
    });
    out.extend(package_checks(layout, fix)?);
    out.extend(registry_checks(layout));
    Ok(out)
}

fn writable(dir: &Path) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

fn prefix_check(layout: &Layout) -> Check {
    let p = &layout.prefix;
    if !p.exists() {
        let parent_ok = p
            .ancestors()
            .skip(1)
            .find(|a| a.exists())
            .is_some_and(writable);
        return check(
            "prefix",
            if parent_ok { Status::Ok } else { Status::Fail },
            format!("`{}` does not exist yet", p.display()),
            (!parent_ok).then(|| "run as root, or pass `--prefix` a directory you own".into()),
        );
    }
    if writable(p) {
        check(
            "prefix",
            Status::Ok,
            format!("`{}` is writable", p.display()),
            None,
        )
    } else {
        check(
            "prefix",
            Status::Warn,
            format!("`{}` is not writable by you", p.display()),
            Some("install as its owner, or use your own prefix with `--prefix`".into()),
        )
    }
}

fn path_check(layout: &Layout) -> Check {
    let bin = &layout.bin_dir;
    let on_path =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d == *bin));
    if on_path {
        check(
            "bin dir",
            Status::Ok,
            format!("`{}` is on PATH", bin.display()),
            None,
        )
    } else {
        check(
            "bin dir",
            Status::Warn,
            format!(
                "`{}` is not on PATH: installed commands will not be found",
                bin.display()
            ),
            Some(format!(
                "add `export PATH=\"{}:$PATH\"` to your shell's startup file",
                bin.display()
            )),
        )
    }
}

fn sandbox_check() -> Check {
    let probe = crate::sandbox::probe();
    match (&probe.bwrap, &probe.userns) {
        (None, _) => check(
            "bubblewrap",
            Status::Warn,
            "not installed: packages with hooks and `ipkg run --sandbox`/`--pure` cannot run",
            Some("install it: `apt-get install bubblewrap`".into()),
        ),
        (Some(_), Err(e)) => check(
            "bubblewrap",
            Status::Warn,
            format!("installed, but cannot make a sandbox: {e}"),
            Some(
                "allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`)"
                    .into(),
            ),
        ),
        (Some(b), Ok(())) => check(
            "bubblewrap",
            Status::Ok,
            format!(
                "{} works ({})",
                probe
                    .version
                    .clone()
                    .unwrap_or_else(|| b.display().to_string()),
                probe.limits_summary()
            ),
            None,
        ),
    }
}

fn package_checks(layout: &Layout, fix: bool) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    let receipts = installed::list(layout)?;
    let store = crate::sources::store::BlockStore::open(layout.blocks_dir())
        .map_err(|e| Error::io(layout.blocks_dir(), e))?;
    for r in &receipts {
        let name = format!("package {}", r.name);
        let Ok(cur) = r.current() else {
            out.push(check(
                &name,
                Status::Fail,
                "its receipt has no current version",
                None,
            ));
            continue;
        };
        let mut problems = Vec::new();
        let mut fixed = Vec::new();
        let cid = cur.package_cid()?;
        let tree = layout.package_tree(&cid);
        if !tree.is_dir() {
            if fix {
                let scanned = unpack::scan(&store, &cid)?;
                unpack::materialize(layout, &store, &scanned, false, &super::NoProgress)?;
                fixed.push("unpacked its missing tree again".to_owned());
            } else {
                problems.push(format!("its tree `{}` is missing", tree.display()));
            }
        }
        match journal::current_link(layout, &r.name) {
            Ok(Some(c)) if c == cur.package => {}
            Ok(_) if fix => {
                let link = layout.package_link(&r.name);
                let _ = fs::remove_file(&link);
                std::os::unix::fs::symlink(journal::link_target(&cur.package), &link)
                    .map_err(|e| Error::io(&link, e))?;
                fixed.push(format!("pointed `{}` at {}", link.display(), cur.version));
            }
            Ok(_) => problems.push("its link does not point at the current version".into()),
            Err(e) => problems.push(e.to_string()),
        }
        for (c, path) in &cur.commands {
            let link = layout.bin_dir.join(c);
            let want = layout.package_link(&r.name).join(path);
            match fs::read_link(&link) {
                Ok(t) if t == want => {}
                Err(_) if fs::symlink_metadata(&link).is_err() && fix => {
                    fs::create_dir_all(&layout.bin_dir)
                        .map_err(|e| Error::io(&layout.bin_dir, e))?;
                    std::os::unix::fs::symlink(&want, &link).map_err(|e| Error::io(&link, e))?;
                    fixed.push(format!("re-created the command link `{c}`"));
                }
                _ => problems.push(format!(
                    "the command link `{}` is missing or not ipkg's",
                    link.display()
                )),
            }
        }
        out.push(match (problems.is_empty(), fixed.is_empty()) {
            (true, true) => check(&name, Status::Ok, format!("{} is whole", cur.version), None),
            (true, false) => check(&name, Status::Fixed, fixed.join("; "), None),
            (false, _) => check(
                &name,
                Status::Fail,
                problems.join("; "),
                Some("run `ipkg doctor` to repair, or reinstall the package".into()),
            ),
        });
    }
    // Command links into the prefix that no package claims.
    if let Ok(entries) = fs::read_dir(&layout.bin_dir) {
        for entry in entries.flatten() {
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            let Ok(rest) = target.strip_prefix(&layout.prefix) else {
                continue;
            };
            let Some(std::path::Component::Normal(owner)) = rest.components().next() else {
                continue;
            };
            let owner = owner.to_string_lossy();
            let cmd = entry.file_name().to_string_lossy().into_owned();
            let claimed = receipts.iter().any(|r| {
                r.name == owner && r.current().is_ok_and(|v| v.commands.contains_key(&cmd))
            });
            if claimed {
                continue;
            }
            if fix {
                let _ = fs::remove_file(entry.path());
                out.push(check(
                    "bin dir",
                    Status::Fixed,
                    format!("removed `{cmd}`, a link into the removed package `{owner}`"),
                    None,
                ));
            } else {
                out.push(check(
                    "bin dir",
                    Status::Fail,
                    format!("`{cmd}` links into `{owner}`, which does not provide it"),
                    None,
                ));
            }
        }
    }
    Ok(out)
}

fn registry_checks(layout: &Layout) -> Vec<Check> {
    let mut out = Vec::new();
    let Ok(store) = crate::sources::store::BlockStore::open(layout.blocks_dir()) else {
        return out;
    };
    let Ok(regs) = super::publish::registry::Registry::list(layout) else {
        return out;
    };
    let now = super::publish::now();
    for reg in regs {
        let name = format!("registry {}", reg.name);
        let Ok(Some(root)) = reg.root_cid() else {
            out.push(check(&name, Status::Ok, "nothing published yet", None));
            continue;
        };
        let expires = store
            .get(&root)
            .ok()
            .and_then(|b| crate::trust::index::SignedIndex::decode(&b).ok())
            .map(|s| s.root().expires);
        out.push(match expires {
            Some(e) if e > now => check(
                &name,
                Status::Ok,
                format!(
                    "index {} valid for {} more days",
                    reg.state.sequence,
                    (e - now) / 86_400
                ),
                None,
            ),
            Some(_) => check(
                &name,
                Status::Warn,
                "its index has expired: clients refuse it",
                Some(format!("re-sign it by publishing again to `{}`", reg.name)),
            ),
            None => check(
                &name,
                Status::Fail,
                "its index is missing or does not verify",
                None,
            ),
        });
    }
    out
}

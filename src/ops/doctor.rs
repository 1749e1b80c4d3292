//! `ipkg doctor`: is this machine ready, and is what is installed whole?
//!
//! Checks the prefix, the bin dir and `PATH`, bubblewrap, the registries'
//! freshness, an interrupted transaction, and every installed package's
//! links, tree and receipt. Unless told only to look, it repairs what it
//! safely can: it finishes or undoes an interrupted transaction, re-creates
//! missing command links and package links from the receipts, unpacks a
//! missing tree again from the store, and removes command links into the
//! prefix that no package claims.
//!
//! Damaged state (a receipt, the journal, a pin file or a registry file that
//! does not parse) is rebuilt from what is still there (the `<prefix>/<name>`
//! links, the unpacked trees' manifests, the store) and the damaged file is
//! moved to `.ipkg/quarantine/<time>-<file>`, never deleted. Installed trees
//! are checked file by file as `ipkg verify` does. Temporary files a killed
//! ipkg left behind are removed.

use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::content::cid::parse;

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
    let mut out = vec![
        prefix_check(layout),
        path_check(layout),
        sandbox_check(),
        mounts_check(layout, fix),
    ];
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
    let recovered = match fix.then(|| journal::recover(layout)).transpose() {
        Err(Error::Damaged { path, reason, .. }) => {
            let moved = quarantine(layout, &path, "tx.json")?;
            out.push(check(
                "journal",
                Status::Fixed,
                format!(
                    "the transaction journal was unreadable ({reason}): moved it to `{}`",
                    moved.display()
                ),
                None,
            ));
            None
        }
        other => Some(other?),
    };
    if let Some(recovered) = recovered {
        out.push(match recovered {
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
                    "run `ipkg doctor` (or any ipkg command that changes packages) to finish it"
                        .into(),
                ),
            ),
            _ => check("journal", Status::Ok, "no interrupted transaction", None),
        });
    }
    out.extend(state_checks(layout, fix)?);
    out.extend(package_checks(layout, fix)?);
    out.extend(registry_checks(layout, fix));
    out.extend(key_checks());
    let removed = stale_temp_files(layout);
    if fix {
        for p in &removed {
            let _ = fs::remove_file(p);
        }
    }
    if !removed.is_empty() {
        out.push(check(
            "temporary files",
            if fix { Status::Fixed } else { Status::Warn },
            format!(
                "{} {} left by an interrupted ipkg",
                if fix { "removed" } else { "found" },
                removed.len()
            ),
            None,
        ));
    }
    Ok(out)
}

/// Move a damaged file to `<prefix>/.ipkg/quarantine/<unix time>-<label>`
/// (never deleting it: the user may want what is in it). Returns where.
pub fn quarantine(layout: &Layout, path: &Path, label: &str) -> Result<std::path::PathBuf, Error> {
    let dir = layout.state_root().join("quarantine");
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let now = super::publish::now();
    let mut dest = dir.join(format!("{now}-{label}"));
    let mut n = 1;
    while fs::symlink_metadata(&dest).is_ok() {
        dest = dir.join(format!("{now}-{label}.{n}"));
        n += 1;
    }
    fs::rename(path, &dest).map_err(|e| Error::io(path, e))?;
    if let Some(parent) = path.parent()
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(dest)
}

/// Temporary files older than this are a killed process's, not a running
/// one's (publish writes some without the prefix lock).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Temporary files a killed ipkg left behind (call with the prefix lock
/// held): the atomic writes' `.tmp-*` in the state directories, the link
/// flips' `.tmp-link-*` and the bin dir's `.ipkg-tmp-*`. Files in
/// directories that publish also writes (pins, registries) only once stale.
pub fn stale_temp_files(layout: &Layout) -> Vec<std::path::PathBuf> {
    let root = layout.state_root();
    let mut dirs = vec![
        (root.clone(), false),
        (layout.state_dir(), false),
        (layout.state_dir().join("packages"), false),
        (layout.journal_dir(), false),
        (layout.bin_dir.clone(), false),
        (layout.pins_dir(), true),
    ];
    for name in super::publish::registry::Registry::names(layout) {
        dirs.push((
            super::publish::registry::registries_dir(layout).join(name),
            true,
        ));
    }
    let mut out = Vec::new();
    for (dir, shared) in dirs {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with(".tmp-") || name.starts_with(".ipkg-tmp-")) {
                continue;
            }
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                continue;
            }
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP);
            if shared && !old {
                continue;
            }
            out.push(entry.path());
        }
    }
    out
}

/// Remove what [`stale_temp_files`] lists (for `gc`); returns how many.
pub fn remove_temp_files(layout: &Layout) -> usize {
    stale_temp_files(layout)
        .iter()
        .filter(|p| fs::remove_file(p).is_ok())
        .count()
}

/// Receipts and pin files that do not parse: rebuilt from the links, the
/// trees and the registries, the damaged files quarantined.
fn state_checks(layout: &Layout, fix: bool) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    for (name, err) in installed::damaged_receipts(layout) {
        let what = format!("receipt {name}");
        if !fix {
            out.push(check(&what, Status::Fail, err.to_string(), err.hint()));
            continue;
        }
        let rebuilt = installed::rebuild(layout, &name);
        let path = installed::receipt_file(layout, &name);
        let moved = quarantine(layout, &path, &format!("{name}.json"))?;
        match rebuilt {
            Ok(r) => {
                installed::store(layout, &name, Some(&r))?;
                out.push(check(
                    &what,
                    Status::Fixed,
                    format!(
                        "rebuilt it from `{}` ({} version(s)); the damaged one is `{}`",
                        layout.package_link(&name).display(),
                        r.versions.len(),
                        moved.display()
                    ),
                    None,
                ));
            }
            Err(e) => out.push(check(
                &what,
                Status::Fixed,
                format!(
                    "moved it to `{}`: nothing is installed to rebuild it from ({e})",
                    moved.display()
                ),
                None,
            )),
        }
    }
    for (alias, path, err) in super::resolve::subscriptions::damaged_files(layout) {
        let what = format!("subscription {alias}");
        if fix {
            let moved = quarantine(layout, &path, &format!("subscription-{alias}.toml"))?;
            out.push(check(
                &what,
                Status::Warn,
                format!("its file was damaged: moved it to `{}`", moved.display()),
                Some(format!(
                    "subscribe again with `ipkg registry add {alias} KEY` (the key is in the moved file)"
                )),
            ));
        } else {
            out.push(check(&what, Status::Fail, err.to_string(), err.hint()));
        }
    }
    let pins = super::pins::Pins::open(layout.pins_dir())?;
    let bad = pins.damaged();
    if !bad.is_empty() {
        if fix {
            for p in &bad {
                let label = p
                    .file_name()
                    .map(|n| format!("pin-{}", n.to_string_lossy()))
                    .unwrap_or_default();
                quarantine(layout, p, &label)?;
            }
        } else {
            out.push(check(
                "pins",
                Status::Fail,
                format!(
                    "{} pin file(s) are damaged, e.g. `{}`",
                    bad.len(),
                    bad[0].display()
                ),
                Some("run `ipkg doctor` to rebuild them".into()),
            ));
        }
    }
    if fix {
        // Pin again what installed packages and local registries need
        // (idempotent: a label already there is not rewritten).
        let mut added = 0;
        for r in installed::list(layout)? {
            for v in r.versions.values() {
                let label = super::lifecycle::install::pin_label(&r.name, &v.version);
                let release = v.release.as_deref().and_then(|c| parse(c).ok());
                for cid in v.package_cid().ok().into_iter().chain(release) {
                    if !pins.labels(&cid)?.contains(&label) {
                        pins.add(&cid, &label)?;
                        added += 1;
                    }
                }
            }
        }
        added += repin_registries(layout, &pins)?;
        if !bad.is_empty() || added > 0 {
            out.push(check(
                "pins",
                Status::Fixed,
                format!(
                    "moved {} damaged pin file(s) to `.ipkg/quarantine/`; pinned {added} root(s) again",
                    bad.len()
                ),
                None,
            ));
        }
    }
    Ok(out)
}

/// Pin every block a local registry's index vouches for with its label.
fn repin_registries(layout: &Layout, pins: &super::pins::Pins) -> Result<usize, Error> {
    let Ok(store) = crate::sources::store::BlockStore::open(layout.blocks_dir()) else {
        return Ok(0);
    };
    let mut added = 0;
    let mut pin = |cid: &crate::content::Cid, label: &str| -> Result<(), Error> {
        if !pins.labels(cid)?.contains(label) {
            pins.add(cid, label)?;
            added += 1;
        }
        Ok(())
    };
    for name in super::publish::registry::Registry::names(layout) {
        let Ok(reg) = super::publish::registry::Registry::open(layout, &name) else {
            continue;
        };
        let (Ok(Some(root)), Ok(index)) = (reg.root_cid(), reg.load_index(&store)) else {
            continue;
        };
        let label = super::publish::registry::pin_label(&name);
        pin(&root, &label)?;
        for doc in index.packages().values() {
            if let Ok(block) = doc.to_block() {
                pin(&block.cid, &label)?;
            }
            for e in &doc.releases {
                pin(&e.release, &label)?;
                pin(&e.package, &label)?;
            }
        }
    }
    Ok(added)
}

/// Key files that other users can read.
fn key_checks() -> Vec<Check> {
    let Ok(keys) = super::publish::keystore::KeyStore::open_default() else {
        return Vec::new();
    };
    keys.loose_files()
        .into_iter()
        .map(|path| {
            check(
                "keys",
                Status::Warn,
                format!("`{}` is readable by other users", path.display()),
                Some(format!("make it private: `chmod 600 {}`", path.display())),
            )
        })
        .collect()
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

/// Lazy mounts (`ipkg mount`, `run --lazy`) whose ipkg died: the records the
/// last command left, and any dead `fuse.ipkg` mount in this namespace.
fn mounts_check(layout: &Layout, fix: bool) -> Check {
    let mut dead = super::mount::reap_stale(layout);
    // Only this prefix's lazy mounts: another prefix's are its doctor's.
    let lazy = super::mount::lazy_dir(layout);
    dead.extend(
        super::mount::dead_mounts(false)
            .into_iter()
            .filter(|m| m.starts_with(&lazy)),
    );
    if fix {
        for m in dead.iter().filter(|m| m.starts_with(&lazy)) {
            super::mount::detach(m);
        }
    }
    if dead.is_empty() {
        return check("mounts", Status::Ok, "no dead lazy mounts", None);
    }
    let list: Vec<String> = dead.iter().map(|p| format!("`{}`", p.display())).collect();
    if fix {
        check(
            "mounts",
            Status::Fixed,
            format!("detached dead lazy mounts: {}", list.join(", ")),
            None,
        )
    } else {
        check(
            "mounts",
            Status::Warn,
            format!("dead lazy mounts: {}", list.join(", ")),
            Some("run `ipkg doctor` to detach them".into()),
        )
    }
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
        let mut reinstall = false;
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
        if tree.is_dir() {
            match super::lifecycle::verify::verify_one(layout, &store, r) {
                Ok(v) => {
                    let files: Vec<String> = v
                        .problems
                        .iter()
                        .filter(|p| p.kind != "link")
                        .map(|p| format!("`{}` ({}: {})", p.path, p.kind, p.detail))
                        .collect();
                    if !files.is_empty() {
                        problems.push(format!(
                            "{} file(s) differ from the package: {}",
                            files.len(),
                            files.join(", ")
                        ));
                        reinstall = true;
                    }
                }
                Err(e) => problems.push(format!("cannot check its files: {e}")),
            }
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
                Some(if reinstall {
                    format!("restore it with `ipkg install --reinstall {}`", r.name)
                } else {
                    "run `ipkg doctor` to repair, or reinstall the package".into()
                }),
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

fn registry_checks(layout: &Layout, fix: bool) -> Vec<Check> {
    let mut out = Vec::new();
    let Ok(store) = crate::sources::store::BlockStore::open(layout.blocks_dir()) else {
        return out;
    };
    let now = super::publish::now();
    for name in super::publish::registry::Registry::names(layout) {
        let dir = super::publish::registry::registries_dir(layout).join(&name);
        if !dir.join("registry.toml").exists() && !dir.join("journal.json").exists() {
            continue;
        }
        let opened = super::publish::registry::Registry::open(layout, &name);
        let pending = dir.join("journal.json").exists();
        if opened.is_err() || pending {
            let what = format!("registry {name}");
            let err = opened.as_ref().err().map(|e| e.to_string());
            if !fix {
                out.push(check(
                    &what,
                    Status::Fail,
                    err.unwrap_or_else(|| "an interrupted publish is pending".into()),
                    Some(format!(
                        "run `ipkg registry repair {name}` (or `ipkg doctor`)"
                    )),
                ));
                continue;
            }
            let repaired = super::publish::keystore::KeyStore::open_default()
                .and_then(|keys| super::publish::repair(layout, &keys, &name));
            match repaired {
                Ok(r) => out.push(check(
                    &what,
                    Status::Fixed,
                    format!(
                        "{} (index sequence {})",
                        if r.changed {
                            "rebuilt `registry.toml` from the last signed index in the store"
                        } else {
                            "finished the interrupted publish"
                        },
                        r.sequence
                    ),
                    None,
                )),
                Err(e) => {
                    out.push(check(&what, Status::Fail, e.to_string(), e.hint()));
                    continue;
                }
            }
        }
        let Ok(reg) = super::publish::registry::Registry::open(layout, &name) else {
            continue;
        };
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

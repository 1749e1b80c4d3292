//! `ipkg run --sandbox`: run a package's program under bubblewrap, with the
//! host's system directories read-only and nothing personal.
//!
//! The program sees, read-only: its package at `/pkg`; the host's `/usr`,
//! `/bin`, `/sbin`, `/lib*` (as the host has them, directories or merged-usr
//! symlinks); from `/etc` only what the dynamic loader and the C library need
//! (`ld.so.cache`, `ld.so.conf*`, `alternatives`, `localtime`), plus with
//! `--net` name resolution and CA certificates (`resolv.conf`, `hosts`,
//! `nsswitch.conf`, `host.conf`, `gai.conf`, `ssl`, `pki`,
//! `ca-certificates`). Private and empty: `/tmp` and `HOME`
//! (`/home/sandbox`). No network unless `--net`, which is the host's own
//! network namespace (loopback services and abstract Unix sockets included),
//! not a filtered one: docs/sandbox.md says so. Each `--bind PATH` shares a
//! host path read-write at the same place; when the working directory is
//! under one of them the program starts there, else in `HOME`. The host's
//! `/etc/passwd`, home directories and everything else are absent. The
//! environment holds `PATH`, `HOME` and the terminal and locale variables
//! (`TERM`, `COLORTERM`, `NO_COLOR`, `LANG`, `LC_*`, `TZ`) of the caller.

use std::path::{Path, PathBuf};

use crate::sandbox::{Limits, RunOutcome, Sandbox};

use super::super::{Error, Layout};

/// How a sandboxed run differs from the defaults.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Host paths shared read-write, at the same path inside.
    pub binds: Vec<PathBuf>,
    /// Keep the host network.
    pub net: bool,
    pub limits: Limits,
}

const SYSTEM_DIRS: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];
const ETC_ALWAYS: [&str; 5] = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
];
const ETC_NET: [&str; 8] = [
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
];
const PASSED_ENV: [&str; 5] = ["TERM", "COLORTERM", "NO_COLOR", "LANG", "TZ"];
/// `HOME` inside a sandboxed run.
pub const SANDBOX_HOME: &str = "/home/sandbox";

/// Run `command` (a path inside `pkg_dir`) with `args` in the sandbox
/// described in the module doc. `layout` is for the caller's bookkeeping and
/// later use (hooks); nothing is written under it.
pub fn run_sandboxed(
    _layout: &Layout,
    pkg_dir: &Path,
    command: &str,
    args: &[String],
    opts: &SandboxOptions,
) -> Result<RunOutcome, Error> {
    let rel = command.trim_start_matches("./").trim_start_matches('/');
    let host_command = if rel.is_empty() {
        pkg_dir.to_path_buf()
    } else {
        pkg_dir.join(rel)
    };
    if host_command.symlink_metadata().is_err() {
        return Err(Error::NoCommand {
            program: pkg_dir.display().to_string(),
            reason: format!("`{rel}` does not exist in the package"),
        });
    }
    let mut sb = system_sandbox(opts.net);
    sb = sb
        .ro_bind(pkg_dir, "/pkg")
        .proc("/proc")
        .dev("/dev")
        .tmpfs("/tmp")
        .tmpfs(SANDBOX_HOME);
    for bind in &opts.binds {
        let abs = std::path::absolute(bind).map_err(|e| Error::io(bind, e))?;
        if abs.symlink_metadata().is_err() {
            return Err(Error::Usage(format!(
                "`--bind {}`: no such path",
                bind.display()
            )));
        }
        sb = sb.bind(&abs, &abs);
    }
    let cwd = std::env::current_dir().ok();
    let start_in = cwd
        .filter(|c| {
            opts.binds
                .iter()
                .filter_map(|b| std::path::absolute(b).ok())
                .any(|b| c.starts_with(b))
        })
        .unwrap_or_else(|| PathBuf::from(SANDBOX_HOME));
    sb = sb
        .remount_ro("/")
        .share_net(opts.net)
        .chdir(start_in)
        .env(
            "PATH",
            "/pkg/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        )
        .env("HOME", SANDBOX_HOME)
        .limits(opts.limits);
    for (k, v) in std::env::vars_os() {
        let Some(name) = k.to_str() else { continue };
        if PASSED_ENV.contains(&name) || name.starts_with("LC_") {
            sb = sb.env(k, v);
        }
    }
    let inside = if rel.is_empty() {
        "/pkg".to_string()
    } else {
        format!("/pkg/{rel}")
    };
    Ok(sb.run(&inside, args)?)
}

/// The host's system directories and the `/etc` files programs need (see
/// the module doc), on an empty root.
fn system_sandbox(net: bool) -> Sandbox {
    let mut sb = Sandbox::new().tmpfs("/");
    for dir in SYSTEM_DIRS {
        sb = host_entry(sb, dir);
    }
    for file in ETC_ALWAYS {
        sb = host_entry(sb, file);
    }
    if net {
        for file in ETC_NET {
            sb = host_entry(sb, file);
        }
    }
    sb
}

/// Mount a host system path as it is: a symlink stays a symlink, a directory
/// or file is bound read-only; a missing one is skipped.
fn host_entry(sb: Sandbox, path: &str) -> Sandbox {
    let host = Path::new(path);
    match host.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(host) {
            Ok(target) => sb.symlink(target, host),
            Err(_) => sb,
        },
        Ok(_) => sb.ro_bind(host, host),
        Err(_) => sb,
    }
}

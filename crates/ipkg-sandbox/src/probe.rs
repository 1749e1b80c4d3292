//! Can this machine run sandboxes? Used before a run and by `ipkg doctor`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Limits;
use super::cgroup::Cgroup;

/// What [`probe`] found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The `bwrap` that would be used.
    pub bwrap: Option<PathBuf>,
    /// `bwrap --version`, e.g. `bubblewrap 0.8.0`.
    pub version: Option<String>,
    /// `Ok` when bubblewrap could make a user, PID and network namespace;
    /// else bubblewrap's message.
    pub userns: Result<(), String>,
    /// Memory and process limits can use a cgroup (else rlimits).
    pub cgroup: bool,
    /// The caller is root: without a cgroup it has no process limit
    /// (`RLIMIT_NPROC` does not apply to uid 0).
    pub root: bool,
}

impl Probe {
    /// Sandboxes can run.
    pub fn ok(&self) -> bool {
        self.bwrap.is_some() && self.userns.is_ok()
    }

    /// One line on how `--memory` and `--pids` are enforced here.
    pub fn limits_summary(&self) -> &'static str {
        match (self.cgroup, self.root) {
            (true, _) => "memory and process limits use a cgroup",
            (false, false) => {
                "memory and process limits use rlimits (RLIMIT_AS per process, RLIMIT_NPROC in the sandbox's user namespace)"
            }
            (false, true) => {
                "no writable cgroup: memory is limited per process (RLIMIT_AS) and root has no process limit"
            }
        }
    }
}

/// The `bwrap` to use: `IPKG_BWRAP` if set, else the first on `PATH`.
pub fn find_bwrap() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IPKG_BWRAP").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
}

/// Look for bubblewrap, check that it can make namespaces, and whether limits
/// can use a cgroup. Runs `bwrap` twice (a few milliseconds).
pub fn probe() -> Probe {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let cgroup = Cgroup::create(&Limits {
        memory: Some(64 << 20),
        pids: Some(16),
        ..Limits::default()
    })
    .is_some();
    let Some(bwrap) = find_bwrap() else {
        return Probe {
            bwrap: None,
            version: None,
            userns: Err("bubblewrap is not installed".into()),
            cgroup,
            root,
        };
    };
    let version = Command::new(&bwrap)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let userns = userns_check(&bwrap);
    Probe {
        bwrap: Some(bwrap),
        version,
        userns,
        cgroup,
        root,
    }
}

/// Can `bwrap` make a user, PID and network namespace? `Err` holds its message.
pub(super) fn userns_check(bwrap: &Path) -> Result<(), String> {
    match Command::new(bwrap)
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--",
        ])
        .arg(bwrap)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
    {
        Err(e) => Err(format!("cannot run `{}`: {e}", bwrap.display())),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let msg = String::from_utf8_lossy(&o.stderr).trim().to_string();
            Err(if msg.is_empty() {
                format!("bubblewrap failed ({})", o.status)
            } else {
                msg
            })
        }
    }
}

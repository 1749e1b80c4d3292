//! A throwaway cgroup for one sandbox run, when the caller may make one.
//!
//! Tried in order: cgroup v2 (a child of the caller's own cgroup, when the
//! `memory`/`pids` controllers are enabled in its `cgroup.subtree_control`, as
//! systemd delegation or root gives), then cgroup v1 (`/sys/fs/cgroup/memory`
//! and `/sys/fs/cgroup/pids`, writable by root). Any failure means "no
//! cgroup": the caller falls back to rlimits. bubblewrap joins the cgroup
//! between fork and exec, so nothing of the sandbox ever runs outside it.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::Limits;

/// bubblewrap and its init (PID 1 of the sandbox) are in the cgroup too.
const BWRAP_PROCESSES: u64 = 2;

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub(super) struct Cgroup {
    v2: bool,
    /// One directory under v2; one per controller under v1.
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
}

impl Cgroup {
    pub(super) fn create(limits: &Limits) -> Option<Cgroup> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!(
            "ipkg-sandbox-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Cgroup::create_v2(&own, &name, limits).or_else(|| Cgroup::create_v1(&own, &name, limits))
    }

    fn create_v2(own: &str, name: &str, limits: &Limits) -> Option<Cgroup> {
        let root = Path::new("/sys/fs/cgroup");
        if !root.join("cgroup.controllers").exists() {
            return None;
        }
        let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let base = root.join(rel.trim_start_matches('/'));
        let needed: Vec<&str> = [limits.memory.map(|_| "memory"), limits.pids.map(|_| "pids")]
            .into_iter()
            .flatten()
            .collect();
        let enabled = fs::read_to_string(base.join("cgroup.subtree_control")).ok()?;
        if !needed
            .iter()
            .all(|c| enabled.split_whitespace().any(|e| e == *c))
        {
            return None;
        }
        let dir = base.join(name);
        fs::create_dir(&dir).ok()?;
        let cg = Cgroup {
            v2: true,
            memory: limits.memory.map(|_| dir.clone()),
            pids: limits.pids.map(|_| dir.clone()),
        };
        let ok = (|| -> io::Result<()> {
            if let Some(bytes) = limits.memory {
                fs::write(dir.join("memory.max"), bytes.to_string())?;
                // Hit the limit rather than swap past it.
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(n) = limits.pids {
                fs::write(
                    dir.join("pids.max"),
                    (u64::from(n) + BWRAP_PROCESSES).to_string(),
                )?;
            }
            Ok(())
        })();
        ok.ok().map(|_| cg)
    }

    fn create_v1(own: &str, name: &str, limits: &Limits) -> Option<Cgroup> {
        let dir_for = |controller: &str| -> Option<PathBuf> {
            let rel = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                let controllers = parts.next()?;
                let path = parts.next()?;
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then_some(path)
            })?;
            let mount = Path::new("/sys/fs/cgroup").join(controller);
            let dir = mount.join(rel.trim_start_matches('/')).join(name);
            fs::create_dir(&dir).ok().map(|_| dir)
        };
        let mut cg = Cgroup {
            v2: false,
            memory: None,
            pids: None,
        };
        if let Some(bytes) = limits.memory {
            let dir = dir_for("memory")?;
            cg.memory = Some(dir.clone());
            fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string()).ok()?;
            let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
        }
        if let Some(n) = limits.pids {
            let dir = dir_for("pids")?;
            cg.pids = Some(dir.clone());
            fs::write(
                dir.join("pids.max"),
                (u64::from(n) + BWRAP_PROCESSES).to_string(),
            )
            .ok()?;
        }
        Some(cg)
    }

    fn dirs(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = Vec::new();
        for d in [&self.memory, &self.pids].into_iter().flatten() {
            if !v.contains(&d.as_path()) {
                v.push(d);
            }
        }
        v
    }

    /// The `cgroup.procs` files a process writes itself into, prepared for
    /// use between fork and exec.
    pub(super) fn procs_files(&self) -> Vec<CString> {
        self.dirs()
            .into_iter()
            .filter_map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).ok())
            .collect()
    }

    pub(super) fn memory_exceeded(&self) -> bool {
        let Some(dir) = &self.memory else {
            return false;
        };
        if self.v2 {
            let events = fs::read_to_string(dir.join("memory.events")).unwrap_or_default();
            counter(&events, "oom_kill") > 0 || counter(&events, "oom") > 0
        } else {
            let control = fs::read_to_string(dir.join("memory.oom_control")).unwrap_or_default();
            counter(&control, "oom_kill") > 0 || counter(&control, "under_oom") > 0
        }
    }

    pub(super) fn pids_exceeded(&self) -> bool {
        let Some(dir) = &self.pids else {
            return false;
        };
        let events = fs::read_to_string(dir.join("pids.events")).unwrap_or_default();
        counter(&events, "max") > 0
    }

    /// SIGKILL everything still in the cgroup.
    pub(super) fn kill_all(&self) {
        if self.v2
            && let Some(dir) = self.dirs().first()
            && fs::write(dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for dir in self.dirs() {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill takes a pid and a signal.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for dir in self.dirs() {
            // Processes may take a moment to leave after SIGKILL.
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }
    }
}

/// `name N` in a cgroup key-value file.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

/// Move the calling process into the cgroup whose `cgroup.procs` is `file`.
/// Async-signal-safe: called between fork and exec.
pub(super) fn join(file: &CString) -> io::Result<()> {
    // SAFETY: `file` is a valid C string; open/write/close are
    // async-signal-safe.
    unsafe {
        let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

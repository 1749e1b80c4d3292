//! Leases: a tree a running program uses is a root for `gc`.
//!
//! `ipkg run` (plain or `--sandbox`) takes a lease on the package tree it
//! runs from before it lets go of the prefix lock: a file
//! `<prefix>/.ipkg/run-leases/<pid>-<n>-<kind>-<name>` on which it holds a
//! shared `flock(2)`. A plain run replaces itself with the program and the
//! lease's descriptor stays open across `exec` (and in the program's
//! children, unless they close it), so the lease lasts exactly as long as the
//! program. `gc`, holding the prefix lock, tries each lease exclusively
//! without waiting: one it cannot lock is live and its tree is kept; one it
//! can is stale (its holder is gone) and is removed.
//!
//! A lease is made under a temporary name, locked, then renamed into place,
//! so `gc` never sees a lease name whose lock is not yet held. Pure runs
//! (`run --pure`, `execute`) need none: they hold the store lock for their
//! whole run, and `gc` waits for it.
//!
//! Taking a lease needs write access to the prefix; a user running a
//! program from a prefix they cannot write (another user's) gets none, and
//! that prefix's owner may collect the tree while it runs.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Error, Layout};

/// What a lease keeps: a package tree (`.ipkg/pkgs/<name>`).
pub const PKGS: &str = "pkgs";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A held lease; dropping it releases the lock and removes the file.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
}

impl Lease {
    /// Lease the tree `<kind>/<name>`. `None` when the prefix is not ours to
    /// write (see the module doc). Callers take it while they hold the
    /// prefix lock (or the store lock), and check the tree is still there.
    pub fn take(layout: &Layout, kind: &str, name: &str) -> Result<Option<Lease>, Error> {
        let dir = layout.state_root().join("run-leases");
        if let Err(e) = fs::create_dir_all(&dir) {
            return match e.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Ok(None),
                _ => Err(Error::io(&dir, e)),
            };
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let final_path = dir.join(format!("{pid}-{n}-{kind}-{name}"));
        for attempt in 0.. {
            let tmp = dir.join(format!(".tmp-{pid}-{n}-{attempt}"));
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
                Err(e) => return Err(Error::io(&tmp, e)),
            };
            file.lock_shared().map_err(|e| Error::io(&tmp, e))?;
            match fs::rename(&tmp, &final_path) {
                Ok(()) => {
                    return Ok(Some(Lease {
                        file,
                        path: final_path,
                    }));
                }
                // A gc took our unlocked temporary for a stale one: again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 8 => continue,
                Err(e) => return Err(Error::io(&final_path, e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// Keep the lease open in a program this process `exec`s: the lock then
    /// lasts as long as the program.
    pub fn keep_across_exec(&self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this lease owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The trees (`<kind>/<name>`) that live leases keep. Stale leases (and
/// temporaries no one holds) are removed unless `dry_run`. Called by `gc`
/// under the prefix lock.
pub fn live(layout: &Layout, dry_run: bool) -> Result<HashSet<(String, String)>, Error> {
    let dir = layout.state_root().join("run-leases");
    let mut live = HashSet::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(live),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Err(TryLockError::WouldBlock) => {
                let name = entry.file_name().to_string_lossy().into_owned();
                // `<pid>-<n>-<kind>-<name>`. A `.tmp-` one is being made by
                // a process that holds the prefix lock, so not during a gc.
                if name.starts_with('.') {
                    continue;
                }
                let mut parts = name.splitn(4, '-');
                if let (Some(_), Some(_), Some(kind), Some(tree)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                {
                    live.insert((kind.to_string(), tree.to_string()));
                }
            }
            Ok(()) => {
                if !dry_run {
                    let _ = fs::remove_file(&path);
                }
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
    }
    Ok(live)
}

//! The prefix lock: one writer at a time for everything installed.
//!
//! Every command that changes installed state (install, switch, remove, gc,
//! …) holds `<prefix>/.ipkg/lock` exclusively for its whole run, and first
//! finishes or undoes a transaction a killed process left behind (see
//! [`super::journal`]). Readers (`list`, `info`, `which`) take it shared, so
//! they never see a receipt and a link from two different moments.
//!
//! The lock is an `flock(2)` on an open file: the kernel drops it when the
//! holder dies, so a killed ipkg never leaves a stale lock.

use std::fs::{self, File, OpenOptions, TryLockError};

use super::{Error, Layout};

/// A held prefix lock; released on drop.
#[derive(Debug)]
pub struct PrefixLock {
    _file: Option<File>,
}

impl PrefixLock {
    fn open(layout: &Layout) -> Result<File, Error> {
        let path = layout.lock_path();
        let root = layout.state_root();
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }

    /// Take the lock exclusively, calling `waiting` once if another process
    /// holds it (so the user learns why nothing happens).
    pub fn exclusive(layout: &Layout, waiting: &dyn Fn()) -> Result<PrefixLock, Error> {
        let file = Self::open(layout)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(|e| Error::io(layout.lock_path(), e))?;
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(layout.lock_path(), e)),
        }
        Ok(PrefixLock { _file: Some(file) })
    }

    /// Take the lock shared (for readers). Opens the lock read-only, so a
    /// user may read a prefix they cannot write; a prefix with nothing in it
    /// yet needs no lock.
    pub fn shared(layout: &Layout) -> Result<PrefixLock, Error> {
        let path = layout.lock_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PrefixLock { _file: None });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        file.lock_shared().map_err(|e| Error::io(&path, e))?;
        Ok(PrefixLock { _file: Some(file) })
    }
}

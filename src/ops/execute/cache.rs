//! The trees cached for runs (`<prefix>/.ipkg/run/<cid>`,
//! `<prefix>/.ipkg/execute/rootfs/<cid>`) are the cache owner's alone.
//!
//! A tree is written under a temporary name, sealed ([`seal`]: no write bit
//! for group or others, no setuid, setgid or sticky bit, directories at most
//! 0755) and renamed into place. Before a cached tree is used again it is
//! checked ([`is_sound`]): every entry owned by the user running ipkg and
//! writable by nobody else, so no other user can have changed a byte of it.
//! A tree that fails (a directory made world-writable, a file someone else
//! owns) is moved aside, removed and made again from the store. The check is
//! a walk of `lstat` calls, no reading of file contents: a tree the owner
//! has changed themselves is their own business, like any file of theirs.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Bits a cached entry may not have: write for group and others, setuid,
/// setgid, sticky.
const FORBIDDEN: u32 = 0o7022;

fn own_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Clear the forbidden bits of every entry under (and of) `root`, without
/// following symlinks; directories keep `u+rwx` so the tree can be removed.
pub fn seal(root: &Path) -> io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.mode() & 0o7777;
        let mut want = mode & !FORBIDDEN;
        if meta.is_dir() {
            want |= 0o700;
            for entry in fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
        if want != mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(want))?;
        }
    }
    Ok(())
}

/// Every entry under (and of) `root` is owned by the user running ipkg and
/// has none of the forbidden bits (symlinks: owned by that user).
pub fn is_sound(root: &Path) -> bool {
    let uid = own_uid();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return false;
        };
        if meta.uid() != uid {
            return false;
        }
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.mode() & FORBIDDEN != 0 {
            return false;
        }
        if meta.is_dir() {
            let Ok(entries) = fs::read_dir(&path) else {
                return false;
            };
            for entry in entries {
                let Ok(entry) = entry else { return false };
                stack.push(entry.path());
            }
        }
    }
    true
}

/// The directory holding cached trees exists, is ours and is writable by
/// nobody else (so no other user can swap a whole tree).
pub fn secure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    if meta.uid() != own_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "owned by another user",
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & FORBIDDEN != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & !FORBIDDEN))?;
    }
    Ok(())
}

//! Unpack a `.tar` or `.tar.gz` root file system, refusing anything that could
//! land outside the destination.
//!
//! Every entry path must be relative and free of `..`; a symlink's target must
//! stay inside the tree ([`crate::ops::content::get::check_symlink`]); a hard link must
//! name an earlier regular file of the same archive; no entry is written
//! through a symlink (each parent must be a real directory made by the
//! unpacking itself); devices, FIFOs and sockets are refused; permission bits
//! are kept without setuid, setgid or sticky. The tree is built in a temporary
//! directory beside `dest` and renamed into place, so a refused archive leaves
//! nothing behind.

use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::ops::Error;
use crate::ops::content::get::check_symlink;

/// Unpack the archive read from `reader` into `dest`, which must not exist.
/// gzip is detected by its magic number.
pub fn unpack(reader: impl Read, dest: &Path, what: &str) -> Result<(), Error> {
    let mut reader = BufReader::new(reader);
    let gz = {
        use std::io::BufRead;
        let head = reader.fill_buf().map_err(|e| Error::io(what, e))?;
        head.starts_with(&[0x1f, 0x8b])
    };
    let stream: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".ipkg-rootfs-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let root = tmp.path().join("root");
    fs::create_dir(&root).map_err(|e| Error::io(&root, e))?;
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|e| Error::io(what, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(what, e))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let refuse = |reason: &str| Error::Unsafe {
            path: format!("{what}: {shown}"),
            reason: reason.to_string(),
        };
        let rel = clean_path(&raw).ok_or_else(|| refuse("the path is absolute or has `..`"))?;
        if rel.is_empty() {
            // `./` itself.
            continue;
        }
        let target = make_parents(&root, &rel).map_err(|e| match e {
            ParentError::Io(p, e) => Error::io(p, e),
            ParentError::NotADir => refuse("a parent directory is a symlink or a file"),
        })?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let kind = entry.header().entry_type();
        // An entry replacing an earlier one must not follow a symlink there.
        if let Ok(meta) = target.symlink_metadata()
            && !(meta.is_dir() && kind.is_dir())
        {
            if meta.is_dir() {
                return Err(refuse("the path is both a directory and something else"));
            }
            fs::remove_file(&target).map_err(|e| Error::io(&target, e))?;
        }
        if kind.is_dir() {
            if target.symlink_metadata().is_err() {
                fs::create_dir(&target).map_err(|e| Error::io(&target, e))?;
            }
            dirs.push((target, mode | 0o700));
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(|e| Error::io(&target, e))?;
            io::copy(&mut entry, &mut out).map_err(|e| Error::io(&target, e))?;
            out.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&target, e))?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("a symlink without a target"))?;
            let link = std::str::from_utf8(&link)
                .map_err(|_| refuse("the symlink target is not UTF-8"))?
                .to_string();
            check_symlink(&rel, &link).map_err(|_| {
                refuse(&format!(
                    "the symlink points to `{link}`, outside the root file system"
                ))
            })?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| Error::io(&target, e))?;
        } else if kind.is_hard_link() {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("a hard link without a target"))?;
            let link_rel =
                clean_path(&link).ok_or_else(|| refuse("the hard link leaves the tree"))?;
            let source = link_rel.iter().fold(root.clone(), |p, c| p.join(c));
            let meta = source
                .symlink_metadata()
                .map_err(|_| refuse("the hard link names no earlier file"))?;
            if !meta.is_file() {
                return Err(refuse("the hard link names something other than a file"));
            }
            fs::hard_link(&source, &target).map_err(|e| Error::io(&target, e))?;
        } else if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            continue;
        } else {
            return Err(refuse(
                "devices, FIFOs and other special files are not allowed in a root file system",
            ));
        }
    }
    // Directory modes last, deepest first, so read-only ones could be filled.
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mode) in dirs {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&dir, e))?;
    }
    match fs::rename(&root, dest) {
        Ok(()) => Ok(()),
        // Another run unpacked the same CID first: same bytes, keep theirs.
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(Error::io(dest, e)),
    }
}

/// An archive path as plain components: `./a/b` → `[a, b]`; `None` for an
/// absolute path, `..`, or a name that is not UTF-8.
fn clean_path(raw: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = Vec::new();
    for comp in Path::new(text).components() {
        match comp {
            Component::Normal(n) => out.push(n.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

enum ParentError {
    Io(PathBuf, io::Error),
    NotADir,
}

/// Create the parents of `rel` under `root` (refusing to pass through
/// anything but real directories) and return the entry's full path.
fn make_parents(root: &Path, rel: &[String]) -> Result<PathBuf, ParentError> {
    let mut path = root.to_path_buf();
    for (i, comp) in rel.iter().enumerate() {
        path.push(comp);
        if i + 1 == rel.len() {
            break;
        }
        match path.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ParentError::NotADir),
            Err(_) => fs::create_dir(&path).map_err(|e| ParentError::Io(path.clone(), e))?,
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o755);
        h
    }

    /// Writes a raw name into a header, bypassing the tar crate's own checks,
    /// as a hostile archive would.
    fn raw_name(h: &mut tar::Header, name: &str) {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
    }

    #[test]
    fn a_plain_tree_unpacks() {
        let data = archive(|b| {
            let mut h = header(tar::EntryType::Directory, 0);
            b.append_data(&mut h, "bin/", io::empty()).unwrap();
            let mut h = header(tar::EntryType::Regular, 2);
            b.append_data(&mut h, "bin/x", &b"hi"[..]).unwrap();
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "sbin/init", "../bin/x").unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("root");
        unpack(&data[..], &dest, "t").unwrap();
        assert_eq!(fs::read(dest.join("bin/x")).unwrap(), b"hi");
        assert_eq!(fs::read(dest.join("sbin/init")).unwrap(), b"hi");
    }

    #[test]
    fn escaping_entries_are_refused() {
        for bad in ["../evil", "/etc/evil", "a/../../evil"] {
            let data = archive(|b| {
                let mut h = header(tar::EntryType::Regular, 1);
                raw_name(&mut h, bad);
                b.append(&h, &b"x"[..]).unwrap();
            });
            let dir = tempfile::tempdir().unwrap();
            let err = unpack(&data[..], &dir.path().join("root"), "t").unwrap_err();
            assert!(matches!(err, Error::Unsafe { .. }), "{bad}: {err}");
            assert!(!dir.path().join("root").exists());
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let data = archive(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "d", ".").unwrap();
            let mut h = header(tar::EntryType::Regular, 1);
            b.append_data(&mut h, "d/x", &b"x"[..]).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&data[..], &dir.path().join("root"), "t").is_err());
        let data = archive(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "up", "../..").unwrap();
        });
        assert!(unpack(&data[..], &dir.path().join("root2"), "t").is_err());
    }

    #[test]
    fn devices_are_refused() {
        let data = archive(|b| {
            let mut h = header(tar::EntryType::Char, 0);
            b.append_data(&mut h, "dev/null", io::empty()).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&data[..], &dir.path().join("root"), "t").is_err());
    }
}

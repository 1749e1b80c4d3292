//! `ipkg get` and `ipkg cat`: rebuild files and trees from a DAG.
//!
//! Everything read from a DAG is untrusted. Entry names are checked by the
//! reader (no `/`, `..`, `.`, NUL or empty names); symlinks are created only
//! when their target stays inside the tree being extracted; the tree is built
//! in a temporary directory beside the destination and renamed into place at
//! the very end (`RENAME_NOREPLACE`), so a failure (a missing block, a hostile
//! entry, a full disk) leaves no partial output and nothing outside it.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};

use crate::content::reader::{self, FileReader};
use crate::content::{BlockGet, Cid};

use super::{Error, Progress};

/// What an extraction wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct GetReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Resolve `root/path` and write it to `dest`, which must not exist.
pub fn get(
    blocks: &dyn BlockGet,
    root: &Cid,
    path: &str,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<GetReport, Error> {
    if dest.symlink_metadata().is_ok() {
        return Err(Error::DestExists {
            path: dest.to_path_buf(),
        });
    }
    let cid = reader::resolve_path(&blocks, root, path)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".ipkg-get-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let staged = tmp.path().join("out");
    let mut report = GetReport::default();
    extract(
        blocks,
        &cid,
        &staged,
        &mut Vec::new(),
        &mut report,
        progress,
    )?;
    rename_noreplace(&staged, dest).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::DestExists {
                path: dest.to_path_buf(),
            }
        } else {
            Error::io(dest, e)
        }
    })?;
    Ok(report)
}

/// Stream the file at `root/path` into `out`.
pub fn cat(
    blocks: &dyn BlockGet,
    root: &Cid,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    let cid = reader::resolve_path(&blocks, root, path)?;
    let mut file = FileReader::new(blocks, &cid)?;
    let n = io::copy(&mut file, out).map_err(|e| read_or_write_error(e, &cid))?;
    Ok(n)
}

/// A failure inside `io::copy` is either the reader's (a missing or corrupt
/// block, carried as the io::Error's inner error) or the writer's.
pub(crate) fn read_or_write_error(e: io::Error, cid: &Cid) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<reader::ReadError>())
    {
        Some(_) => match e
            .into_inner()
            .map(|inner| inner.downcast::<reader::ReadError>())
        {
            Some(Ok(read)) => Error::Read(read),
            _ => Error::Usage(format!("could not read `{cid}`")),
        },
        None => Error::io("<output>", e),
    }
}

fn extract(
    blocks: &dyn BlockGet,
    cid: &Cid,
    path: &Path,
    rel: &mut Vec<String>,
    report: &mut GetReport,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let stat = reader::stat(&blocks, cid)?;
    let mode = stat.mode;
    if stat.kind.is_file() {
        {
            let mut reader = FileReader::new(blocks, cid)?;
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let n =
                io::copy(&mut reader, &mut out).map_err(|e| match read_or_write_error(e, cid) {
                    Error::Io { source, .. } => Error::io(path, source),
                    other => other,
                })?;
            let file = out
                .into_inner()
                .map_err(|e| Error::io(path, e.into_error()))?;
            // Only permission bits; never setuid, setgid or sticky from a DAG.
            let perms = mode.map(|m| m & 0o777).unwrap_or(0o644);
            file.set_permissions(fs::Permissions::from_mode(perms))
                .map_err(|e| Error::io(path, e))?;
            report.files += 1;
            report.bytes += n;
            progress.advance(n);
        }
    } else if stat.kind.is_dir() {
        {
            fs::create_dir(path).map_err(|e| Error::io(path, e))?;
            for entry in reader::list_dir(&blocks, cid)? {
                rel.push(entry.name.clone());
                let child = path.join(&entry.name);
                extract(blocks, &entry.cid, &child, rel, report, progress)?;
                rel.pop();
            }
            // Applied after the children so a read-only directory can be filled;
            // the owner always keeps write access so the tree can be removed.
            let perms = mode.map(|m| (m & 0o777) | 0o700).unwrap_or(0o755);
            fs::set_permissions(path, fs::Permissions::from_mode(perms))
                .map_err(|e| Error::io(path, e))?;
            report.dirs += 1;
        }
    } else {
        {
            let target = reader::read_symlink(&blocks, cid)?;
            check_symlink(rel, &target)?;
            std::os::unix::fs::symlink(&target, path).map_err(|e| Error::io(path, e))?;
            report.symlinks += 1;
        }
    }
    Ok(())
}

/// Refuse a symlink whose target leaves the tree being extracted. `rel` is the
/// link's own path inside the tree (its last element is the link's name).
pub fn check_symlink(rel: &[String], target: &str) -> Result<(), Error> {
    let shown = if rel.is_empty() {
        "<root>".to_string()
    } else {
        rel.join("/")
    };
    let refuse = |reason: String| Error::Unsafe {
        path: shown.clone(),
        reason,
    };
    if target.is_empty() || target.contains('\0') {
        return Err(refuse("the symlink target is empty or contains NUL".into()));
    }
    let target_path = Path::new(target);
    if target_path.is_absolute() {
        return Err(refuse(format!(
            "the symlink points to the absolute path `{target}`"
        )));
    }
    // Depth of the directory holding the link, inside the tree.
    let mut depth = rel.len().saturating_sub(1) as i64;
    if rel.is_empty() {
        // The root itself is a symlink: any relative target leaves the tree
        // unless it is the link's own name.
        depth = 0;
    }
    for comp in target_path.components() {
        match comp {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(format!("the symlink points to `{target}`")));
            }
        }
        if depth < 0 {
            return Err(refuse(format!(
                "the symlink points to `{target}`, outside the directory being extracted"
            )));
        }
    }
    Ok(())
}

pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

/// `renameat2(2)` with `flags` (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
pub(crate) fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let from_c = CString::new(from.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let to_c = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::check_symlink;

    fn rel(p: &str) -> Vec<String> {
        p.split('/').map(String::from).collect()
    }

    #[test]
    fn symlinks_inside_the_tree_are_fine() {
        check_symlink(&rel("link"), "a.txt").unwrap();
        check_symlink(&rel("sub/link"), "../a.txt").unwrap();
        check_symlink(&rel("sub/deeper/link"), "../../a.txt").unwrap();
        check_symlink(&rel("link"), "./sub/../a.txt").unwrap();
    }

    #[test]
    fn symlinks_that_escape_are_refused() {
        assert!(check_symlink(&rel("link"), "../etc/passwd").is_err());
        assert!(check_symlink(&rel("sub/link"), "../../x").is_err());
        assert!(check_symlink(&rel("link"), "/etc/passwd").is_err());
        assert!(check_symlink(&rel("link"), "a/../../b").is_err());
        assert!(check_symlink(&rel("link"), "").is_err());
    }
}

//! Unpack a package DAG into `<prefix>/.ipkg/pkgs/<cid>`, storing each file's
//! bytes once.
//!
//! The tree is read from the (verified) block store, checked against its
//! manifest before anything is written (commands and hooks inside the
//! package, symlinks that stay inside, names without `/` or `..`), built in a
//! temporary directory beside its final place and renamed there last, so a
//! tree under `pkgs/` is always complete.
//!
//! Files are deduplicated: `<prefix>/.ipkg/files/<file-cid>` (with `.x` for
//! an executable copy) holds each distinct file once, read-only, and package
//! trees hard-link to it. Two versions that share 99% of their files cost one
//! copy of those files, and installing a tree whose files are already there
//! copies no file data. A file's CID covers its bytes (and its mode, when one
//! is recorded), so a name in `files/` always means the same bytes.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::content::reader::{self, FileReader, NodeKind};
use crate::content::{BlockGet, Cid};
use crate::trust::manifest::{Manifest, MemTree};

use super::{Error, Layout, Progress};
use crate::ops::content::get::{check_symlink, read_or_write_error, rename_noreplace, renameat2};

/// The manifest file at a package's root.
pub const MANIFEST: &str = "ipkg.toml";

/// One entry of a package DAG.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/`-separated path inside the package.
    pub path: String,
    pub cid: Cid,
    pub kind: NodeKind,
    pub size: u64,
    pub executable: bool,
    pub target: Option<String>,
}

/// A package DAG read and checked, nothing written yet.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub cid: Cid,
    pub manifest: Manifest,
    /// Every entry but the root, parents before children.
    pub entries: Vec<Entry>,
    pub total_bytes: u64,
}

/// Read the DAG under `cid`: every entry, the manifest, and the checks of
/// [`Manifest::validate_tree`].
pub fn scan(blocks: &dyn BlockGet, cid: &Cid) -> Result<Scanned, Error> {
    let root = reader::stat(&blocks, cid)?;
    if !root.kind.is_dir() {
        return Err(Error::NotAPackage {
            cid: *cid,
            reason: "it is not a directory".into(),
        });
    }
    let mut entries = Vec::new();
    let mut tree = MemTree::new();
    let mut stack = vec![(String::new(), *cid)];
    let mut total_bytes = 0u64;
    while let Some((dir_path, dir_cid)) = stack.pop() {
        for e in reader::list_dir(&blocks, &dir_cid)? {
            let path = if dir_path.is_empty() {
                e.name.clone()
            } else {
                format!("{dir_path}/{}", e.name)
            };
            let st = reader::stat(&blocks, &e.cid)?;
            let mut entry = Entry {
                path: path.clone(),
                cid: e.cid,
                kind: st.kind,
                size: st.size,
                executable: st.mode.is_some_and(|m| m & 0o111 != 0),
                target: None,
            };
            match st.kind {
                k if k.is_dir() => {
                    tree.dir(&path);
                    stack.push((path.clone(), e.cid));
                }
                k if k.is_file() => {
                    total_bytes += st.size;
                    tree.file(&path, st.size, entry.executable);
                }
                _ => {
                    let target = reader::read_symlink(&blocks, &e.cid)?;
                    let rel: Vec<String> = path.split('/').map(str::to_owned).collect();
                    check_symlink(&rel, &target)?;
                    tree.symlink(&path, &target);
                    entry.target = Some(target);
                }
            }
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    // A package that breaks the manifest rules is hostile or broken input,
    // not a maintainer's typo: refused as unsafe.
    let bad = |e: crate::trust::manifest::ManifestError| Error::BadPackage {
        cid: *cid,
        source: Box::new(e),
    };
    let manifest = read_manifest(blocks, cid, &entries)?;
    manifest
        .validate_tree(&tree, Path::new(&format!("{cid}/{MANIFEST}")))
        .map_err(bad)?;
    // Commands run whatever mode the DAG recorded (DESIGN.md §3).
    let commands: BTreeSet<&str> = manifest.commands.values().map(String::as_str).collect();
    for e in &mut entries {
        if commands.contains(e.path.as_str()) && e.kind.is_file() {
            e.executable = true;
        }
    }
    Ok(Scanned {
        cid: *cid,
        manifest,
        entries,
        total_bytes,
    })
}

fn read_manifest(blocks: &dyn BlockGet, root: &Cid, entries: &[Entry]) -> Result<Manifest, Error> {
    let Some(entry) = entries.iter().find(|e| e.path == MANIFEST) else {
        return Err(Error::NotAPackage {
            cid: *root,
            reason: format!("it has no `{MANIFEST}`"),
        });
    };
    if !entry.kind.is_file() || entry.size > 1 << 20 {
        return Err(Error::NotAPackage {
            cid: *root,
            reason: format!("`{MANIFEST}` is not a file of at most 1 MiB"),
        });
    }
    let mut text = Vec::new();
    let mut r = FileReader::new(blocks, &entry.cid)?;
    io::Read::read_to_end(&mut r, &mut text).map_err(|e| read_or_write_error(e, &entry.cid))?;
    let text = String::from_utf8(text).map_err(|_| Error::NotAPackage {
        cid: *root,
        reason: format!("`{MANIFEST}` is not UTF-8"),
    })?;
    Manifest::parse(&text, Path::new(&format!("{root}/{MANIFEST}"))).map_err(|e| {
        Error::BadPackage {
            cid: *root,
            source: Box::new(e),
        }
    })
}

/// What [`materialize`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackReport {
    /// Whether the tree was already unpacked.
    pub existed: bool,
    pub files: u64,
    /// Files whose bytes were written (the rest were hard links).
    pub files_written: u64,
    pub bytes_written: u64,
}

/// Make `<prefix>/.ipkg/pkgs/<cid>` hold the scanned tree. Call with the
/// prefix lock held.
///
/// With `repair`, a tree that is already there is rebuilt: every stored file
/// is checked against the DAG (a damaged one is written again) and the new
/// tree is swapped in with one `RENAME_EXCHANGE`, so a program running from
/// it never sees a half-built tree.
pub fn materialize(
    layout: &Layout,
    blocks: &dyn BlockGet,
    scanned: &Scanned,
    repair: bool,
    progress: &dyn Progress,
) -> Result<(PathBuf, UnpackReport), Error> {
    let dest = layout.package_tree(&scanned.cid);
    let mut report = UnpackReport::default();
    if dest.is_dir() && !repair {
        report.existed = true;
        return Ok((dest, report));
    }
    let pkgs = layout.pkgs_dir();
    let files = layout.files_dir();
    for d in [&pkgs, &files] {
        fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&pkgs)
        .map_err(|e| Error::io(&pkgs, e))?;
    let staged = tmp.path().join("tree");
    fs::create_dir(&staged).map_err(|e| Error::io(&staged, e))?;
    progress.start("Unpacking", Some(scanned.total_bytes));
    let mut dirs = vec![staged.clone()];
    for e in &scanned.entries {
        let path = staged.join(&e.path);
        if e.kind.is_dir() {
            fs::create_dir(&path).map_err(|err| Error::io(&path, err))?;
            dirs.push(path);
        } else if e.kind.is_file() {
            place_file(&files, &path, blocks, e, repair, &mut report)?;
            report.files += 1;
            progress.advance(e.size);
        } else if let Some(target) = &e.target {
            std::os::unix::fs::symlink(target, &path).map_err(|err| Error::io(&path, err))?;
        }
    }
    progress.finish();
    // Read-only from the deepest directory up, so nothing is written into a
    // tree that a version may already run from. The root last, once it is in
    // place: renaming a directory needs write access to it (for `..`).
    for d in dirs.iter().skip(1).rev() {
        fs::set_permissions(d, fs::Permissions::from_mode(0o555))
            .map_err(|err| Error::io(d, err))?;
    }
    let seal = |root: &Path| {
        fs::set_permissions(root, fs::Permissions::from_mode(0o555))
            .map_err(|err| Error::io(root, err))
    };
    // Data first, then the name that makes the tree visible.
    sync_dir_fs(&files)?;
    if repair && dest.is_dir() {
        // The old tree's root must be writable to move it out of the way.
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
            .map_err(|err| Error::io(&dest, err))?;
        renameat2(&staged, &dest, libc::RENAME_EXCHANGE).map_err(|err| Error::io(&dest, err))?;
        seal(&dest)?;
        report.existed = true;
        remove_tree(&staged)?;
        return Ok((dest, report));
    }
    match rename_noreplace(&staged, &dest) {
        Ok(()) => seal(&dest)?,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            report.existed = true;
        }
        Err(err) => return Err(Error::io(&dest, err)),
    }
    if let Ok(d) = fs::File::open(&pkgs) {
        let _ = d.sync_all();
    }
    // `tmp` (now empty or holding a duplicate) is removed on drop; a
    // duplicate's read-only directories need their write bit back first.
    if staged.exists() {
        remove_tree(&staged)?;
    }
    Ok((dest, report))
}

/// Put `e` at `dest` in the staged tree: a hard link to its copy in
/// `files/` when there is one (checked against the DAG first with `check`),
/// else its bytes written at `dest` and then linked into `files/` for the
/// next version. The staged tree is invisible until it is renamed into
/// place, so no temporary name is needed.
fn place_file(
    files: &Path,
    dest: &Path,
    blocks: &dyn BlockGet,
    e: &Entry,
    check: bool,
    report: &mut UnpackReport,
) -> Result<(), Error> {
    let name = if e.executable {
        format!("{}.x", e.cid)
    } else {
        e.cid.to_string()
    };
    let stored = files.join(name);
    match fs::hard_link(&stored, dest) {
        Ok(()) if !check => return Ok(()),
        Ok(()) => {
            let good = fs::metadata(dest).is_ok_and(|m| {
                m.len() == e.size && (m.permissions().mode() & 0o111 != 0) == e.executable
            }) && same_bytes(blocks, e, dest).unwrap_or(false);
            if good {
                return Ok(());
            }
            // Damaged: unlink the shared copy and write a new one.
            fs::remove_file(dest).map_err(|err| Error::io(dest, err))?;
            fs::remove_file(&stored).map_err(|err| Error::io(&stored, err))?;
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::io(dest, err)),
    }
    let mut reader = FileReader::new(blocks, &e.cid)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|err| Error::io(dest, err))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let n =
        io::copy(&mut reader, &mut out).map_err(|err| match read_or_write_error(err, &e.cid) {
            Error::Io { source, .. } => Error::io(dest, source),
            other => other,
        })?;
    let file = out
        .into_inner()
        .map_err(|err| Error::io(dest, err.into_error()))?;
    let mode = if e.executable { 0o555 } else { 0o444 };
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|err| Error::io(dest, err))?;
    drop(file);
    report.files_written += 1;
    report.bytes_written += n;
    match fs::hard_link(dest, &stored) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(Error::io(&stored, err)),
        _ => Ok(()),
    }
}

/// Flush the file system holding `dir` (one `syncfs(2)` instead of an fsync
/// per file).
pub(crate) fn sync_dir_fs(dir: &Path) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    // SAFETY: syncfs only reads the descriptor, which `f` keeps open.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(Error::io(dir, io::Error::last_os_error()));
    }
    Ok(())
}

/// Remove a package tree, giving read-only directories their write bit back
/// first. A tree that is not there is not an error.
pub fn remove_tree(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(path, e))?;
        for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            remove_tree(&entry.path())?;
        }
        fs::remove_dir(path).map_err(|e| Error::io(path, e))
    } else {
        fs::remove_file(path).map_err(|e| Error::io(path, e))
    }
}

/// A read-through cache of small blocks for one install: the DAG is read
/// once to scan it and once more to unpack it, and small blocks (most of a
/// tree of small files) are kept from the first read for the second. Every
/// block still came through the store's verification once.
pub struct BlockCache<'a> {
    inner: &'a dyn BlockGet,
    map: std::cell::RefCell<std::collections::HashMap<Cid, Vec<u8>>>,
    bytes: std::cell::Cell<usize>,
}

impl<'a> BlockCache<'a> {
    /// Blocks above this size are not kept.
    const MAX_BLOCK: usize = 256 << 10;
    /// Nor anything once this much is kept.
    const MAX_TOTAL: usize = 256 << 20;

    pub fn new(inner: &'a dyn BlockGet) -> BlockCache<'a> {
        BlockCache {
            inner,
            map: Default::default(),
            bytes: Default::default(),
        }
    }
}

impl BlockGet for BlockCache<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, crate::content::GetError> {
        if let Some(b) = self.map.borrow().get(cid) {
            return Ok(b.clone());
        }
        let data = self.inner.get_block(cid)?;
        if data.len() <= Self::MAX_BLOCK && self.bytes.get() + data.len() <= Self::MAX_TOTAL {
            self.bytes.set(self.bytes.get() + data.len());
            self.map.borrow_mut().insert(*cid, data.clone());
        }
        Ok(data)
    }

    fn has_block(&self, cid: &Cid) -> bool {
        self.map.borrow().contains_key(cid) || self.inner.has_block(cid)
    }
}

/// Whether the file at `path` holds exactly the bytes of `e`'s DAG.
pub(crate) fn same_bytes(store: &dyn BlockGet, e: &Entry, path: &Path) -> io::Result<bool> {
    let mut dag = FileReader::new(store, &e.cid).map_err(io::Error::other)?;
    let mut disk = io::BufReader::with_capacity(1 << 20, fs::File::open(path)?);
    let mut a = vec![0u8; 1 << 16];
    let mut b = vec![0u8; 1 << 16];
    loop {
        let n = read_full(&mut dag, &mut a)?;
        let m = read_full(&mut disk, &mut b)?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

//! The FUSE file system over one UnixFS DAG: read-only, every byte from
//! [`LazyBlocks`], so verified before the kernel sees it.
//!
//! Inodes are handed out as paths are looked up (the same CID at two paths
//! gets two inodes; nothing is ever written, so that is harmless). Content
//! is immutable, so attributes and entries are cached by the kernel for a
//! long time and files are opened with `FOPEN_KEEP_CACHE`: a second read of
//! a file is served from the page cache without a request reaching ipkg.
//!
//! A block that cannot be had or fails verification makes that operation
//! fail with `EIO`; the rest of the tree stays readable.

// A `ReadError` names the CID it is about (inline, so large); it is the cold
// path, as in the reader itself.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry,
    ReplyOpen, Request,
};

use crate::content::Cid;
use crate::content::reader::{self, NodeKind};
use crate::content::unixfs::normalize_mode;

use super::blocks::LazyBlocks;
use super::file::FileCache;

/// Content never changes: let the kernel keep what it learnt.
const TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
struct Inode {
    cid: Cid,
    kind: NodeKind,
    size: u64,
    perm: u16,
    mtime: SystemTime,
    /// Path inside the tree, `/`-separated, empty for the root.
    path: String,
}

/// A directory's entries as (name, inode).
type Listing = Arc<Vec<(String, u64)>>;

pub struct LazyFs {
    blocks: Arc<LazyBlocks>,
    files: FileCache,
    inodes: RwLock<Vec<Inode>>,
    by_name: Mutex<HashMap<(u64, String), u64>>,
    listings: Mutex<HashMap<u64, Listing>>,
    /// Paths that are executable whatever their recorded mode (a package's
    /// declared commands, as install makes them).
    exec: HashSet<String>,
    uid: u32,
    gid: u32,
}

impl LazyFs {
    /// A file system whose root is `root` (a directory, or a single file).
    pub fn new(
        blocks: Arc<LazyBlocks>,
        root: &Cid,
        exec: HashSet<String>,
    ) -> Result<LazyFs, reader::ReadError> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mut fs = LazyFs {
            blocks,
            files: FileCache::default(),
            inodes: RwLock::new(Vec::new()),
            by_name: Mutex::default(),
            listings: Mutex::default(),
            exec,
            uid,
            gid,
        };
        let root = fs.make_inode(root, String::new())?;
        if let Ok(inodes) = fs.inodes.get_mut() {
            inodes.push(root);
        }
        Ok(fs)
    }

    fn make_inode(&self, cid: &Cid, path: String) -> Result<Inode, reader::ReadError> {
        let st = reader::stat(self.blocks.as_ref(), cid)?;
        let perm = match st.kind {
            k if k.is_dir() => 0o755,
            NodeKind::Symlink => 0o777,
            _ if self.exec.contains(&path) => 0o755,
            _ => st.mode.map_or(0o644, |m| normalize_mode(m) as u16),
        };
        let mtime = st
            .mtime
            .and_then(|m| u64::try_from(m.secs).ok())
            .map_or(UNIX_EPOCH, |s| UNIX_EPOCH + Duration::from_secs(s));
        Ok(Inode {
            cid: *cid,
            kind: st.kind,
            size: st.size,
            perm,
            mtime,
            path,
        })
    }

    fn inode(&self, ino: INodeNo) -> Option<Inode> {
        let i = u64::from(ino).checked_sub(1)? as usize;
        self.inodes.read().ok()?.get(i).cloned()
    }

    fn attr(&self, ino: INodeNo, n: &Inode) -> FileAttr {
        let kind = match n.kind {
            NodeKind::Directory | NodeKind::HamtDirectory => FileType::Directory,
            NodeKind::Symlink => FileType::Symlink,
            NodeKind::File | NodeKind::Raw => FileType::RegularFile,
        };
        FileAttr {
            ino,
            size: n.size,
            blocks: n.size.div_ceil(512),
            atime: n.mtime,
            mtime: n.mtime,
            ctime: n.mtime,
            crtime: n.mtime,
            kind,
            perm: n.perm,
            nlink: if n.kind.is_dir() { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 1 << 20,
            flags: 0,
        }
    }

    /// The entries of directory `ino` as (name, inode), made on first use.
    /// Every child's root block is needed for its type: they are fetched
    /// together by the prefetchers first.
    fn listing(&self, ino: u64) -> Result<Listing, Errno> {
        if let Some(l) = self.listings.lock().ok().and_then(|l| l.get(&ino).cloned()) {
            return Ok(l);
        }
        let dir = self.inode(INodeNo(ino)).ok_or(Errno::ENOENT)?;
        if !dir.kind.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let entries = reader::list_dir(self.blocks.as_ref(), &dir.cid).map_err(|_| Errno::EIO)?;
        self.blocks.prefetch(entries.iter().map(|e| e.cid));
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let child = self.child(ino, &dir.path, &e.name, &e.cid)?;
            out.push((e.name, child));
        }
        let out = Arc::new(out);
        if let Ok(mut l) = self.listings.lock() {
            l.insert(ino, Arc::clone(&out));
        }
        Ok(out)
    }

    /// The inode of `name` in directory `parent`, made if new.
    fn child(&self, parent: u64, parent_path: &str, name: &str, cid: &Cid) -> Result<u64, Errno> {
        let key = (parent, name.to_owned());
        if let Some(i) = self.by_name.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(i);
        }
        let path = if parent_path.is_empty() {
            name.to_owned()
        } else {
            format!("{parent_path}/{name}")
        };
        let node = self.make_inode(cid, path).map_err(|_| Errno::EIO)?;
        let mut by_name = self.by_name.lock().map_err(|_| Errno::EIO)?;
        if let Some(i) = by_name.get(&key) {
            return Ok(*i);
        }
        let mut inodes = self.inodes.write().map_err(|_| Errno::EIO)?;
        inodes.push(node);
        let ino = inodes.len() as u64;
        by_name.insert(key, ino);
        Ok(ino)
    }
}

impl Filesystem for LazyFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        let Some(dir) = self.inode(parent) else {
            return reply.error(Errno::ENOENT);
        };
        if !dir.kind.is_dir() {
            return reply.error(Errno::ENOTDIR);
        }
        let found = match reader::lookup(self.blocks.as_ref(), &dir.cid, name) {
            Ok(Some(e)) => e,
            Ok(None) => return reply.error(Errno::ENOENT),
            Err(_) => return reply.error(Errno::EIO),
        };
        match self.child(u64::from(parent), &dir.path, name, &found.cid) {
            Ok(ino) => match self.inode(INodeNo(ino)) {
                Some(n) => reply.entry(&TTL, &self.attr(INodeNo(ino), &n), Generation(0)),
                None => reply.error(Errno::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inode(ino) {
            Some(n) => reply.attr(&TTL, &self.attr(ino, &n)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(n) = self.inode(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match reader::read_symlink(self.blocks.as_ref(), &n.cid) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(_) => reply.error(Errno::EIO),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(n) = self.inode(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if n.kind.is_dir() {
            return reply.error(Errno::EISDIR);
        }
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(n) = self.inode(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if !n.kind.is_file() {
            return reply.error(Errno::EISDIR);
        }
        if offset >= n.size {
            return reply.data(&[]);
        }
        let len = (size as u64).min(n.size - offset) as usize;
        match self.files.read_at(&self.blocks, &n.cid, offset, len) {
            Ok(bytes) if bytes.len() == len => reply.data(&bytes),
            _ => reply.error(Errno::EIO),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = match self.listing(u64::from(ino)) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let dots = [(u64::from(ino), "."), (u64::from(ino), "..")];
        let all = dots
            .iter()
            .map(|(i, n)| (*i, *n))
            .chain(listing.iter().map(|(n, i)| (*i, n.as_str())));
        for (k, (child, name)) in all.enumerate().skip(offset as usize) {
            let kind = match self.inode(INodeNo(child)).map(|n| n.kind) {
                Some(k) if k.is_dir() => FileType::Directory,
                Some(NodeKind::Symlink) => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            if reply.add(INodeNo(child), (k + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

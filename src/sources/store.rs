//! The embedded block store: blocks as files under `<prefix>/.ipkg/blocks`.
//!
//! Layout follows Kubo's flatfs `next-to-last/2`: a block is keyed by its
//! multihash (so a CIDv0 and a CIDv1 of the same dag-pb bytes share one file),
//! written as base32 without padding, and stored in a folder named by the two
//! characters before the last one.
//!
//! Goals:
//! - A torn or half-written block is never readable. Writers put bytes in a
//!   temporary file in the same folder and `rename(2)` it into place, so a killed
//!   process leaves at most a stray temporary file (removed by `gc`). Readers
//!   verify every block against its CID, so even a block torn by a power cut
//!   (renamed before its data reached the disk) reads as corrupt, never as data.
//! - Safe with several ipkg processes at once: puts are idempotent renames, and
//!   garbage collection takes the store lock exclusively while writers hold it
//!   shared (see [`StoreLock`]).
//! - Cheap durability: no fsync per block; [`BlockStore::sync`] flushes the whole
//!   file system once at the end of an operation.
//! - Hash each block once per process: a block this process verified and wrote
//!   (a fetch, then the unpack that reads it back) is not hashed again when the
//!   same process reads it. Files are only ever replaced by renames of verified
//!   bytes, and a torn write needs a crash, which ends the process (and the
//!   memory of what it wrote); every other read is verified.
//!
//! Non-goals: compaction or packing small blocks together.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::content::cid::verify;
use crate::content::{BlockGet, BlockSink, Cid, GetError};

const TMP_PREFIX: &str = ".tmp-";

/// A block store in a directory.
#[derive(Debug, Clone)]
pub struct BlockStore {
    dir: PathBuf,
    /// Keys of blocks this process verified and wrote (shared by clones).
    written: Arc<Mutex<HashSet<String>>>,
}

/// At most this many keys are remembered (about 100 MiB of 1 MiB blocks
/// needs 100; a huge fetch of tiny blocks falls back to hashing on read).
const WRITTEN_MAX: usize = 1 << 20;

/// Counts of what a put or an import wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PutStats {
    pub blocks_new: u64,
    pub blocks_existing: u64,
    pub bytes_new: u64,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlockStore {
    /// Open (and create if needed) the store in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<BlockStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(BlockStore {
            dir,
            written: Arc::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The multihash of a CID as the store's key.
    fn key(cid: &Cid) -> String {
        let mh = cid.hash().to_bytes();
        multibase::Base::Base32Lower.encode(mh)
    }

    fn path_of_key(&self, key: &str) -> PathBuf {
        let n = key.len();
        let shard = if n >= 3 { &key[n - 3..n - 1] } else { "__" };
        self.dir.join(shard).join(key)
    }

    fn path_of(&self, cid: &Cid) -> PathBuf {
        self.path_of_key(&Self::key(cid))
    }

    /// Whether the store holds a block with this CID's multihash.
    pub fn has(&self, cid: &Cid) -> bool {
        self.path_of(cid).is_file()
    }

    /// The stored size of a block, without reading it (`None` if absent).
    pub fn size(&self, cid: &Cid) -> Option<u64> {
        fs::metadata(self.path_of(cid)).ok().map(|m| m.len())
    }

    /// Read and verify a block. A block whose bytes do not hash to `cid` is
    /// reported as [`GetError::Corrupt`] and never returned.
    pub fn get(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        let key = Self::key(cid);
        let path = self.path_of_key(&key);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(GetError::Missing(*cid)),
            Err(source) => return Err(GetError::Io { cid: *cid, source }),
        };
        if self.written.lock().is_ok_and(|w| w.contains(&key)) {
            return Ok(data);
        }
        verify(cid, &data).map_err(|_| GetError::Corrupt { cid: *cid })?;
        Ok(data)
    }

    /// Store a block the caller has already verified (the importer made it, or a
    /// source checked it). Returns whether it was new.
    pub fn put_trusted(&self, cid: &Cid, data: &[u8]) -> io::Result<bool> {
        let path = self.path_of(cid);
        if path.is_file() {
            return Ok(false);
        }
        let dir = path.parent().unwrap_or(&self.dir);
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let create = || OpenOptions::new().write(true).create_new(true).open(&tmp);
        // The shard folder usually exists: make it only when the create says
        // it does not (one syscall per block instead of two).
        let mut f = match create() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
                create()?
            }
            Err(e) => return Err(e),
        };
        let result = (|| {
            f.write_all(data)?;
            drop(f);
            fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        } else if let Ok(mut w) = self.written.lock() {
            if w.len() >= WRITTEN_MAX {
                w.clear();
            }
            w.insert(Self::key(cid));
        }
        result.map(|()| true)
    }

    /// Verify and store a block from an untrusted source.
    pub fn put(&self, cid: &Cid, data: &[u8]) -> Result<bool, GetError> {
        verify(cid, data).map_err(|_| GetError::Corrupt { cid: *cid })?;
        self.put_trusted(cid, data)
            .map_err(|source| GetError::Io { cid: *cid, source })
    }

    /// Remove a block. Removing a block that is not there is not an error.
    pub fn delete(&self, cid: &Cid) -> io::Result<()> {
        if let Ok(mut w) = self.written.lock() {
            w.remove(&Self::key(cid));
        }
        match fs::remove_file(self.path_of(cid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every stored block, as (store key, path, size in bytes); stray temporary
    /// files are listed separately so `gc` can remove them.
    pub fn scan(&self) -> io::Result<Scan> {
        let mut scan = Scan::default();
        for shard in read_dir_sorted(&self.dir)? {
            if !shard.is_dir() {
                continue;
            }
            for path in read_dir_sorted(&shard)? {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
                if name.starts_with(TMP_PREFIX) {
                    scan.temporary.push(path);
                } else {
                    scan.blocks.push((name, path, size));
                }
            }
        }
        Ok(scan)
    }

    /// The store key of a CID, for comparing against [`Scan::blocks`].
    pub fn key_of(cid: &Cid) -> String {
        Self::key(cid)
    }

    /// Flush everything written so far to disk (one `syncfs(2)` for the whole
    /// file system instead of an fsync per block).
    pub fn sync(&self) -> io::Result<()> {
        let dir = File::open(&self.dir)?;
        sync_fs(&dir)
    }

    /// A sink that writes into this store and counts what it wrote.
    pub fn sink(&self) -> StoreSink<'_> {
        StoreSink {
            store: self,
            stats: PutStats::default(),
        }
    }
}

/// What [`BlockStore::scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    pub blocks: Vec<(String, PathBuf, u64)>,
    pub temporary: Vec<PathBuf>,
}

impl Scan {
    pub fn keys(&self) -> HashSet<&str> {
        self.blocks.iter().map(|(k, _, _)| k.as_str()).collect()
    }
}

fn read_dir_sorted(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        out.push(entry?.path());
    }
    out.sort();
    Ok(out)
}

#[cfg(target_os = "linux")]
fn sync_fs(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `f` keeps open.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_fs(f: &File) -> io::Result<()> {
    f.sync_all()
}

impl BlockGet for BlockStore {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        self.get(cid)
    }

    fn has_block(&self, cid: &Cid) -> bool {
        self.has(cid)
    }
}

/// Writes the importer's blocks into a [`BlockStore`].
pub struct StoreSink<'a> {
    store: &'a BlockStore,
    pub stats: PutStats,
}

impl BlockSink for StoreSink<'_> {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> io::Result<()> {
        if self.store.put_trusted(cid, data)? {
            self.stats.blocks_new += 1;
            self.stats.bytes_new += data.len() as u64;
        } else {
            self.stats.blocks_existing += 1;
        }
        Ok(())
    }
}

/// The store lock: writers hold it shared, garbage collection exclusively, so
/// `gc` never deletes a block that an add in progress has written but not yet
/// rooted.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn open(path: &Path) -> io::Result<File> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    }

    /// Take the lock shared (for writers), waiting for a running gc.
    pub fn shared(path: &Path) -> io::Result<StoreLock> {
        let file = Self::open(path)?;
        file.lock_shared()?;
        Ok(StoreLock { _file: file })
    }

    /// Take the lock exclusively (for gc), waiting for writers to finish.
    pub fn exclusive(path: &Path) -> io::Result<StoreLock> {
        let file = Self::open(path)?;
        file.lock()?;
        Ok(StoreLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::cid::{Codec, cid_of};

    #[test]
    fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let cid = cid_of(1, Codec::Raw, b"hello");
        assert!(!store.has(&cid));
        assert!(matches!(store.get(&cid), Err(GetError::Missing(_))));
        assert!(store.put(&cid, b"hello").unwrap());
        assert!(!store.put(&cid, b"hello").unwrap(), "second put is a no-op");
        assert_eq!(store.get(&cid).unwrap(), b"hello");
        store.delete(&cid).unwrap();
        assert!(!store.has(&cid));
    }

    #[test]
    fn refuses_a_block_that_does_not_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path()).unwrap();
        let cid = cid_of(1, Codec::Raw, b"hello");
        assert!(matches!(
            store.put(&cid, b"hellO"),
            Err(GetError::Corrupt { .. })
        ));
        assert!(!store.has(&cid));
    }

    #[test]
    fn a_torn_block_on_disk_reads_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path()).unwrap();
        let cid = cid_of(1, Codec::Raw, b"hello world");
        store.put(&cid, b"hello world").unwrap();
        fs::write(store.path_of(&cid), b"hello").unwrap();
        // As after a crash: a new process (a reopened store) reads it.
        let reopened = BlockStore::open(dir.path()).unwrap();
        assert!(matches!(reopened.get(&cid), Err(GetError::Corrupt { .. })));
    }

    #[test]
    fn v0_and_v1_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path()).unwrap();
        let data = [0x0a, 0x02, 0x08, 0x01];
        let v0 = cid_of(0, Codec::DagPb, &data);
        let v1 = cid_of(1, Codec::DagPb, &data);
        store.put(&v0, &data).unwrap();
        assert!(store.has(&v1));
        assert_eq!(store.scan().unwrap().blocks.len(), 1);
    }
}

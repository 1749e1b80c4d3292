//! The UnixFS importer: files (balanced layout), directories, symlinks.
//!
//! Pure: the caller reads chunks and walks directories; the importer turns them
//! into blocks and hands each finished block to a [`super::BlockSink`].
//!
//! Goals: the CIDs `ipfs add` (Kubo 0.42, boxo `importer/balanced`) gives for the
//! same bytes and settings, memory bounded by O(depth × max_links) however large
//! a file is, and no copy of chunk data beyond the one into a dag-pb leaf.
//!
//! Kubo behaviours followed on purpose (checked against Kubo 0.42):
//!
//! - Balanced layout: a file of one chunk is that leaf alone; otherwise each
//!   level holds up to `max_links` children and a new level is started only when
//!   a full level meets more data, so the last branch may be a chain of
//!   single-child nodes (boxo `balanced.Layout` / `fillNodeRec`).
//! - dag-pb leaves are UnixFS `File` nodes (not `Raw`); links to file chunks have
//!   an empty name; the empty file is a `File` node with `filesize = 0` and no
//!   `Data` field (`QmbFMke1…`), or the empty raw block with raw leaves.
//! - A mode is written only on the root (boxo `SetFileAttributes`). Kubo refuses
//!   `--raw-leaves` together with `--preserve-mode` and otherwise turns raw
//!   leaves off for the whole add (kubo `core/commands/add.go`), so a file
//!   imported with a mode, or with `profile.preserve_mode`, gets dag-pb leaves
//!   whatever `raw_leaves` says. Permission bits of 0 on a file record nothing
//!   (Go's `os.FileMode` of such a file is 0); a directory always records the mode
//!   it is given (its `os.FileMode` carries `ModeDir`).
//! - Symlinks never carry a mode, even with `--preserve-mode`
//!   (kubo `coreunix.addSymlink`).
//! - Kubo 0.42's `ipfs add -n --preserve-mode` on a directory fails ("could
//!   not find Qm…") and prints a CID that differs from the one the same add
//!   gives without `-n`; ipkg matches the add that stores blocks.
//! - A directory becomes a HAMT when its size estimate is strictly greater than
//!   `hamt_threshold` (boxo `io/directory.go`); an empty directory never does.
//!   Kubo decides while adding entries one by one, but the estimate only grows
//!   during `ipfs add`, so deciding on the final set of entries is the same.

use std::collections::BTreeMap;
use std::io;

use sha2::{Digest, Sha256};

use super::dagpb::{PbLink, PbNode};
use super::hamt::{self, HamtEntry, HamtWriteError};
use super::profile::{HamtEstimate, Profile};
use super::unixfs::{Data, DataType, MODE_PERMS};
use super::varint;
use super::{BlockSink, Cid, Codec, cid::SHA2_256};

/// What importing a file, directory or symlink produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub cid: Cid,
    /// Cumulative DAG size, the `Tsize` Kubo writes on a link to this node.
    pub tsize: u64,
    /// File bytes (the symlink target's length for a symlink, 0 for a directory).
    pub size: u64,
}

/// Why an entry could not be added to a directory.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("invalid entry name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("duplicate entry name `{0}`")]
    Duplicate(String),
}

/// Why a name cannot be a UnixFS directory entry, if it cannot.
pub fn invalid_name_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("names must not be empty")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not entries")
    } else if name.contains('/') {
        Some("names must not contain `/`")
    } else if name.contains('\0') {
        Some("names must not contain NUL")
    } else {
        None
    }
}

fn sha256_cid(version: u8, codec: Codec, digest: &[u8]) -> Cid {
    // A sha2-256 digest always fits a multihash; CIDv0 is only for dag-pb.
    let mh = match multihash::Multihash::wrap(SHA2_256, digest) {
        Ok(mh) => mh,
        Err(_) => unreachable!("32-byte digest"),
    };
    if version == 0 && codec == Codec::DagPb {
        match Cid::new_v0(mh) {
            Ok(c) => c,
            Err(_) => unreachable!("sha2-256 dag-pb is a valid CIDv0"),
        }
    } else {
        Cid::new_v1(codec.code(), mh)
    }
}

fn put_block(sink: &mut dyn BlockSink, version: u8, codec: Codec, bytes: &[u8]) -> io::Result<Cid> {
    let cid = sha256_cid(version, codec, &Sha256::digest(bytes));
    sink.put(&cid, bytes)?;
    Ok(cid)
}

/// Encode one leaf and compute its CID without writing it: a raw block is the
/// chunk itself (nothing is copied); a dag-pb leaf is
/// `{ Data: UnixFS { Type: File, Data: chunk, filesize: n, mode } }`, encoded
/// straight into `buf`. Pure, so leaves can be hashed on several threads.
fn encode_leaf(
    cid_version: u8,
    raw: bool,
    chunk: &[u8],
    mode: Option<u32>,
    buf: &mut Vec<u8>,
) -> Child {
    let n = chunk.len() as u64;
    if raw {
        return Child {
            cid: sha256_cid(1, Codec::Raw, &Sha256::digest(chunk)),
            tsize: n,
            filesize: n,
        };
    }
    let mut inner_len = 2 + 1 + varint::len(n) + chunk.len() + 1 + varint::len(n);
    if let Some(m) = mode {
        inner_len += 1 + varint::len(u64::from(m));
    }
    buf.clear();
    buf.reserve(inner_len + 1 + varint::len(inner_len as u64));
    buf.push(0x0a);
    varint::put(buf, inner_len as u64);
    buf.extend_from_slice(&[0x08, DataType::File as u8, 0x12]);
    varint::put(buf, n);
    buf.extend_from_slice(chunk);
    buf.push(0x18);
    varint::put(buf, n);
    if let Some(m) = mode {
        buf.push(0x38);
        varint::put(buf, u64::from(m));
    }
    Child {
        cid: sha256_cid(cid_version, Codec::DagPb, &Sha256::digest(&buf[..])),
        tsize: buf.len() as u64,
        filesize: n,
    }
}

#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    tsize: u64,
    filesize: u64,
}

/// Builds one file from its chunks with the balanced layout.
///
/// `Clone` is cheap (CIDs only, plus the first chunk while a moded file has
/// only one) and lets a caller fork a file that shares a prefix.
#[derive(Debug, Clone)]
pub struct FileBuilder {
    cid_version: u8,
    raw_leaves: bool,
    max_links: usize,
    /// Permission bits for the root, already normalised to "record or not".
    mode: Option<u32>,
    /// `levels[0]` holds leaves, `levels[k]` nodes of depth k.
    levels: Vec<Vec<Child>>,
    /// With a mode, the first chunk waits: if it is the only one it becomes the
    /// root and must carry the mode, and its mode-less leaf must not be written.
    first_chunk: Option<Vec<u8>>,
    leaves: u64,
    size: u64,
    buf: Vec<u8>,
}

impl FileBuilder {
    /// A builder for one file; `mode` holds Unix permission bits to record.
    pub fn new(profile: &Profile, mode: Option<u32>) -> FileBuilder {
        let mode = mode.map(|m| m & MODE_PERMS).filter(|&m| m != 0);
        let has_metadata = mode.is_some() || profile.preserve_mode;
        FileBuilder {
            cid_version: profile.cid_version,
            raw_leaves: profile.raw_leaves && !has_metadata,
            max_links: profile.max_links.max(2),
            mode,
            levels: Vec::new(),
            first_chunk: None,
            leaves: 0,
            size: 0,
            buf: Vec::new(),
        }
    }

    /// Add the next chunk (every chunk but the last is exactly
    /// `profile.chunk_size` bytes; the caller chunks). Empty chunks are ignored.
    pub fn push_chunk(&mut self, chunk: &[u8], sink: &mut dyn BlockSink) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.mode.is_some() {
            if self.leaves == 0 {
                self.first_chunk = Some(chunk.to_vec());
                self.leaves = 1;
                self.size = chunk.len() as u64;
                return Ok(());
            }
            if let Some(first) = self.first_chunk.take() {
                let leaf = self.leaf(&first, None, sink)?;
                self.push_child(0, leaf, sink)?;
            }
        }
        let leaf = self.leaf(chunk, None, sink)?;
        self.leaves += 1;
        self.size += chunk.len() as u64;
        self.push_child(0, leaf, sink)
    }

    /// Finish the file and return its root.
    pub fn finish(mut self, sink: &mut dyn BlockSink) -> io::Result<Imported> {
        let root = if self.leaves == 0 {
            self.empty(sink)?
        } else if self.leaves == 1 {
            match self.first_chunk.take() {
                Some(first) => self.leaf(&first, self.mode, sink)?,
                None => self.levels[0][0],
            }
        } else {
            let mut level = 0;
            while level + 1 < self.levels.len() {
                let node = self.flush_level(level, None, sink)?;
                self.push_child(level + 1, node, sink)?;
                level += 1;
            }
            self.flush_level(level, self.mode, sink)?
        };
        Ok(Imported {
            cid: root.cid,
            tsize: root.tsize,
            size: self.size,
        })
    }

    fn empty(&mut self, sink: &mut dyn BlockSink) -> io::Result<Child> {
        if self.raw_leaves {
            let cid = put_block(sink, 1, Codec::Raw, &[])?;
            return Ok(Child {
                cid,
                tsize: 0,
                filesize: 0,
            });
        }
        let mut d = Data::new(DataType::File);
        d.filesize = Some(0);
        d.mode = self.mode;
        let bytes = PbNode {
            links: vec![],
            data: Some(d.encode()),
        }
        .encode();
        let cid = put_block(sink, self.cid_version, Codec::DagPb, &bytes)?;
        Ok(Child {
            cid,
            tsize: bytes.len() as u64,
            filesize: 0,
        })
    }

    /// Write one leaf; hashes the chunk in place for raw leaves.
    fn leaf(
        &mut self,
        chunk: &[u8],
        mode: Option<u32>,
        sink: &mut dyn BlockSink,
    ) -> io::Result<Child> {
        let leaf = encode_leaf(
            self.cid_version,
            self.raw_leaves,
            chunk,
            mode,
            &mut self.buf,
        );
        let bytes: &[u8] = if self.raw_leaves { chunk } else { &self.buf };
        sink.put(&leaf.cid, bytes)?;
        Ok(leaf)
    }

    /// Add several consecutive chunks at once, hashing them on as many threads
    /// as there are chunks (the caller sizes the batch to the machine). The
    /// result is exactly that of calling [`FileBuilder::push_chunk`] on each in
    /// turn; blocks reach the sink in the same order.
    pub fn push_chunks(&mut self, chunks: &[&[u8]], sink: &mut dyn BlockSink) -> io::Result<()> {
        // A moded file keeps its first chunk back (see `first_chunk`), and a
        // single chunk gains nothing from a thread: take the plain path.
        if self.mode.is_some() || chunks.len() < 2 {
            for chunk in chunks {
                self.push_chunk(chunk, sink)?;
            }
            return Ok(());
        }
        let (version, raw) = (self.cid_version, self.raw_leaves);
        let leaves: Vec<(Child, Vec<u8>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks[1..]
                .iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut buf = Vec::new();
                        (encode_leaf(version, raw, chunk, None, &mut buf), buf)
                    })
                })
                .collect();
            let mut buf = Vec::new();
            let first = (encode_leaf(version, raw, chunks[0], None, &mut buf), buf);
            let mut out = vec![first];
            // A panic in a hashing thread is a bug in this function, not bad input.
            out.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("leaf hashing thread panicked")),
            );
            out
        });
        for (chunk, (leaf, encoded)) in chunks.iter().zip(leaves) {
            if chunk.is_empty() {
                continue;
            }
            let bytes: &[u8] = if raw { chunk } else { &encoded };
            sink.put(&leaf.cid, bytes)?;
            self.leaves += 1;
            self.size += chunk.len() as u64;
            self.push_child(0, leaf, sink)?;
        }
        Ok(())
    }

    fn push_child(
        &mut self,
        level: usize,
        child: Child,
        sink: &mut dyn BlockSink,
    ) -> io::Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::with_capacity(self.max_links));
        }
        if self.levels[level].len() >= self.max_links {
            let node = self.flush_level(level, None, sink)?;
            self.push_child(level + 1, node, sink)?;
        }
        self.levels[level].push(child);
        Ok(())
    }

    /// Turn the children collected at `level` into one File node.
    fn flush_level(
        &mut self,
        level: usize,
        mode: Option<u32>,
        sink: &mut dyn BlockSink,
    ) -> io::Result<Child> {
        let children = std::mem::take(&mut self.levels[level]);
        let mut d = Data::new(DataType::File);
        d.filesize = Some(children.iter().map(|c| c.filesize).sum());
        d.blocksizes = children.iter().map(|c| c.filesize).collect();
        d.mode = mode;
        let node = PbNode {
            links: children
                .iter()
                .map(|c| PbLink::new(c.cid, "", c.tsize))
                .collect(),
            data: Some(d.encode()),
        };
        let bytes = node.encode();
        let cid = put_block(sink, self.cid_version, Codec::DagPb, &bytes)?;
        let tsize = bytes.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>();
        let filesize = d.filesize.unwrap_or(0);
        self.levels[level] = children;
        self.levels[level].clear();
        Ok(Child {
            cid,
            tsize,
            filesize,
        })
    }
}

/// Import a whole file held in memory (chunks of `profile.chunk_size`).
pub fn import_bytes(
    profile: &Profile,
    data: &[u8],
    sink: &mut dyn BlockSink,
) -> io::Result<Imported> {
    let mut fb = FileBuilder::new(profile, None);
    for chunk in data.chunks(profile.chunk_size.max(1)) {
        fb.push_chunk(chunk, sink)?;
    }
    fb.finish(sink)
}

/// Import a symlink pointing at `target` (no mode: Kubo never records one).
pub fn symlink(profile: &Profile, target: &str, sink: &mut dyn BlockSink) -> io::Result<Imported> {
    let mut d = Data::new(DataType::Symlink);
    d.data = Some(target.as_bytes().to_vec());
    let bytes = PbNode {
        links: vec![],
        data: Some(d.encode()),
    }
    .encode();
    let cid = put_block(sink, profile.cid_version, Codec::DagPb, &bytes)?;
    Ok(Imported {
        cid,
        tsize: bytes.len() as u64,
        size: target.len() as u64,
    })
}

/// Builds one directory from its entries, as a basic directory or a HAMT.
#[derive(Debug)]
pub struct DirBuilder {
    profile: Profile,
    mode: Option<u32>,
    entries: BTreeMap<String, Imported>,
}

impl DirBuilder {
    /// A builder for one directory; `mode` holds Unix permission bits to record.
    pub fn new(profile: &Profile, mode: Option<u32>) -> DirBuilder {
        DirBuilder {
            profile: profile.clone(),
            mode: mode.map(|m| m & MODE_PERMS),
            entries: BTreeMap::new(),
        }
    }

    /// Add an entry; refuses invalid and duplicate names.
    pub fn add(&mut self, name: &str, entry: Imported) -> Result<(), ImportError> {
        if let Some(reason) = invalid_name_reason(name) {
            return Err(ImportError::InvalidName {
                name: name.to_string(),
                reason,
            });
        }
        if self.entries.contains_key(name) {
            return Err(ImportError::Duplicate(name.to_string()));
        }
        self.entries.insert(name.to_string(), entry);
        Ok(())
    }

    /// How many entries have been added.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn data(&self) -> Data {
        let mut d = Data::new(DataType::Directory);
        d.mode = self.mode;
        d
    }

    fn links(&self) -> Vec<PbLink> {
        self.entries
            .iter()
            .map(|(name, e)| PbLink::new(e.cid, name.clone(), e.tsize))
            .collect()
    }

    /// The size estimate Kubo compares with `hamt_threshold`.
    pub fn estimate(&self) -> usize {
        match self.profile.hamt_estimate {
            HamtEstimate::Links => self
                .entries
                .iter()
                .map(|(name, e)| name.len() + e.cid.encoded_len())
                .sum(),
            HamtEstimate::Block => {
                let data = self.data().encode().len();
                let links: usize = self.links().iter().map(PbLink::encoded_len).sum();
                1 + varint::len(data as u64) + data + links
            }
        }
    }

    /// Whether [`DirBuilder::finish`] will write a HAMT.
    pub fn will_shard(&self) -> bool {
        self.profile.hamt_threshold > 0
            && !self.entries.is_empty()
            && self.estimate() > self.profile.hamt_threshold
    }

    /// Write the directory and return its root.
    pub fn finish(self, sink: &mut dyn BlockSink) -> io::Result<Imported> {
        if self.will_shard() {
            let entries = self
                .entries
                .into_iter()
                .map(|(name, e)| HamtEntry {
                    name,
                    cid: e.cid,
                    tsize: e.tsize,
                })
                .collect();
            let (cid, tsize) = hamt::write_hamt(
                entries,
                self.profile.hamt_fanout as u64,
                self.profile.cid_version,
                self.mode,
                sink,
            )
            .map_err(|e| match e {
                HamtWriteError::Io(e) => e,
                other => io::Error::new(io::ErrorKind::InvalidInput, other),
            })?;
            return Ok(Imported {
                cid,
                tsize,
                size: 0,
            });
        }
        let node = PbNode {
            links: self.links(),
            data: Some(self.data().encode()),
        };
        let bytes = node.encode();
        let cid = put_block(sink, self.profile.cid_version, Codec::DagPb, &bytes)?;
        let tsize = bytes.len() as u64 + self.entries.values().map(|e| e.tsize).sum::<u64>();
        Ok(Imported {
            cid,
            tsize,
            size: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemSink, NullSink};

    #[test]
    fn well_known_cids() {
        let v0 = Profile::v0_2015();
        let v1 = Profile::v1_2025();
        let e = DirBuilder::new(&v0, None).finish(&mut NullSink).unwrap();
        assert_eq!(
            e.cid.to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
        let e = DirBuilder::new(&v1, None).finish(&mut NullSink).unwrap();
        assert_eq!(
            e.cid.to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
        let f = import_bytes(&v0, b"", &mut NullSink).unwrap();
        assert_eq!(
            f.cid.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        let f = import_bytes(&v1, b"hello world", &mut NullSink).unwrap();
        assert_eq!(
            f.cid.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        let f = import_bytes(&v0, b"hello world", &mut NullSink).unwrap();
        assert_eq!(
            f.cid.to_string(),
            "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
        );
    }

    #[test]
    fn mode_turns_off_raw_leaves() {
        // Kubo 0.42: `printf 'hello\n' | ipfs add --cid-version=1 --preserve-mode`
        // on a 0755 file gives this dag-pb root with mode 0o755.
        let v1 = Profile::v1_2025();
        let mut fb = FileBuilder::new(&v1, Some(0o100755));
        let mut sink = MemSink::default();
        fb.push_chunk(b"hello\n", &mut sink).unwrap();
        let f = fb.finish(&mut sink).unwrap();
        assert_eq!(
            f.cid.to_string(),
            "bafybeigci6lwb2rb6tv4ld2a6i27wpesmp2kprahfzauwbcvtqgb2iqmmi"
        );
        assert_eq!(sink.blocks.len(), 1);
    }

    #[test]
    fn refuses_bad_names() {
        let v1 = Profile::v1_2025();
        let f = import_bytes(&v1, b"x", &mut NullSink).unwrap();
        let mut d = DirBuilder::new(&v1, None);
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(matches!(
                d.add(bad, f),
                Err(ImportError::InvalidName { .. })
            ));
        }
        d.add("a", f).unwrap();
        assert!(matches!(d.add("a", f), Err(ImportError::Duplicate(_))));
    }
}

#[cfg(test)]
mod parallel_tests {
    use super::*;
    use crate::MemSink;

    /// `push_chunks` (hashing on several threads) must give exactly the blocks,
    /// in exactly the order, that one `push_chunk` per chunk gives.
    #[test]
    fn push_chunks_equals_push_chunk() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (version, raw) in [(0u8, false), (1, false), (1, true)] {
            let mut profile = Profile::v1_2025();
            profile.cid_version = version;
            profile.raw_leaves = raw;
            profile.chunk_size = 1000;
            profile.max_links = 5;
            let chunks: Vec<&[u8]> = data.chunks(profile.chunk_size).collect();

            let mut serial = MemSink::default();
            let mut fb = FileBuilder::new(&profile, None);
            for c in &chunks {
                fb.push_chunk(c, &mut serial).unwrap();
            }
            let a = fb.finish(&mut serial).unwrap();

            for width in [2, 3, 7] {
                let mut parallel = MemSink::default();
                let mut fb = FileBuilder::new(&profile, None);
                for batch in chunks.chunks(width) {
                    fb.push_chunks(batch, &mut parallel).unwrap();
                }
                let b = fb.finish(&mut parallel).unwrap();
                assert_eq!(a, b, "v{version} raw={raw} width={width}");
                assert_eq!(
                    serial.blocks, parallel.blocks,
                    "v{version} raw={raw} width={width}"
                );
            }
        }
    }
}

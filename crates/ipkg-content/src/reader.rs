//! The UnixFS reader: resolves paths, streams file bytes and walks trees over any
//! [`super::BlockGet`].
//!
//! Goals: read anything Kubo or another UnixFS implementation writes — dag-pb
//! files with data in inner nodes too, raw leaves, trickle-shaped DAGs (the
//! reader just follows links in order), identity CIDs, basic and HAMT-sharded
//! directories — in memory proportional to the DAG's depth, and refuse what would
//! be unsafe to unpack: entry names that are empty, `.`, `..` or contain `/` or
//! NUL, and files whose recorded sizes disagree with their blocks.
//!
//! Non-goals: following symlinks while resolving paths (a symlink is returned as
//! itself, as gateways do), seeking, and the UnixFS `Metadata` type.

// A `Cid` is stored inline (up to 64 digest bytes), so errors that name one
// are large; they are the cold path and naming the CID is the point.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::io;

use super::dagpb::{DagPbError, PbLink, PbNode};
use super::hamt;
use super::importer::invalid_name_reason;
use super::unixfs::{Data, DataType, Mtime, UnixFsError};
use super::{BlockGet, Cid, Codec, GetError, MAX_BLOCK_SIZE, cid::IDENTITY};

/// Why a UnixFS DAG could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Get(#[from] GetError),
    #[error("block `{cid}` is {size} bytes, more than the {MAX_BLOCK_SIZE}-byte limit")]
    TooLarge { cid: Cid, size: usize },
    #[error("block `{cid}` uses codec 0x{codec:x}, which is not UnixFS")]
    UnsupportedCodec { cid: Cid, codec: u64 },
    #[error("block `{cid}` is not valid dag-pb")]
    DagPb {
        cid: Cid,
        #[source]
        source: DagPbError,
    },
    #[error("block `{cid}` has no UnixFS data")]
    NoData { cid: Cid },
    #[error("block `{cid}` has invalid UnixFS data")]
    UnixFs {
        cid: Cid,
        #[source]
        source: UnixFsError,
    },
    #[error("`{cid}` is a {found}, expected a {expected}")]
    WrongKind {
        cid: Cid,
        expected: &'static str,
        found: &'static str,
    },
    #[error("directory `{cid}` has an invalid entry name `{name}`: {reason}")]
    BadName {
        cid: Cid,
        name: String,
        reason: &'static str,
    },
    #[error("directory `{cid}` has two entries named `{name}`")]
    DuplicateName { cid: Cid, name: String },
    #[error("`{path}` not found: directory `{cid}` has no entry `{name}`")]
    NotFound {
        cid: Cid,
        name: String,
        path: String,
    },
    #[error("`{path}` is not a directory (`{cid}`)")]
    NotADirectory { cid: Cid, path: String },
    #[error("file node `{cid}` is inconsistent: {reason}")]
    SizeMismatch { cid: Cid, reason: String },
    #[error("HAMT shard `{cid}` is invalid: {reason}")]
    Hamt { cid: Cid, reason: String },
    #[error("file `{cid}` is nested more than {MAX_DEPTH} levels deep")]
    TooDeep { cid: Cid },
}

/// The deepest file DAG the reader follows (a 1 TiB file with 174 links and
/// 256 KiB chunks is 4 levels deep; trickle DAGs go deeper).
pub const MAX_DEPTH: usize = 1024;

/// What a UnixFS node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A dag-pb UnixFS file.
    File,
    /// A raw block (codec 0x55) or identity CID: a file of those bytes.
    Raw,
    Directory,
    HamtDirectory,
    Symlink,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::File | NodeKind::Raw => "file",
            NodeKind::Directory | NodeKind::HamtDirectory => "directory",
            NodeKind::Symlink => "symlink",
        }
    }

    pub fn is_dir(self) -> bool {
        matches!(self, NodeKind::Directory | NodeKind::HamtDirectory)
    }

    pub fn is_file(self) -> bool {
        matches!(self, NodeKind::File | NodeKind::Raw)
    }
}

/// What [`stat`] says about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub kind: NodeKind,
    /// File bytes; the target's length for a symlink; 0 for a directory.
    pub size: u64,
    /// Permission bits, when recorded.
    pub mode: Option<u32>,
    pub mtime: Option<Mtime>,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub cid: Cid,
    pub tsize: Option<u64>,
}

/// A decoded block.
enum Node {
    Raw(Vec<u8>),
    Pb { pb: PbNode, data: Data },
}

fn load<G: BlockGet + ?Sized>(get: &G, cid: &Cid) -> Result<Node, ReadError> {
    let bytes = if cid.hash().code() == IDENTITY {
        cid.hash().digest().to_vec()
    } else {
        get.get_block(cid)?
    };
    if bytes.len() > MAX_BLOCK_SIZE {
        return Err(ReadError::TooLarge {
            cid: *cid,
            size: bytes.len(),
        });
    }
    match Codec::from_code(cid.codec()) {
        Some(Codec::Raw) => Ok(Node::Raw(bytes)),
        Some(Codec::DagPb) => {
            let pb =
                PbNode::decode(&bytes).map_err(|source| ReadError::DagPb { cid: *cid, source })?;
            let raw = pb.data.as_deref().ok_or(ReadError::NoData { cid: *cid })?;
            let data =
                Data::decode(raw).map_err(|source| ReadError::UnixFs { cid: *cid, source })?;
            Ok(Node::Pb { pb, data })
        }
        _ => Err(ReadError::UnsupportedCodec {
            cid: *cid,
            codec: cid.codec(),
        }),
    }
}

fn kind_of(node: &Node) -> Option<NodeKind> {
    match node {
        Node::Raw(_) => Some(NodeKind::Raw),
        Node::Pb { data, .. } => match data.data_type {
            DataType::File | DataType::Raw => Some(NodeKind::File),
            DataType::Directory => Some(NodeKind::Directory),
            DataType::HAMTShard => Some(NodeKind::HamtDirectory),
            DataType::Symlink => Some(NodeKind::Symlink),
            DataType::Metadata => None,
        },
    }
}

fn kind_name(node: &Node) -> &'static str {
    kind_of(node).map_or("metadata node", NodeKind::name)
}

/// The file size a node declares, checked against its own parts: blocksizes
/// must match the links one for one and add up, with the inline data, to
/// filesize.
fn file_node_size(cid: &Cid, pb: &PbNode, data: &Data) -> Result<u64, ReadError> {
    let inline = data.data.as_ref().map_or(0, |d| d.len() as u64);
    let mismatch = |reason: String| ReadError::SizeMismatch { cid: *cid, reason };
    if data.blocksizes.len() != pb.links.len() {
        return Err(mismatch(format!(
            "{} links but {} blocksizes",
            pb.links.len(),
            data.blocksizes.len()
        )));
    }
    let sum = data
        .blocksizes
        .iter()
        .try_fold(inline, |a, &b| a.checked_add(b))
        .ok_or_else(|| mismatch("blocksizes overflow".into()))?;
    match data.filesize {
        Some(fs) if fs != sum => Err(mismatch(format!(
            "filesize {fs} but data and blocksizes add up to {sum}"
        ))),
        _ => Ok(sum),
    }
}

/// What kind of node `cid` is, with its size and metadata.
pub fn stat<G: BlockGet + ?Sized>(get: &G, cid: &Cid) -> Result<Stat, ReadError> {
    let node = load(get, cid)?;
    let kind = kind_of(&node).ok_or(ReadError::WrongKind {
        cid: *cid,
        expected: "file, directory or symlink",
        found: "metadata node",
    })?;
    Ok(match node {
        Node::Raw(bytes) => Stat {
            kind,
            size: bytes.len() as u64,
            mode: None,
            mtime: None,
        },
        Node::Pb { pb, data } => Stat {
            kind,
            size: match kind {
                NodeKind::File => file_node_size(cid, &pb, &data)?,
                NodeKind::Symlink => data.data.as_ref().map_or(0, |d| d.len() as u64),
                _ => 0,
            },
            mode: data.perms(),
            mtime: data.mtime,
        },
    })
}

/// The target of the symlink at `cid`.
pub fn read_symlink<G: BlockGet + ?Sized>(get: &G, cid: &Cid) -> Result<String, ReadError> {
    match load(get, cid)? {
        Node::Pb { data, .. } if data.data_type == DataType::Symlink => {
            let target = data.data.unwrap_or_default();
            String::from_utf8(target).map_err(|_| ReadError::SizeMismatch {
                cid: *cid,
                reason: "symlink target is not UTF-8".into(),
            })
        }
        other => Err(ReadError::WrongKind {
            cid: *cid,
            expected: "symlink",
            found: kind_name(&other),
        }),
    }
}

fn check_name(cid: &Cid, name: &str) -> Result<(), ReadError> {
    match invalid_name_reason(name) {
        Some(reason) => Err(ReadError::BadName {
            cid: *cid,
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The entries of the (basic or HAMT) directory at `cid`, in name order for a
/// basic directory and hash order for a HAMT.
pub fn list_dir<G: BlockGet + ?Sized>(get: &G, cid: &Cid) -> Result<Vec<DirEntry>, ReadError> {
    let mut out = Vec::new();
    match load(get, cid)? {
        Node::Pb { pb, data } if data.data_type == DataType::Directory => {
            for l in pb.links {
                let name = l.name.unwrap_or_default();
                out.push(DirEntry {
                    name,
                    cid: l.cid,
                    tsize: l.tsize,
                });
            }
        }
        Node::Pb { pb, data } if data.data_type == DataType::HAMTShard => {
            list_shard(get, cid, pb, &data, 0, &mut out)?;
        }
        other => {
            return Err(ReadError::WrongKind {
                cid: *cid,
                expected: "directory",
                found: kind_name(&other),
            });
        }
    }
    let mut seen = HashSet::with_capacity(out.len());
    for e in &out {
        check_name(cid, &e.name)?;
        if !seen.insert(e.name.as_str()) {
            return Err(ReadError::DuplicateName {
                cid: *cid,
                name: e.name.clone(),
            });
        }
    }
    Ok(out)
}

/// Fanout bits and prefix width of a shard, after checking its header.
fn shard_params(cid: &Cid, data: &Data) -> Result<(u32, usize), ReadError> {
    let bad = |reason: String| ReadError::Hamt { cid: *cid, reason };
    if data.hash_type != Some(hamt::HASH_MURMUR3) {
        return Err(bad(format!(
            "hash type {:?} is not murmur3 (0x22)",
            data.hash_type
        )));
    }
    let fanout = data.fanout.unwrap_or(0);
    if !(2..=hamt::MAX_FANOUT).contains(&fanout) || !fanout.is_power_of_two() {
        return Err(bad(format!(
            "fanout {fanout} is not a power of two up to 1024"
        )));
    }
    Ok((fanout.trailing_zeros(), hamt::pad_len(fanout)))
}

/// A shard link: its slot and, for an entry, the entry's name.
fn split_shard_link<'a>(
    cid: &Cid,
    link: &'a PbLink,
    pad: usize,
) -> Result<(usize, Option<&'a str>), ReadError> {
    let name = link.name.as_deref().unwrap_or("");
    let bad = || ReadError::Hamt {
        cid: *cid,
        reason: format!("link name `{name}` has no slot prefix"),
    };
    if name.len() < pad || !name.is_char_boundary(pad) {
        return Err(bad());
    }
    let slot = usize::from_str_radix(&name[..pad], 16).map_err(|_| bad())?;
    Ok((slot, (name.len() > pad).then(|| &name[pad..])))
}

fn list_shard<G: BlockGet + ?Sized>(
    get: &G,
    cid: &Cid,
    pb: PbNode,
    data: &Data,
    depth: u32,
    out: &mut Vec<DirEntry>,
) -> Result<(), ReadError> {
    let (bits, pad) = shard_params(cid, data)?;
    if (depth + 1) * bits > 64 {
        return Err(ReadError::Hamt {
            cid: *cid,
            reason: "shards nested deeper than the 64-bit hash allows".into(),
        });
    }
    for l in &pb.links {
        match split_shard_link(cid, l, pad)? {
            (_, Some(name)) => out.push(DirEntry {
                name: name.to_string(),
                cid: l.cid,
                tsize: l.tsize,
            }),
            (_, None) => match load(get, &l.cid)? {
                Node::Pb { pb, data } if data.data_type == DataType::HAMTShard => {
                    list_shard(get, &l.cid, pb, &data, depth + 1, out)?;
                }
                other => {
                    return Err(ReadError::Hamt {
                        cid: *cid,
                        reason: format!(
                            "child `{}` is a {}, not a shard",
                            l.cid,
                            kind_name(&other)
                        ),
                    });
                }
            },
        }
    }
    Ok(())
}

/// Find `name` in the directory `dir` (basic or HAMT): `Ok(None)` when absent,
/// an error when `dir` is not a directory.
pub fn lookup<G: BlockGet + ?Sized>(
    get: &G,
    dir: &Cid,
    name: &str,
) -> Result<Option<DirEntry>, ReadError> {
    check_name(dir, name)?;
    let (pb, data) = match load(get, dir)? {
        Node::Pb { pb, data }
            if matches!(data.data_type, DataType::Directory | DataType::HAMTShard) =>
        {
            (pb, data)
        }
        other => {
            return Err(ReadError::WrongKind {
                cid: *dir,
                expected: "directory",
                found: kind_name(&other),
            });
        }
    };
    if data.data_type == DataType::Directory {
        return Ok(pb
            .links
            .into_iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| DirEntry {
                name: name.to_string(),
                cid: l.cid,
                tsize: l.tsize,
            }));
    }
    let hash = hamt::hash_name(name);
    let (mut shard_cid, mut pb, mut data) = (*dir, pb, data);
    let mut consumed = 0;
    loop {
        let (bits, pad) = shard_params(&shard_cid, &data)?;
        let Some(slot) = hamt::hash_bits(&hash, consumed, bits) else {
            return Ok(None);
        };
        consumed += bits;
        let mut next = None;
        for l in &pb.links {
            match split_shard_link(&shard_cid, l, pad)? {
                (s, Some(n)) if s == slot && n == name => {
                    return Ok(Some(DirEntry {
                        name: name.to_string(),
                        cid: l.cid,
                        tsize: l.tsize,
                    }));
                }
                (s, None) if s == slot => next = Some(l.cid),
                _ => {}
            }
        }
        let Some(child) = next else { return Ok(None) };
        match load(get, &child)? {
            Node::Pb { pb: p, data: d } if d.data_type == DataType::HAMTShard => {
                (shard_cid, pb, data) = (child, p, d);
            }
            other => {
                return Err(ReadError::Hamt {
                    cid: shard_cid,
                    reason: format!("child `{child}` is a {}, not a shard", kind_name(&other)),
                });
            }
        }
    }
}

/// The CID at `path` (segments separated by `/`; empty segments ignored) below
/// `root`, through basic and HAMT directories. Symlinks are not followed.
pub fn resolve_path<G: BlockGet + ?Sized>(
    get: &G,
    root: &Cid,
    path: &str,
) -> Result<Cid, ReadError> {
    let mut cur = *root;
    let mut walked = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let entry = match lookup(get, &cur, seg) {
            Ok(e) => e,
            Err(ReadError::WrongKind { .. }) => {
                return Err(ReadError::NotADirectory {
                    cid: cur,
                    path: if walked.is_empty() {
                        "/".into()
                    } else {
                        walked
                    },
                });
            }
            Err(e) => return Err(e),
        };
        walked.push('/');
        walked.push_str(seg);
        match entry {
            Some(e) => cur = e.cid,
            None => {
                return Err(ReadError::NotFound {
                    cid: cur,
                    name: seg.to_string(),
                    path: walked,
                });
            }
        }
    }
    Ok(cur)
}

struct Frame {
    links: Vec<(Cid, u64)>,
    next: usize,
}

/// Streams the bytes of the file at a CID; memory is one block plus the link
/// lists along the current path.
pub struct FileReader<G: BlockGet> {
    get: G,
    root: Cid,
    size: u64,
    read: u64,
    stack: Vec<Frame>,
    buf: Vec<u8>,
    pos: usize,
}

impl<G: BlockGet> FileReader<G> {
    /// Open the file at `cid`; refuses directories and symlinks.
    pub fn new(get: G, cid: &Cid) -> Result<FileReader<G>, ReadError> {
        let mut r = FileReader {
            get,
            root: *cid,
            size: 0,
            read: 0,
            stack: Vec::new(),
            buf: Vec::new(),
            pos: 0,
        };
        r.size = r.enter(cid, None)?;
        Ok(r)
    }

    /// The file's size as its root declares it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Make `cid` the current block: its inline data becomes the buffer and
    /// its links a new frame. Returns its declared size.
    fn enter(&mut self, cid: &Cid, expected: Option<u64>) -> Result<u64, ReadError> {
        let node = load(&self.get, cid)?;
        let (size, buf, links) = match node {
            Node::Raw(bytes) => (bytes.len() as u64, bytes, Vec::new()),
            Node::Pb { pb, data } if matches!(data.data_type, DataType::File | DataType::Raw) => {
                let size = file_node_size(cid, &pb, &data)?;
                let links = pb
                    .links
                    .iter()
                    .map(|l| l.cid)
                    .zip(data.blocksizes.iter().copied())
                    .collect::<Vec<_>>();
                (size, data.data.unwrap_or_default(), links)
            }
            other => {
                return Err(ReadError::WrongKind {
                    cid: *cid,
                    expected: "file",
                    found: kind_name(&other),
                });
            }
        };
        if let Some(e) = expected.filter(|&e| e != size) {
            return Err(ReadError::SizeMismatch {
                cid: *cid,
                reason: format!("its parent records {e} bytes but it holds {size}"),
            });
        }
        if !links.is_empty() {
            if self.stack.len() >= MAX_DEPTH {
                return Err(ReadError::TooDeep { cid: self.root });
            }
            self.stack.push(Frame { links, next: 0 });
        }
        self.buf = buf;
        self.pos = 0;
        Ok(size)
    }

    /// Refill the buffer; `false` at the end of the file.
    fn advance(&mut self) -> Result<bool, ReadError> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                if self.read != self.size {
                    return Err(ReadError::SizeMismatch {
                        cid: self.root,
                        reason: format!("declares {} bytes but holds {}", self.size, self.read),
                    });
                }
                return Ok(false);
            };
            if top.next == top.links.len() {
                self.stack.pop();
                continue;
            }
            let (cid, expected) = top.links[top.next];
            top.next += 1;
            self.enter(&cid, Some(expected))?;
            if !self.buf.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl<G: BlockGet> io::Read for FileReader<G> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.buf.len() && !self.advance().map_err(io::Error::other)? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::{DirBuilder, FileBuilder, Imported, import_bytes, symlink};
    use crate::profile::{HamtEstimate, Profile};
    use crate::{MemSink, cid::cid_of};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};
    use std::io::Read;

    fn store(sink: MemSink) -> HashMap<Cid, Vec<u8>> {
        sink.blocks.into_iter().map(|b| (b.cid, b.data)).collect()
    }

    fn small_profile(v1: bool, raw: bool, chunk: usize, links: usize) -> Profile {
        let mut p = if v1 {
            Profile::v1_2025()
        } else {
            Profile::v0_2015()
        };
        p.raw_leaves = raw && v1;
        p.chunk_size = chunk;
        p.max_links = links;
        p
    }

    fn read_all(get: &HashMap<Cid, Vec<u8>>, cid: &Cid) -> Vec<u8> {
        let mut out = Vec::new();
        FileReader::new(get, cid)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn tree_round_trip_and_errors() {
        let p = Profile::v1_2025();
        let mut sink = MemSink::default();
        let f = import_bytes(&p, b"hello", &mut sink).unwrap();
        let l = symlink(&p, "a.txt", &mut sink).unwrap();
        let mut sub = DirBuilder::new(&p, Some(0o755));
        sub.add("f", f).unwrap();
        let sub = sub.finish(&mut sink).unwrap();
        let mut root = DirBuilder::new(&p, None);
        root.add("sub", sub).unwrap();
        root.add("link", l).unwrap();
        let root = root.finish(&mut sink).unwrap();
        let get = store(sink);
        assert_eq!(resolve_path(&get, &root.cid, "/sub/f").unwrap(), f.cid);
        assert_eq!(resolve_path(&get, &root.cid, "").unwrap(), root.cid);
        assert_eq!(read_symlink(&get, &l.cid).unwrap(), "a.txt");
        let st = stat(&get, &sub.cid).unwrap();
        assert_eq!(st.kind, NodeKind::Directory);
        assert_eq!(st.mode, Some(0o755));
        assert_eq!(stat(&get, &f.cid).unwrap().kind, NodeKind::Raw);
        assert!(matches!(
            resolve_path(&get, &root.cid, "sub/nope"),
            Err(ReadError::NotFound { .. })
        ));
        assert!(matches!(
            resolve_path(&get, &root.cid, "sub/f/x"),
            Err(ReadError::NotADirectory { .. })
        ));
        assert!(matches!(
            FileReader::new(&get, &root.cid),
            Err(ReadError::WrongKind { .. })
        ));
    }

    #[test]
    fn identity_cid_is_a_file() {
        let mh = multihash::Multihash::wrap(IDENTITY, b"inline").unwrap();
        let cid = Cid::new_v1(Codec::Raw.code(), mh);
        let get: HashMap<Cid, Vec<u8>> = HashMap::new();
        assert_eq!(read_all(&get, &cid), b"inline");
    }

    fn dir_with(names: &[&str]) -> (HashMap<Cid, Vec<u8>>, Cid) {
        let file = cid_of(1, Codec::Raw, b"x");
        let links = names.iter().map(|n| PbLink::new(file, *n, 1)).collect();
        let bytes = PbNode {
            links,
            data: Some(Data::new(DataType::Directory).encode()),
        }
        .encode();
        let cid = cid_of(1, Codec::DagPb, &bytes);
        (HashMap::from([(cid, bytes)]), cid)
    }

    #[test]
    fn refuses_unsafe_names() {
        for bad in ["..", ".", "", "a/b", "a\0"] {
            let (get, cid) = dir_with(&["ok", bad]);
            assert!(
                matches!(list_dir(&get, &cid), Err(ReadError::BadName { ref name, .. }) if name == bad),
                "{bad:?}"
            );
        }
        let (get, cid) = dir_with(&["a", "a"]);
        assert!(matches!(
            list_dir(&get, &cid),
            Err(ReadError::DuplicateName { .. })
        ));
    }

    #[test]
    fn refuses_inconsistent_sizes() {
        let leaf = cid_of(1, Codec::Raw, b"abc");
        let mut d = Data::new(DataType::File);
        d.filesize = Some(4);
        d.blocksizes = vec![4];
        let bytes = PbNode {
            links: vec![PbLink::new(leaf, "", 3)],
            data: Some(d.encode()),
        }
        .encode();
        let root = cid_of(1, Codec::DagPb, &bytes);
        let get = HashMap::from([(root, bytes), (leaf, b"abc".to_vec())]);
        let mut out = Vec::new();
        let err = FileReader::new(&get, &root)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(err.to_string().contains("records 4 bytes"), "{err}");
        // filesize disagreeing with blocksizes
        let mut d = Data::new(DataType::File);
        d.filesize = Some(5);
        d.blocksizes = vec![3];
        let bytes = PbNode {
            links: vec![PbLink::new(leaf, "", 3)],
            data: Some(d.encode()),
        }
        .encode();
        let root = cid_of(1, Codec::DagPb, &bytes);
        let get = HashMap::from([(root, bytes)]);
        assert!(matches!(
            FileReader::new(&get, &root),
            Err(ReadError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn data_in_inner_nodes() {
        // A trickle-style node: inline data then a child.
        let leaf = cid_of(1, Codec::Raw, b"world");
        let mut d = Data::new(DataType::File);
        d.data = Some(b"hello ".to_vec());
        d.filesize = Some(11);
        d.blocksizes = vec![5];
        let bytes = PbNode {
            links: vec![PbLink::new(leaf, "", 5)],
            data: Some(d.encode()),
        }
        .encode();
        let root = cid_of(0, Codec::DagPb, &bytes);
        let get = HashMap::from([(root, bytes), (leaf, b"world".to_vec())]);
        assert_eq!(read_all(&get, &root), b"hello world");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn file_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk in 1usize..200,
            links in 2usize..6,
            v1 in any::<bool>(),
            raw in any::<bool>(),
            mode in proptest::option::of(0u32..0o7777),
        ) {
            let p = small_profile(v1, raw, chunk, links);
            let mut sink = MemSink::default();
            let mut fb = FileBuilder::new(&p, mode);
            for c in data.chunks(chunk) {
                fb.push_chunk(c, &mut sink).unwrap();
            }
            let f = fb.finish(&mut sink).unwrap();
            prop_assert_eq!(f.size, data.len() as u64);
            // Tsize counts every block written, shared chunks included.
            let written: u64 = sink.blocks.iter().map(|b| b.data.len() as u64).sum();
            prop_assert_eq!(f.tsize, written);
            let get = store(sink);
            prop_assert_eq!(read_all(&get, &f.cid), data);
            let st = stat(&get, &f.cid).unwrap();
            prop_assert!(st.kind.is_file());
            prop_assert_eq!(st.size, f.size);
        }

        #[test]
        fn dir_round_trip(
            names in proptest::collection::btree_set("[a-zA-Z0-9._-]{1,12}", 0..80),
            threshold in prop_oneof![Just(1usize), Just(1_000_000)],
            fanout in prop_oneof![Just(8usize), Just(16), Just(256)],
            block in any::<bool>(),
            v1 in any::<bool>(),
        ) {
            let names: Vec<String> = names.into_iter().filter(|n| n != "." && n != "..").collect();
            let mut p = small_profile(v1, true, 64, 4);
            p.hamt_threshold = threshold;
            p.hamt_fanout = fanout;
            p.hamt_estimate = if block { HamtEstimate::Block } else { HamtEstimate::Links };
            let mut sink = MemSink::default();
            let mut want = BTreeMap::new();
            let mut dir = DirBuilder::new(&p, None);
            for n in &names {
                let f: Imported = import_bytes(&p, n.as_bytes(), &mut sink).unwrap();
                dir.add(n, f).unwrap();
                want.insert(n.clone(), f);
            }
            let sharded = dir.will_shard();
            let d = dir.finish(&mut sink).unwrap();
            let get = store(sink);
            let kind = stat(&get, &d.cid).unwrap().kind;
            prop_assert_eq!(kind == NodeKind::HamtDirectory, sharded);
            prop_assert_eq!(sharded, threshold == 1 && !names.is_empty());
            let mut got: Vec<DirEntry> = list_dir(&get, &d.cid).unwrap();
            got.sort_by(|a, b| a.name.cmp(&b.name));
            let want_entries: Vec<DirEntry> = want
                .iter()
                .map(|(n, f)| DirEntry { name: n.clone(), cid: f.cid, tsize: Some(f.tsize) })
                .collect();
            prop_assert_eq!(got, want_entries);
            for (n, f) in &want {
                prop_assert_eq!(resolve_path(&get, &d.cid, n).unwrap(), f.cid);
            }
            prop_assert!(lookup(&get, &d.cid, "not-there!").unwrap().is_none());
        }
    }
}

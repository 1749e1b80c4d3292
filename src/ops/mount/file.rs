//! Random-access reads of a UnixFS file DAG, for the lazy mount.
//!
//! [`crate::content::reader::FileReader`] streams a file from its start; a
//! file system is asked for arbitrary ranges. This walks from the file's
//! root to the leaves that overlap the range, using each node's
//! `blocksizes` to skip the rest, so a read at the end of a 1 GiB file
//! fetches one path of blocks, not the file. Sizes are checked on the way
//! down as the streaming reader checks them: a node whose parts disagree
//! with what its parent recorded is an error, never short or padded data.
//!
//! After serving a range, the leaves that follow it are handed to the
//! prefetchers: sequential reads find their next blocks already fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::content::dagpb::PbNode;
use crate::content::unixfs::{Data, DataType};
use crate::content::{Cid, Codec, GetError};

use super::blocks::LazyBlocks;

/// The deepest file DAG followed (a balanced 1 TiB file with 174 links per
/// node is 5 levels; trickle DAGs go deeper).
const MAX_DEPTH: usize = 64;

/// Leaves handed to the prefetchers after each read.
const READ_AHEAD_BLOCKS: usize = 8;

/// Decoded inner nodes kept in memory (their links and sizes).
const NODE_CACHE: usize = 4096;

/// Why a range could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Get(#[from] GetError),
    #[error("block `{cid}` is not a UnixFS file node: {reason}")]
    Bad { cid: Cid, reason: String },
}

/// A decoded file node: inline data, then children with their sizes.
struct Inner {
    inline: Vec<u8>,
    children: Vec<(Cid, u64)>,
    size: u64,
}

/// Inner nodes of the files being read, shared by every read of a mount.
#[derive(Default)]
pub struct FileCache {
    nodes: Mutex<HashMap<Cid, Arc<Inner>>>,
}

enum Node {
    Leaf(Arc<Vec<u8>>),
    Inner(Arc<Inner>),
}

impl FileCache {
    fn node(&self, blocks: &LazyBlocks, cid: &Cid) -> Result<Node, FileError> {
        if let Some(n) = self.nodes.lock().ok().and_then(|n| n.get(cid).cloned()) {
            return Ok(Node::Inner(n));
        }
        let bytes = blocks.block(cid)?;
        if cid.codec() == Codec::Raw.code() || cid.hash().code() == crate::content::cid::IDENTITY {
            return Ok(Node::Leaf(bytes));
        }
        if cid.codec() != Codec::DagPb.code() {
            return Err(bad(cid, format!("codec 0x{:x}", cid.codec())));
        }
        let pb = PbNode::decode(&bytes).map_err(|e| bad(cid, e.to_string()))?;
        let raw = pb
            .data
            .as_deref()
            .ok_or_else(|| bad(cid, "no data".into()))?;
        let data = Data::decode(raw).map_err(|e| bad(cid, e.to_string()))?;
        if !matches!(data.data_type, DataType::File | DataType::Raw) {
            return Err(bad(cid, "not a file".into()));
        }
        if data.blocksizes.len() != pb.links.len() {
            return Err(bad(cid, "links and blocksizes differ in number".into()));
        }
        let inline = data.data.unwrap_or_default();
        let size = data
            .blocksizes
            .iter()
            .try_fold(inline.len() as u64, |a, &b| a.checked_add(b))
            .ok_or_else(|| bad(cid, "blocksizes overflow".into()))?;
        if data.filesize.is_some_and(|f| f != size) {
            return Err(bad(cid, "filesize disagrees with its parts".into()));
        }
        let inner = Arc::new(Inner {
            inline,
            children: pb
                .links
                .iter()
                .map(|l| l.cid)
                .zip(data.blocksizes)
                .collect(),
            size,
        });
        if let Ok(mut n) = self.nodes.lock() {
            if n.len() >= NODE_CACHE {
                n.clear();
            }
            n.insert(*cid, Arc::clone(&inner));
        }
        Ok(Node::Inner(inner))
    }

    /// Up to `len` bytes of the file at `root` from `offset` (fewer only at
    /// the end of the file).
    pub fn read_at(
        &self,
        blocks: &LazyBlocks,
        root: &Cid,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, FileError> {
        let mut out = Vec::with_capacity(len);
        let end = offset.saturating_add(len as u64);
        let mut ahead = Vec::new();
        self.read_node(blocks, root, None, offset, end, 0, &mut out, &mut ahead)?;
        blocks.prefetch(ahead);
        Ok(out)
    }

    /// Append the bytes of `[from, to)` (relative to this node) to `out`.
    #[allow(clippy::too_many_arguments)]
    fn read_node(
        &self,
        blocks: &LazyBlocks,
        cid: &Cid,
        expected: Option<u64>,
        from: u64,
        to: u64,
        depth: usize,
        out: &mut Vec<u8>,
        ahead: &mut Vec<Cid>,
    ) -> Result<(), FileError> {
        if depth > MAX_DEPTH {
            return Err(bad(cid, format!("nested more than {MAX_DEPTH} levels")));
        }
        match self.node(blocks, cid)? {
            Node::Leaf(bytes) => {
                if expected.is_some_and(|e| e != bytes.len() as u64) {
                    return Err(bad(cid, "its parent records another size".into()));
                }
                let a = (from as usize).min(bytes.len());
                let b = (to as usize).min(bytes.len());
                out.extend_from_slice(&bytes[a..b]);
            }
            Node::Inner(n) => {
                if expected.is_some_and(|e| e != n.size) {
                    return Err(bad(cid, "its parent records another size".into()));
                }
                let il = n.inline.len() as u64;
                if from < il {
                    out.extend_from_slice(&n.inline[from as usize..to.min(il) as usize]);
                }
                let mut start = il;
                let mut last = None;
                for (i, (child, size)) in n.children.iter().enumerate() {
                    let stop = start + size;
                    if stop > from && start < to {
                        let a = from.saturating_sub(start);
                        let b = (to - start).min(*size);
                        self.read_node(blocks, child, Some(*size), a, b, depth + 1, out, ahead)?;
                        last = Some(i);
                    }
                    if start >= to {
                        break;
                    }
                    start = stop;
                }
                if let Some(i) = last {
                    ahead.extend(
                        n.children
                            .iter()
                            .skip(i + 1)
                            .take(READ_AHEAD_BLOCKS)
                            .map(|(c, _)| *c),
                    );
                }
            }
        }
        Ok(())
    }
}

fn bad(cid: &Cid, reason: String) -> FileError {
    FileError::Bad { cid: *cid, reason }
}

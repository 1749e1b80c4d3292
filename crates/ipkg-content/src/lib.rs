//! Content: CIDs, dag-pb, UnixFS import and export, HAMT directories and CAR files.
//!
//! The content layer of [ipkg](https://crates.io/crates/ipkg), usable on its own;
//! ipkg re-exports it as `ipkg::content`.
//!
//! Goals: CIDs byte-identical to Kubo's for the same input and import settings
//! (see [`profile`]), decoders that accept anything Kubo or a gateway may serve and
//! reject what would be unsafe, and memory that stays flat as files grow.
//!
//! Non-goals: I/O. Nothing in this layer opens a file or a socket. The importer
//! takes chunks and hands finished blocks to a [`BlockSink`]; the reader asks a
//! [`BlockGet`] for blocks. Callers provide those (in ipkg: its `sources` and
//! `ops` modules). The crate depends on no file, socket or async crate, and CI
//! checks that it stays so (`cargo tree -p ipkg-content -e normal`).

pub mod car;
pub mod cid;
pub mod dagpb;
pub mod hamt;
pub mod importer;
pub mod profile;
pub mod reader;
pub mod unixfs;
pub mod varint;

pub use self::cid::{Block, Cid, Codec};

/// The largest block ipkg accepts from anywhere (the bitswap limit Kubo enforces).
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// Where the importer puts the blocks it makes.
///
/// The importer calls `put` once for every block it finishes, children before
/// parents. A sink that only counts gives `--only-hash`.
pub trait BlockSink {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> std::io::Result<()>;
}

/// A sink that keeps nothing: used for `--only-hash`.
#[derive(Debug, Default)]
pub struct NullSink;

impl BlockSink for NullSink {
    fn put(&mut self, _cid: &Cid, _data: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps every block in memory, in the order it was made. For tests
/// and small DAGs.
#[derive(Debug, Default)]
pub struct MemSink {
    pub blocks: Vec<Block>,
}

impl BlockSink for MemSink {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> std::io::Result<()> {
        self.blocks.push(Block {
            cid: *cid,
            data: data.to_vec(),
        });
        Ok(())
    }
}

/// How the reader gets a block it needs. Implementations must return only bytes
/// that hash to `cid` (the embedded store and every network source verify).
pub trait BlockGet {
    /// The block's bytes, or an error naming `cid` if it cannot be had.
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError>;

    /// Whether the block is there, without reading (or verifying) it when
    /// the implementation can tell cheaply.
    fn has_block(&self, cid: &Cid) -> bool {
        self.get_block(cid).is_ok()
    }
}

/// Why a block could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("missing block `{0}`")]
    Missing(Cid),
    #[error("block `{cid}` does not hash to its CID")]
    Corrupt { cid: Cid },
    #[error("could not read block `{cid}`")]
    Io {
        cid: Cid,
        #[source]
        source: std::io::Error,
    },
}

impl<T: BlockGet + ?Sized> BlockGet for &T {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        (**self).get_block(cid)
    }

    fn has_block(&self, cid: &Cid) -> bool {
        (**self).has_block(cid)
    }
}

impl BlockGet for std::collections::HashMap<Cid, Vec<u8>> {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        self.get(cid).cloned().ok_or(GetError::Missing(*cid))
    }
}

/// Why the links of a block could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum LinksError {
    #[error("block `{cid}` is not valid dag-pb")]
    DagPb {
        cid: Cid,
        #[source]
        source: dagpb::DagPbError,
    },
    #[error("block `{cid}` is not valid dag-cbor: {reason}")]
    DagCbor { cid: Cid, reason: String },
    #[error("block `{cid}` uses codec 0x{code:x}, which ipkg cannot traverse")]
    UnknownCodec { cid: Cid, code: u64 },
}

/// The CIDs a block links to, in the order they appear.
pub fn links_of(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, LinksError> {
    match Codec::from_code(cid.codec()) {
        Some(Codec::Raw) | Some(Codec::Libp2pKey) => Ok(Vec::new()),
        Some(Codec::DagPb) => {
            let node = dagpb::PbNode::decode(data)
                .map_err(|source| LinksError::DagPb { cid: *cid, source })?;
            Ok(node.links.into_iter().map(|l| l.cid).collect())
        }
        Some(Codec::DagCbor) => {
            let value: ipld_core::ipld::Ipld =
                serde_ipld_dagcbor::from_slice(data).map_err(|e| LinksError::DagCbor {
                    cid: *cid,
                    reason: e.to_string(),
                })?;
            let mut out = Vec::new();
            let mut stack = vec![&value];
            // Depth-first, in document order (map entries in key order).
            while let Some(v) = stack.pop() {
                match v {
                    ipld_core::ipld::Ipld::Link(c) => out.push(*c),
                    ipld_core::ipld::Ipld::List(items) => stack.extend(items.iter().rev()),
                    ipld_core::ipld::Ipld::Map(map) => stack.extend(map.values().rev()),
                    _ => {}
                }
            }
            Ok(out)
        }
        None => Err(LinksError::UnknownCodec {
            cid: *cid,
            code: cid.codec(),
        }),
    }
}

#[cfg(test)]
mod links_tests {
    use super::*;

    /// Regression: dag-cbor documents (release statements, the registry index)
    /// used to be opaque to `links_of`, so gc and CAR export stopped at them.
    #[test]
    fn dag_cbor_links_are_followed_in_order() {
        let a = cid::cid_of(1, Codec::Raw, b"a");
        let b = cid::cid_of(1, Codec::Raw, b"b");
        let doc = ipld_core::ipld!({"first": a, "list": [1, b], "text": "no link"});
        let bytes = serde_ipld_dagcbor::to_vec(&doc).unwrap();
        let c = cid::cid_of(1, Codec::DagCbor, &bytes);
        assert_eq!(links_of(&c, &bytes).unwrap(), vec![a, b]);
        assert!(links_of(&c, b"\xff").is_err());
    }
}

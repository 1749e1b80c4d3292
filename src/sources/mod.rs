//! Sources: where blocks come from and where they go.
//!
//! Every source sits behind [`BlockSource`], so operations never care whether
//! bytes came from the embedded store, a CAR file, a Kubo node or a gateway.
//! Every source verifies each block against its CID before handing it on: a
//! local daemon is trusted no more than a public gateway.

pub mod gateway;
pub mod http;
pub mod kubo;
pub mod store;

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use crate::content::{Cid, GetError, links_of};

use self::store::BlockStore;

/// Why a source could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source does not have the block (a 404, a CAR without it).
    #[error("does not have block `{0}`")]
    Missing(Cid),
    /// The source served bytes that do not hash to the CID asked for. A
    /// source that does this once is dropped for the rest of the operation.
    #[error("served a block that does not match `{cid}`")]
    Corrupt { cid: Cid },
    /// Anything else: a refused connection, a timeout, a bad response.
    #[error("{message}")]
    Other { message: String },
    #[error("could not store block `{cid}`")]
    Store {
        cid: Cid,
        #[source]
        source: std::io::Error,
    },
}

impl From<GetError> for SourceError {
    fn from(e: GetError) -> SourceError {
        match e {
            GetError::Missing(cid) => SourceError::Missing(cid),
            GetError::Corrupt { cid } => SourceError::Corrupt { cid },
            GetError::Io { cid, source } => SourceError::Store { cid, source },
        }
    }
}

/// What a fetch brought in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchStats {
    pub blocks: u64,
    pub bytes: u64,
}

/// A place blocks can be fetched from.
pub trait BlockSource: Send + Sync {
    /// How the source is named in messages: `embedded store`, `CAR file
    /// \`x.car\``, `Kubo RPC at http://127.0.0.1:5001`, `gateway http://…`.
    fn describe(&self) -> String;

    /// One block, verified against `cid`.
    fn block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError>;

    /// Every block of the DAG under `root` that `store` lacks, verified and
    /// put into `store`. The default walks the DAG block by block; sources
    /// that can stream a whole DAG (a CAR over HTTP, `dag/export`) override it.
    /// `progress` is called with the byte count of each new block.
    fn fetch_dag(
        &self,
        root: &Cid,
        store: &BlockStore,
        progress: &dyn Fn(u64),
    ) -> Result<FetchStats, SourceError> {
        let no_car = |_: &Cid| -> CarStream<'_> {
            Err(SourceError::Other {
                message: "serves single blocks only".into(),
            })
        };
        fetch_with_cars(store, root, progress, &|cid| self.block(cid), &no_car)
    }
}

/// A sub-DAG as a CAR byte stream, or why it cannot be had.
pub type CarStream<'a> = Result<Box<dyn Read + 'a>, SourceError>;

/// Fill `store` with the DAG under `root` from a source that serves single
/// blocks (`block`) and whole sub-DAGs as CAR streams (`car`).
///
/// The walk starts at `root` and fetches each missing block on its own, but
/// as soon as it meets a block none of whose children are in the store (a
/// cold sub-DAG, e.g. a first install) it asks for that block's whole sub-DAG
/// as one CAR. An upgrade that shares most blocks with what is installed thus
/// fetches only the new blocks, and a cold install streams one CAR.
///
/// Blocks in a CAR are verified (by the CAR reader and again by the store)
/// and only blocks linked from blocks already received are kept, so a source
/// cannot fill the store with blocks nobody asked for. A CAR that breaks off
/// or cannot be had is not fatal: the walk goes on block by block. A block
/// that does not match its CID is: the source is lying.
pub fn fetch_with_cars<'a>(
    store: &BlockStore,
    root: &Cid,
    progress: &dyn Fn(u64),
    block: &dyn Fn(&Cid) -> Result<Vec<u8>, SourceError>,
    car: &dyn Fn(&Cid) -> CarStream<'a>,
) -> Result<FetchStats, SourceError> {
    let mut stats = FetchStats::default();
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if cid.hash().code() == crate::content::cid::IDENTITY || !seen.insert(cid) {
            continue;
        }
        // A raw block has no links: being there is all that matters.
        let raw = cid.codec() == crate::content::cid::Codec::Raw.code();
        if raw && store.has(&cid) {
            continue;
        }
        let data = match store.get(&cid) {
            Ok(data) => data,
            Err(GetError::Missing(_)) | Err(GetError::Corrupt { .. }) => {
                let data = block(&cid)?;
                if store.put(&cid, &data)? {
                    stats.blocks += 1;
                    stats.bytes += data.len() as u64;
                    progress(data.len() as u64);
                }
                data
            }
            Err(e) => return Err(e.into()),
        };
        let children = links_of(&cid, &data).map_err(|e| SourceError::Other {
            message: e.to_string(),
        })?;
        let cold = !children.is_empty()
            && children
                .iter()
                .all(|c| c.hash().code() != crate::content::cid::IDENTITY && !store.has(c));
        if cold {
            match stream_car(store, &cid, progress, car, &mut stats) {
                Ok(outstanding) => {
                    stack.extend(outstanding);
                    continue;
                }
                Err(e @ SourceError::Corrupt { .. }) | Err(e @ SourceError::Store { .. }) => {
                    return Err(e);
                }
                // Fall back to single blocks for this sub-DAG.
                Err(_) => {}
            }
        }
        stack.extend(children.into_iter().rev());
    }
    Ok(stats)
}

/// Read one CAR for the sub-DAG under `cid` into `store`. Returns the blocks
/// the CAR should have held but did not (empty when the sub-DAG is complete).
fn stream_car<'a>(
    store: &BlockStore,
    cid: &Cid,
    progress: &dyn Fn(u64),
    car: &dyn Fn(&Cid) -> CarStream<'a>,
    stats: &mut FetchStats,
) -> Result<Vec<Cid>, SourceError> {
    use crate::content::car::{CarError, CarReader};
    let reader = car(cid)?;
    let mut reader =
        CarReader::new(std::io::BufReader::with_capacity(1 << 18, reader)).map_err(|e| {
            SourceError::Other {
                message: format!("CAR for `{cid}`: {e}"),
            }
        })?;
    // Blocks are matched by multihash: a CIDv0 link and a CIDv1 section name
    // the same bytes.
    let key = |c: &Cid| c.hash().to_bytes();
    let mut expected: std::collections::HashMap<Vec<u8>, Cid> =
        std::collections::HashMap::from([(key(cid), *cid)]);
    let mut received: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let b = match reader.next_block() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(CarError::HashMismatch { cid: bad, .. }) => {
                return Err(SourceError::Corrupt { cid: bad });
            }
            Err(e) => {
                return Err(SourceError::Other {
                    message: format!("CAR for `{cid}`: {e}"),
                });
            }
        };
        let k = key(&b.cid);
        if !expected.contains_key(&k) || !received.insert(k) {
            continue;
        }
        // The CAR reader hashed the block against its CID already.
        let new = store
            .put_trusted(&b.cid, &b.data)
            .map_err(|source| SourceError::Store { cid: b.cid, source })?;
        if new {
            stats.blocks += 1;
            stats.bytes += b.data.len() as u64;
            progress(b.data.len() as u64);
        }
        let children = links_of(&b.cid, &b.data).map_err(|e| SourceError::Other {
            message: e.to_string(),
        })?;
        for c in children {
            if c.hash().code() != crate::content::cid::IDENTITY {
                expected.entry(key(&c)).or_insert(c);
            }
        }
    }
    Ok(expected
        .into_iter()
        .filter(|(k, _)| !received.contains(k))
        .map(|(_, c)| c)
        .collect())
}

/// A CAR file as a source: every block in it is verified on import.
#[derive(Debug, Clone)]
pub struct CarSource {
    pub path: PathBuf,
}

impl CarSource {
    fn open(
        &self,
    ) -> Result<crate::content::car::CarReader<std::io::BufReader<std::fs::File>>, SourceError>
    {
        let file = std::fs::File::open(&self.path).map_err(|e| SourceError::Other {
            message: format!("cannot open: {e}"),
        })?;
        crate::content::car::CarReader::new(std::io::BufReader::new(file)).map_err(|e| {
            SourceError::Other {
                message: e.to_string(),
            }
        })
    }
}

impl BlockSource for CarSource {
    fn describe(&self) -> String {
        format!("CAR file `{}`", self.path.display())
    }

    fn block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError> {
        let mut reader = self.open()?;
        while let Some(block) = reader.next_block().map_err(|e| SourceError::Other {
            message: e.to_string(),
        })? {
            if block.cid.hash() == cid.hash() {
                return Ok(block.data);
            }
        }
        Err(SourceError::Missing(*cid))
    }

    /// Every block of the file into the store (each verified). Whether the
    /// DAG under `root` is then complete is the caller's check
    /// (`ops::resolve::fetch::fetch_dag` names the first missing block).
    fn fetch_dag(
        &self,
        _root: &Cid,
        store: &BlockStore,
        progress: &dyn Fn(u64),
    ) -> Result<FetchStats, SourceError> {
        let mut reader = self.open()?;
        let mut stats = FetchStats::default();
        while let Some(block) = reader.next_block().map_err(|e| SourceError::Other {
            message: e.to_string(),
        })? {
            if store.put(&block.cid, &block.data)? {
                stats.blocks += 1;
                stats.bytes += block.data.len() as u64;
                progress(block.data.len() as u64);
            }
        }
        Ok(stats)
    }
}

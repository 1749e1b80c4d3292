//! Sources: where blocks come from and where they go.
//!
//! Every source sits behind [`BlockSource`], so operations never care whether
//! bytes came from the embedded store, a CAR file, a Kubo node or a gateway.
//! Every source verifies each block against its CID before handing it on: a
//! local daemon is trusted no more than a public gateway.

pub mod store;

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
        walk_missing(store, root, progress, |cid| self.block(cid))
    }
}

/// Fill `store` with every block under `root` it lacks, asking `fetch` for
/// each one. Blocks are verified again on the way into the store.
pub fn walk_missing(
    store: &BlockStore,
    root: &Cid,
    progress: &dyn Fn(u64),
    mut fetch: impl FnMut(&Cid) -> Result<Vec<u8>, SourceError>,
) -> Result<FetchStats, SourceError> {
    let mut stats = FetchStats::default();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) || cid.hash().code() == crate::content::cid::IDENTITY {
            continue;
        }
        let data = match store.get(&cid) {
            Ok(data) => data,
            Err(GetError::Missing(_)) | Err(GetError::Corrupt { .. }) => {
                let data = fetch(&cid)?;
                if store.put(&cid, &data)? {
                    stats.blocks += 1;
                    stats.bytes += data.len() as u64;
                    progress(data.len() as u64);
                }
                data
            }
            Err(e) => return Err(e.into()),
        };
        match links_of(&cid, &data) {
            Ok(children) => stack.extend(children.into_iter().rev()),
            Err(e) => {
                return Err(SourceError::Other {
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(stats)
}

/// A CAR file as a source: every block in it is verified on import.
#[derive(Debug, Clone)]
pub struct CarSource {
    pub path: PathBuf,
}

impl BlockSource for CarSource {
    fn describe(&self) -> String {
        format!("CAR file `{}`", self.path.display())
    }

    fn block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError> {
        let file = std::fs::File::open(&self.path).map_err(|e| SourceError::Other {
            message: format!("cannot open: {e}"),
        })?;
        let mut reader = crate::content::car::CarReader::new(std::io::BufReader::new(file))
            .map_err(|e| SourceError::Other {
                message: e.to_string(),
            })?;
        while let Some(block) = reader.next_block().map_err(|e| SourceError::Other {
            message: e.to_string(),
        })? {
            if block.cid.hash() == cid.hash() {
                return Ok(block.data);
            }
        }
        Err(SourceError::Missing(*cid))
    }

    fn fetch_dag(
        &self,
        root: &Cid,
        store: &BlockStore,
        progress: &dyn Fn(u64),
    ) -> Result<FetchStats, SourceError> {
        let file = std::fs::File::open(&self.path).map_err(|e| SourceError::Other {
            message: format!("cannot open: {e}"),
        })?;
        let mut reader = crate::content::car::CarReader::new(std::io::BufReader::new(file))
            .map_err(|e| SourceError::Other {
                message: e.to_string(),
            })?;
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
        // The CAR may not hold the whole DAG: say which block is missing.
        walk_missing(store, root, progress, |cid| Err(SourceError::Missing(*cid)))?;
        Ok(stats)
    }
}

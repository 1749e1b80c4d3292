//! Sources: where blocks come from and where they go.
//!
//! Every source sits behind [`BlockSource`], so operations never care whether
//! bytes came from the embedded store, a CAR file, a Kubo node or a gateway.
//! Every source verifies each block against its CID before handing it on: a
//! local daemon is trusted no more than a public gateway.

pub mod gateway;
pub mod http;
pub mod kubo;
pub mod parallel;
pub mod store;

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// The source is unreachable (refused, timed out after the retries) or
    /// broke a limit (deadline, minimum rate, byte budget): it is dropped
    /// for the rest of the operation, like a liar.
    #[error("{message}")]
    Dropped { message: String },
    /// Anything else: a bad response, a 5xx.
    #[error("{message}")]
    Other { message: String },
    #[error("could not store block `{cid}`")]
    Store {
        cid: Cid,
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether the source must not be asked again in this operation.
    pub fn drops_source(&self) -> bool {
        matches!(
            self,
            SourceError::Corrupt { .. } | SourceError::Dropped { .. }
        )
    }
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

/// Most single-block requests one source has in flight at once: enough to
/// hide a round trip on a 50 ms link for an upgrade of many changed blocks,
/// few enough not to look like a flood to a public gateway.
pub const MAX_IN_FLIGHT: usize = 16;

/// Called with each block a batch fetch brought in (verified).
pub type OnBlock<'a> = &'a mut dyn FnMut(Cid, Vec<u8>) -> Result<(), SourceError>;

/// A place blocks can be fetched from.
pub trait BlockSource: Send + Sync {
    /// How the source is named in messages: `embedded store`, `CAR file
    /// \`x.car\``, `Kubo RPC at http://127.0.0.1:5001`, `gateway http://…`.
    fn describe(&self) -> String;

    /// One block, verified against `cid`.
    fn block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError>;

    /// Several blocks, each verified and handed to `on_block` as it
    /// arrives (in any order). The default asks one at a time; a gateway
    /// keeps up to [`MAX_IN_FLIGHT`] requests in flight. The first failure
    /// ends the batch.
    fn blocks(&self, cids: &[Cid], on_block: OnBlock<'_>) -> Result<(), SourceError> {
        for c in cids {
            on_block(*c, self.block(c)?)?;
        }
        Ok(())
    }

    /// The trustless gateway, for sources that are one: the first request
    /// of a fetch is raced across them (`ops::fetch::fetch_dag`).
    fn as_gateway(&self) -> Option<&gateway::GatewaySource> {
        None
    }

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
        let no_car = |_: &Cid, _: &Arc<CarBudget>| -> CarStream<'_> {
            Err(SourceError::Other {
                message: "serves single blocks only".into(),
            })
        };
        fetch_with_cars(
            store,
            root,
            progress,
            &|cids, on| self.blocks(cids, on),
            &no_car,
        )
    }
}

/// A sub-DAG as a CAR byte stream, or why it cannot be had.
pub type CarStream<'a> = Result<Box<dyn Read + 'a>, SourceError>;

/// Fetches a batch of blocks (see [`BlockSource::blocks`]).
pub type BatchFn<'a> = dyn Fn(&[Cid], OnBlock<'_>) -> Result<(), SourceError> + 'a;

/// Fill `store` with the DAG under `root` from a source that serves single
/// blocks (`blocks`, a batch at a time) and whole sub-DAGs as CAR streams
/// (`car`).
///
/// The walk goes level by level from `root`, fetching the missing blocks of
/// each level as one batch (up to [`MAX_IN_FLIGHT`] in flight on a gateway),
/// but as soon as it meets a block none of whose children are in the store
/// (a cold sub-DAG, e.g. a first install) it asks for that block's whole
/// sub-DAG as one CAR. An upgrade that shares most blocks with what is
/// installed thus fetches only the new blocks, without one round trip per
/// block, and a cold install streams one CAR.
///
/// Blocks in a CAR are verified (by the CAR reader and again by the store)
/// and only blocks linked from blocks already received are kept, so a source
/// cannot fill the store with blocks nobody asked for; the CAR is read only
/// until the sub-DAG is complete, and never past its byte budget
/// ([`CarBudget`]). A CAR that breaks off or cannot be had is not fatal: the
/// walk goes on block by block. A block that does not match its CID is, and
/// so is a source that breaks a limit ([`SourceError::drops_source`]).
pub fn fetch_with_cars<'a>(
    store: &BlockStore,
    root: &Cid,
    progress: &dyn Fn(u64),
    blocks: &BatchFn<'_>,
    car: &dyn Fn(&Cid, &Arc<CarBudget>) -> CarStream<'a>,
) -> Result<FetchStats, SourceError> {
    use crate::content::cid::{Codec, IDENTITY};
    let mut stats = FetchStats::default();
    let mut seen = HashSet::new();
    let mut level = vec![*root];
    while !level.is_empty() {
        // The blocks of this level, with their bytes when they have links.
        let mut have: Vec<(Cid, Vec<u8>)> = Vec::new();
        let mut need: Vec<Cid> = Vec::new();
        for cid in level.drain(..) {
            if cid.hash().code() == IDENTITY || !seen.insert(cid) {
                continue;
            }
            // A raw block has no links: being there is all that matters.
            let raw = cid.codec() == Codec::Raw.code();
            if raw && store.has(&cid) {
                continue;
            }
            match store.get(&cid) {
                Ok(data) => have.push((cid, data)),
                Err(GetError::Missing(_)) | Err(GetError::Corrupt { .. }) => need.push(cid),
                Err(e) => return Err(e.into()),
            }
        }
        if !need.is_empty() {
            let mut on_block = |cid: Cid, data: Vec<u8>| -> Result<(), SourceError> {
                if store.put(&cid, &data)? {
                    stats.blocks += 1;
                    stats.bytes += data.len() as u64;
                    progress(data.len() as u64);
                }
                if cid.codec() != Codec::Raw.code() {
                    have.push((cid, data));
                }
                Ok(())
            };
            blocks(&need, &mut on_block)?;
        }
        let mut next = Vec::new();
        for (cid, data) in have {
            let children = links_of(&cid, &data).map_err(|e| SourceError::Other {
                message: e.to_string(),
            })?;
            let cold = !children.is_empty()
                && children
                    .iter()
                    .all(|c| c.hash().code() != IDENTITY && !store.has(c));
            if cold {
                match stream_car(store, &cid, &data, progress, car, &mut stats) {
                    Ok(outstanding) => {
                        next.extend(outstanding);
                        continue;
                    }
                    Err(e) if e.drops_source() || matches!(e, SourceError::Store { .. }) => {
                        return Err(e);
                    }
                    // Fall back to single blocks for this sub-DAG.
                    Err(_) => {}
                }
            }
            next.extend(children);
        }
        level = next;
    }
    Ok(stats)
}

/// Bytes a CAR may hold beyond the blocks of its DAG: the header (roots) and
/// slack for what the DAG's sizes do not count.
pub const CAR_MARGIN: u64 = 1 << 20;
/// The framing of one CAR section: the length varint and the CID.
pub const SECTION_OVERHEAD: u64 = 128;
/// What a block whose size nothing announces may take (no `Tsize` on the
/// link, a DAG-CBOR link): the largest block there is.
pub const UNKNOWN_BLOCK_RESERVE: u64 = crate::content::MAX_BLOCK_SIZE as u64;
/// The byte budget of a CAR before its root is known.
pub const CAR_FIXED_CAP: u64 = CAR_MARGIN + UNKNOWN_BLOCK_RESERVE;

/// How many bytes the CAR for a sub-DAG may take, derived from the DAG
/// itself: the bytes of the blocks received, plus for every block still
/// expected the size its parent announced (a UnixFS link's `Tsize`: the
/// whole sub-DAG under it) or, with none, the largest block size; plus
/// [`SECTION_OVERHEAD`] per block and a margin ([`CAR_MARGIN`] and 1/16).
/// Unrequested and duplicate blocks earn nothing, so they eat the margin and
/// the stream is cut. Before the root is known the budget is
/// [`CAR_FIXED_CAP`]. Shared with the reader that enforces it.
#[derive(Debug, Default)]
pub struct CarBudget {
    limit: std::sync::atomic::AtomicU64,
}

impl CarBudget {
    pub fn new() -> CarBudget {
        CarBudget {
            limit: std::sync::atomic::AtomicU64::new(CAR_FIXED_CAP),
        }
    }

    /// The bytes the CAR may take now.
    pub fn limit(&self) -> u64 {
        self.limit.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Set the budget from the bytes the DAG accounts for so far.
    pub fn set(&self, accounted: u64) {
        let margin = CAR_MARGIN + accounted / 16;
        self.limit.store(
            accounted.saturating_add(margin),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The links of a block with the size of what each leads to, if the block
/// says (dag-pb `Tsize`).
fn sized_links(cid: &Cid, data: &[u8]) -> Result<Vec<(Cid, u64)>, SourceError> {
    if cid.codec() == crate::content::cid::Codec::DagPb.code()
        && let Ok(node) = crate::content::dagpb::PbNode::decode(data)
    {
        return Ok(node
            .links
            .into_iter()
            .map(|l| {
                // A Tsize is as trusted as the verified block that holds it.
                (l.cid, l.tsize.unwrap_or(UNKNOWN_BLOCK_RESERVE))
            })
            .collect());
    }
    Ok(links_of(cid, data)
        .map_err(|e| SourceError::Other {
            message: e.to_string(),
        })?
        .into_iter()
        .map(|c| (c, UNKNOWN_BLOCK_RESERVE))
        .collect())
}

/// Counts the bytes a CAR stream delivers and cuts it at the budget.
struct Metered<'b, R> {
    inner: R,
    budget: &'b CarBudget,
    read: u64,
    over: &'b std::cell::Cell<bool>,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let limit = self.budget.limit();
        if self.read > limit {
            self.over.set(true);
            return Err(std::io::Error::other(format!(
                "sent more than the {limit} bytes its DAG accounts for"
            )));
        }
        let room = (limit - self.read + 1).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Read one CAR for the sub-DAG under `cid` (whose block, `data`, is known)
/// into `store`. Returns the blocks the CAR should have held but did not
/// (empty when the sub-DAG is complete). Stops reading as soon as the
/// sub-DAG is complete; a CAR that goes past its budget, or a stream that
/// breaks a deadline, is a [`SourceError::Dropped`].
fn stream_car<'a>(
    store: &BlockStore,
    cid: &Cid,
    data: &[u8],
    progress: &dyn Fn(u64),
    car: &dyn Fn(&Cid, &Arc<CarBudget>) -> CarStream<'a>,
    stats: &mut FetchStats,
) -> Result<Vec<Cid>, SourceError> {
    use crate::content::car::{CarError, CarReader};
    use std::collections::HashMap;
    // Blocks are matched by multihash: a CIDv0 link and a CIDv1 section name
    // the same bytes.
    let key = |c: &Cid| c.hash().to_bytes();
    let budget = Arc::new(CarBudget::new());
    // The root is known: its size and its links' sizes set the budget.
    let root_reserve = sized_links(cid, data)?
        .iter()
        .fold(data.len() as u64, |a, (_, r)| {
            a.saturating_add(r.saturating_add(SECTION_OVERHEAD))
        });
    let mut expected: HashMap<Vec<u8>, (Cid, u64)> =
        HashMap::from([(key(cid), (*cid, root_reserve))]);
    let mut received: HashSet<Vec<u8>> = HashSet::new();
    // Received bytes plus the reserves of the blocks still expected.
    let mut accounted = root_reserve + SECTION_OVERHEAD;
    budget.set(accounted);
    let over = std::cell::Cell::new(false);
    let reader = car(cid, &budget)?;
    let metered = Metered {
        inner: reader,
        budget: &budget,
        read: 0,
        over: &over,
    };
    let mut reader = CarReader::new(std::io::BufReader::with_capacity(1 << 16, metered))
        .map_err(|e| car_error(cid, e, &over))?;
    while received.len() < expected.len() {
        let b = match reader.next_block() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(CarError::HashMismatch { cid: bad, .. }) => {
                return Err(SourceError::Corrupt { cid: bad });
            }
            Err(e) => return Err(car_error(cid, e, &over)),
        };
        let k = key(&b.cid);
        let Some(&(_, reserve)) = expected.get(&k) else {
            continue;
        };
        if !received.insert(k) {
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
        // Its reserve becomes its real size plus its children's reserves.
        accounted = accounted.saturating_sub(reserve) + b.data.len() as u64;
        for (c, r) in sized_links(&b.cid, &b.data)? {
            if c.hash().code() != crate::content::cid::IDENTITY
                && let std::collections::hash_map::Entry::Vacant(v) = expected.entry(key(&c))
            {
                v.insert((c, r));
                accounted = accounted.saturating_add(r.saturating_add(SECTION_OVERHEAD));
            }
        }
        budget.set(accounted);
    }
    Ok(expected
        .into_iter()
        .filter(|(k, _)| !received.contains(k))
        .map(|(_, (c, _))| c)
        .collect())
}

/// A CAR reading error as a source error: past the budget, or a stream that
/// broke a deadline, drops the source; anything else (a CAR that breaks off)
/// lets the walk go on block by block.
fn car_error(
    cid: &Cid,
    e: crate::content::car::CarError,
    over: &std::cell::Cell<bool>,
) -> SourceError {
    use crate::content::car::CarError;
    let violation = match &e {
        CarError::Io { source, .. } => http::violation_of(source).map(|v| v.to_string()),
        _ => None,
    };
    if over.get() {
        return SourceError::Dropped {
            message: format!(
                "CAR for `{cid}` is larger than its DAG (unrequested or repeated blocks): cut"
            ),
        };
    }
    match violation {
        Some(v) => SourceError::Dropped {
            message: format!("CAR for `{cid}`: {v}"),
        },
        None => SourceError::Other {
            message: format!("CAR for `{cid}`: {e}"),
        },
    }
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

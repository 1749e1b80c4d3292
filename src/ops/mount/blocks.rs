//! Blocks for a lazy mount: the embedded store first, then the configured
//! sources, each block verified before it is kept or returned.
//!
//! A block is fetched the first time something reads it and then kept in the
//! store, so a second read (and a later `install`) finds it locally. Reads
//! ahead go to a small pool of prefetch threads; a read that needs a block a
//! prefetcher is already fetching waits for it instead of asking again.
//!
//! A source that serves a block which does not hash to its CID is not asked
//! for that block again during this mount (the read fails with `EIO`, never
//! with wrong bytes), but stays in use for other blocks: a lie costs the
//! liar's availability, not correctness. Every source applies its own
//! deadlines (`docs/network.md`), so a dead source ends a read with an error
//! instead of hanging it.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, Weak};

use crate::content::cid::IDENTITY;
use crate::content::{BlockGet, Cid, GetError};
use crate::sources::store::BlockStore;
use crate::sources::{BlockSource, SourceError};

/// How many prefetch threads a mount runs: enough to keep a WAN link busy
/// with 1 MiB blocks, few enough not to flood a gateway.
pub const PREFETCH_THREADS: usize = 6;

/// How many blocks may wait in the prefetch queue; further requests are
/// dropped (a later demand read fetches them).
const PREFETCH_QUEUE: usize = 256;

/// Recently read blocks kept in memory, so that the kernel's 128 KiB reads
/// of one 1 MiB leaf do not read and hash it from the store eight times.
const RECENT_BLOCKS: usize = 32;

/// Makes the sources again: a network source that served one bad block
/// refuses everything after it (right for an install, which then tries the
/// next source); a mount that lives for hours wants it back for the other
/// blocks, so the lying source is replaced by a fresh instance.
pub type Rebuild = Box<dyn Fn() -> Vec<Box<dyn BlockSource>> + Send + Sync>;

pub struct LazyBlocks {
    store: BlockStore,
    sources: Vec<Mutex<Box<dyn BlockSource>>>,
    rebuild: Rebuild,
    /// Blocks some thread is fetching right now.
    inflight: Mutex<HashSet<Cid>>,
    landed: Condvar,
    /// (source index, block) pairs where the source lied.
    bad: Mutex<HashSet<(usize, Cid)>>,
    recent: Mutex<VecDeque<(Cid, Arc<Vec<u8>>)>>,
    /// Every block read, in the order first read: the access profile.
    profile: Mutex<(Vec<Cid>, HashSet<Cid>)>,
    queue: Mutex<(Option<Sender<Cid>>, usize)>,
    fetched_blocks: AtomicU64,
    fetched_bytes: AtomicU64,
}

impl LazyBlocks {
    /// Blocks from `store`, else from `sources` in order; `PREFETCH_THREADS`
    /// threads serve [`LazyBlocks::prefetch`].
    pub fn new(store: BlockStore, rebuild: Rebuild) -> Arc<LazyBlocks> {
        let (tx, rx) = channel::<Cid>();
        let blocks = Arc::new(LazyBlocks {
            store,
            sources: rebuild().into_iter().map(Mutex::new).collect(),
            rebuild,
            inflight: Mutex::default(),
            landed: Condvar::new(),
            bad: Mutex::default(),
            recent: Mutex::default(),
            profile: Mutex::default(),
            queue: Mutex::new((Some(tx), 0)),
            fetched_blocks: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        });
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..PREFETCH_THREADS {
            let weak = Arc::downgrade(&blocks);
            let rx = Arc::clone(&rx);
            std::thread::spawn(move || prefetcher(weak, rx));
        }
        blocks
    }

    /// The store blocks are kept in.
    pub fn store(&self) -> &BlockStore {
        &self.store
    }

    /// Blocks and bytes fetched from sources so far.
    pub fn fetched(&self) -> (u64, u64) {
        (
            self.fetched_blocks.load(Ordering::Relaxed),
            self.fetched_bytes.load(Ordering::Relaxed),
        )
    }

    /// Every block read so far, in the order first read.
    pub fn profile(&self) -> Vec<Cid> {
        self.profile.lock().map(|p| p.0.clone()).unwrap_or_default()
    }

    /// Fetch these blocks in the background if the store lacks them.
    pub fn prefetch(&self, cids: impl IntoIterator<Item = Cid>) {
        let Ok(mut q) = self.queue.lock() else { return };
        for cid in cids {
            if q.1 >= PREFETCH_QUEUE {
                break;
            }
            if cid.hash().code() == IDENTITY || self.store.has(&cid) {
                continue;
            }
            if let Some(tx) = &q.0
                && tx.send(cid).is_ok()
            {
                q.1 += 1;
            }
        }
    }

    /// Stop the prefetch threads (they finish the block in hand).
    pub fn shutdown(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.0 = None;
        }
    }

    /// One block, verified: from memory, the store, or the first source that
    /// has it. Shared with clones of the block for the caller.
    pub fn block(&self, cid: &Cid) -> Result<Arc<Vec<u8>>, GetError> {
        self.record(cid);
        if cid.hash().code() == IDENTITY {
            return Ok(Arc::new(cid.hash().digest().to_vec()));
        }
        if let Some(b) = self.recent(cid) {
            return Ok(b);
        }
        let data = Arc::new(self.load(cid)?);
        if let Ok(mut r) = self.recent.lock() {
            if r.len() >= RECENT_BLOCKS {
                r.pop_front();
            }
            r.push_back((*cid, Arc::clone(&data)));
        }
        Ok(data)
    }

    fn recent(&self, cid: &Cid) -> Option<Arc<Vec<u8>>> {
        let r = self.recent.lock().ok()?;
        r.iter().find(|(c, _)| c == cid).map(|(_, b)| Arc::clone(b))
    }

    fn record(&self, cid: &Cid) {
        if let Ok(mut p) = self.profile.lock()
            && p.1.insert(*cid)
        {
            p.0.push(*cid);
        }
    }

    /// From the store, else fetched (waiting for a prefetcher that has it
    /// in hand rather than asking the network twice).
    fn load(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        loop {
            match self.store.get(cid) {
                Err(GetError::Missing(_)) => {}
                // A damaged local copy is refetched, never returned.
                Err(GetError::Corrupt { .. }) => {
                    let _ = self.store.delete(cid);
                }
                other => return other,
            }
            let Ok(mut inflight) = self.inflight.lock() else {
                return Err(GetError::Missing(*cid));
            };
            if inflight.contains(cid) {
                // Someone else is fetching it: wait, then look again.
                let _guard = self.landed.wait_while(inflight, |f| f.contains(cid));
                continue;
            }
            inflight.insert(*cid);
            drop(inflight);
            let result = self.fetch(cid);
            if let Ok(mut f) = self.inflight.lock() {
                f.remove(cid);
            }
            self.landed.notify_all();
            return result;
        }
    }

    /// Ask each source in turn; keep the first verified answer.
    fn fetch(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        let mut last = GetError::Missing(*cid);
        for (i, slot) in self.sources.iter().enumerate() {
            if self.bad.lock().is_ok_and(|b| b.contains(&(i, *cid))) {
                continue;
            }
            let answer = match slot.lock() {
                Ok(source) => source.block(cid),
                Err(_) => continue,
            };
            match answer {
                Ok(data) => {
                    // The source verified it; the store verifies again.
                    if self.store.put(cid, &data).is_err() {
                        // Not stored (disk full?): still correct bytes.
                        crate::content::cid::verify(cid, &data)
                            .map_err(|_| GetError::Corrupt { cid: *cid })?;
                    }
                    self.fetched_blocks.fetch_add(1, Ordering::Relaxed);
                    self.fetched_bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    return Ok(data);
                }
                Err(SourceError::Corrupt { .. }) => {
                    if let Ok(mut b) = self.bad.lock() {
                        b.insert((i, *cid));
                    }
                    if let Ok(mut slot) = slot.lock() {
                        if let Some(g) = slot.as_gateway() {
                            crate::sources::http::forget_dead(g.base());
                        }
                        if let Some(fresh) = (self.rebuild)().into_iter().nth(i) {
                            *slot = fresh;
                        }
                    }
                    last = GetError::Corrupt { cid: *cid };
                }
                Err(SourceError::Store { source, .. }) => {
                    last = GetError::Io { cid: *cid, source };
                }
                Err(
                    SourceError::Missing(_)
                    | SourceError::Other { .. }
                    | SourceError::Dropped { .. },
                ) => {}
            }
        }
        Err(last)
    }
}

impl BlockGet for LazyBlocks {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        self.block(cid).map(|b| b.as_ref().clone())
    }

    fn has_block(&self, cid: &Cid) -> bool {
        self.store.has(cid)
    }
}

fn prefetcher(blocks: Weak<LazyBlocks>, rx: Arc<Mutex<Receiver<Cid>>>) {
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(cid) = next else { return };
        let Some(blocks) = blocks.upgrade() else {
            return;
        };
        if let Ok(mut q) = blocks.queue.lock() {
            q.1 = q.1.saturating_sub(1);
        }
        if !blocks.store.has(&cid) {
            let _ = blocks.load(&cid);
        }
    }
}

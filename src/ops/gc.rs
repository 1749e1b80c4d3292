//! Garbage collection: delete every block that no pinned root reaches.
//!
//! Runs under the store lock taken exclusively, so no add or import is midway
//! between writing blocks and pinning their root. A pinned root with a missing
//! block is reported, not fatal: everything reachable that is present is kept.

use std::collections::HashSet;
use std::fs;

use crate::content::{Cid, GetError, links_of};
use crate::sources::store::{BlockStore, StoreLock};

use super::pins::Pins;
use super::{Error, Layout};

/// What a collection did (or would do, with `dry_run`).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub roots: usize,
    pub blocks_kept: usize,
    pub blocks_removed: usize,
    pub bytes_freed: u64,
    pub temporaries_removed: usize,
    /// Blocks reachable from a root that are not in the store.
    pub missing: Vec<String>,
    /// Blocks that failed verification; they are removed too.
    pub corrupt: Vec<String>,
}

/// Collect garbage in the store of `layout`.
pub fn gc(layout: &Layout, dry_run: bool) -> Result<GcReport, Error> {
    let _lock = StoreLock::exclusive(&layout.store_lock())
        .map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let pins = Pins::open(layout.pins_dir())?;
    let roots: Vec<Cid> = pins.list()?.into_iter().map(|(c, _)| c).collect();
    gc_store(&store, &roots, dry_run)
}

/// Collect garbage in `store`, keeping what `roots` reach.
pub fn gc_store(store: &BlockStore, roots: &[Cid], dry_run: bool) -> Result<GcReport, Error> {
    let mut report = GcReport {
        roots: roots.len(),
        ..GcReport::default()
    };
    let mut live: HashSet<String> = HashSet::new();
    let mut corrupt_keys: HashSet<String> = HashSet::new();
    let mut stack: Vec<Cid> = roots.to_vec();
    while let Some(cid) = stack.pop() {
        if cid.hash().code() == crate::content::cid::IDENTITY {
            continue;
        }
        let key = BlockStore::key_of(&cid);
        if live.contains(&key) {
            continue;
        }
        match store.get(&cid) {
            Ok(data) => {
                live.insert(key);
                // A block we cannot decode keeps no children alive; it is still
                // kept itself because a root reaches it.
                if let Ok(children) = links_of(&cid, &data) {
                    stack.extend(children);
                }
            }
            Err(GetError::Missing(_)) => report.missing.push(cid.to_string()),
            Err(GetError::Corrupt { .. }) => {
                report.corrupt.push(cid.to_string());
                corrupt_keys.insert(key);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let scan = store.scan().map_err(|e| Error::io(store.dir(), e))?;
    for (key, path, size) in &scan.blocks {
        if live.contains(key) && !corrupt_keys.contains(key) {
            report.blocks_kept += 1;
            continue;
        }
        report.blocks_removed += 1;
        report.bytes_freed += size;
        if !dry_run {
            fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        }
    }
    for path in &scan.temporary {
        report.temporaries_removed += 1;
        if !dry_run {
            let _ = fs::remove_file(path);
        }
    }
    if !dry_run {
        store.sync().map_err(|e| Error::io(store.dir(), e))?;
    }
    Ok(report)
}

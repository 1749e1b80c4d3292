//! Garbage collection: delete every block that no pinned root reaches, every
//! unpacked package tree no installed version uses, and every stored file no
//! tree links to any more.
//!
//! Runs under the prefix lock (after finishing or undoing an interrupted
//! transaction) and the store lock, both taken exclusively, so no install is
//! midway and no add or import is between writing blocks and pinning their
//! root. A pinned root with a missing block is reported, not fatal:
//! everything reachable that is present is kept.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::content::{Cid, GetError, links_of};
use crate::sources::store::{BlockStore, StoreLock};

use super::installed;
use super::lock::PrefixLock;
use super::unpack;
use super::{Error, Layout};
use crate::ops::pins::Pins;

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
    /// Unpacked package trees no installed version uses.
    pub trees_removed: usize,
    /// Stored files no tree links to.
    pub files_removed: usize,
    /// Bytes those files held.
    pub file_bytes_freed: u64,
}

/// Collect garbage in the store of `layout`.
pub fn gc(layout: &Layout, dry_run: bool) -> Result<GcReport, Error> {
    let _prefix = PrefixLock::exclusive(layout, &|| {})?;
    super::journal::recover(layout)?;
    let _lock = StoreLock::exclusive(&layout.store_lock())
        .map_err(|e| Error::io(layout.store_lock(), e))?;
    let (trees_removed, files_removed, file_bytes_freed) = gc_trees(layout, dry_run)?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let pins = Pins::open(layout.pins_dir())?;
    let roots: Vec<Cid> = pins.list()?.into_iter().map(|(c, _)| c).collect();
    let mut report = gc_store(&store, &roots, dry_run)?;
    report.trees_removed = trees_removed;
    report.files_removed = files_removed;
    report.file_bytes_freed = file_bytes_freed;
    Ok(report)
}

/// Remove package trees no receipt lists (and half-built ones), the trees
/// cached for pure runs, then stored files whose only link is their own name
/// in `files/`.
fn gc_trees(layout: &Layout, dry_run: bool) -> Result<(usize, usize, u64), Error> {
    let used: HashSet<String> = installed::list(layout)?
        .into_iter()
        .flat_map(|r| r.versions.into_keys())
        .collect();
    let mut trees = 0;
    let pkgs = layout.pkgs_dir();
    if let Ok(entries) = fs::read_dir(&pkgs) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if used.contains(&name) {
                continue;
            }
            trees += 1;
            if !dry_run {
                unpack::remove_tree(&entry.path())?;
            }
        }
    }
    // Trees materialised for `run --pure` and `execute` (rootfs and inputs)
    // are caches: made again from the store when needed. A pure run holds
    // the store lock, which gc holds exclusively, so none is in use.
    for cache in [
        layout.state_root().join("run"),
        layout.state_root().join("execute/rootfs"),
    ] {
        for entry in fs::read_dir(&cache).into_iter().flatten().flatten() {
            trees += 1;
            if !dry_run {
                unpack::remove_tree(&entry.path())?;
            }
        }
    }
    let (mut files, mut bytes) = (0, 0);
    let files_dir = layout.files_dir();
    if let Ok(entries) = fs::read_dir(&files_dir) {
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let stray = entry.file_name().to_string_lossy().starts_with(".tmp-");
            if meta.nlink() > 1 && !stray {
                continue;
            }
            files += 1;
            bytes += meta.len();
            if !dry_run {
                fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            }
        }
    }
    Ok((trees, files, bytes))
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

//! `ipkg car export` and `ipkg car import`: move DAGs in and out as CAR files.
//!
//! Export walks the DAG depth-first, parents before children, each block once:
//! the order `ipfs dag export` uses, so the CAR streams well into any reader.
//! The file is written beside its destination and renamed into place at the
//! end, so a failed export leaves nothing behind.
//!
//! Import verifies every block (the reader hashes each one), stores it, and
//! pins each root whose DAG is complete in the store.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use crate::content::car::{CarReader, CarWriter};
use crate::content::{Cid, GetError, links_of};
use crate::sources::store::{BlockStore, PutStats};

use super::{Error, Progress};

/// Write the DAG under `root` from `store` into a CARv1 at `dest`.
/// Returns the number of blocks and bytes written.
pub fn export(
    store: &BlockStore,
    root: &Cid,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(u64, u64), Error> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".ipkg-car-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let out = BufWriter::new(tmp.as_file().try_clone().map_err(|e| Error::io(dest, e))?);
    let mut writer =
        CarWriter::new(out, std::slice::from_ref(root)).map_err(|e| Error::io(dest, e))?;
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut blocks = 0u64;
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = store.get(&cid)?;
        writer
            .write_block(&cid, &data)
            .map_err(|e| Error::io(dest, e))?;
        blocks += 1;
        progress.advance(data.len() as u64);
        let children = links_of(&cid, &data).map_err(|e| Error::Unsafe {
            path: cid.to_string(),
            reason: e.to_string(),
        })?;
        // Push in reverse so the first link is visited first (depth-first, in order).
        stack.extend(children.into_iter().rev());
    }
    let bytes = writer.bytes_written();
    let mut out = writer.finish().map_err(|e| Error::io(dest, e))?;
    out.flush().map_err(|e| Error::io(dest, e))?;
    drop(out);
    tmp.as_file().sync_all().map_err(|e| Error::io(dest, e))?;
    tmp.persist_noclobber(dest).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::DestExists {
                path: dest.to_path_buf(),
            }
        } else {
            Error::io(dest, e.error)
        }
    })?;
    Ok((blocks, bytes))
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    pub roots: Vec<Cid>,
    pub stats: PutStats,
    /// Roots whose DAG is not complete in the store, with the first missing block.
    pub incomplete: Vec<(Cid, Cid)>,
}

/// Read every block of the CAR at `path` into `store`.
pub fn import(
    store: &BlockStore,
    path: &Path,
    progress: &dyn Progress,
) -> Result<ImportReport, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader =
        CarReader::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| Error::Car {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
    let mut report = ImportReport {
        roots: reader.roots().to_vec(),
        ..ImportReport::default()
    };
    loop {
        let block = reader.next_block().map_err(|e| Error::Car {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let Some(block) = block else { break };
        // The reader has already hashed the block against its CID.
        let new = store
            .put_trusted(&block.cid, &block.data)
            .map_err(|e| Error::io(store.dir(), e))?;
        progress.advance(block.data.len() as u64);
        if new {
            report.stats.blocks_new += 1;
            report.stats.bytes_new += block.data.len() as u64;
        } else {
            report.stats.blocks_existing += 1;
        }
    }
    store.sync().map_err(|e| Error::io(store.dir(), e))?;
    for root in &report.roots {
        if let Some(missing) = first_missing(store, root)? {
            report.incomplete.push((*root, missing));
        }
    }
    Ok(report)
}

/// The first block under `root` that the store lacks, if any.
pub fn first_missing(
    store: &dyn crate::content::BlockGet,
    root: &Cid,
) -> Result<Option<Cid>, Error> {
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) || cid.hash().code() == crate::content::cid::IDENTITY {
            continue;
        }
        // A raw block links nothing: knowing it is there is enough (its
        // bytes are verified whenever they are read).
        if cid.codec() == crate::content::Codec::Raw.code() {
            if !store.has_block(&cid) {
                return Ok(Some(cid));
            }
            continue;
        }
        let data = match store.get_block(&cid) {
            Ok(data) => data,
            Err(GetError::Missing(c)) => return Ok(Some(c)),
            Err(e) => return Err(e.into()),
        };
        if let Ok(children) = links_of(&cid, &data) {
            stack.extend(children.into_iter().rev());
        }
    }
    Ok(None)
}

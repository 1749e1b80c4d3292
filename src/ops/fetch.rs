//! Bring a whole DAG into the embedded store from whichever source has it.
//!
//! Sources are tried in order. A source that fails (does not have a block,
//! serves a corrupt one, times out) is reported and the next one is asked;
//! blocks a failed source already delivered stay (they were verified), so the
//! next source only fills the gaps. With no source left, the error lists each
//! source and why it failed.

use crate::content::Cid;
use crate::sources::store::BlockStore;
use crate::sources::{BlockSource, FetchStats};

use super::{Error, Progress};

/// Make `store` hold every block under `root`. Returns what was fetched
/// (zero when the store already had it all: a warm install).
pub fn fetch_dag(
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    root: &Cid,
    progress: &dyn Progress,
) -> Result<FetchStats, Error> {
    if super::car::first_missing(store, root)?.is_none() {
        return Ok(FetchStats::default());
    }
    let mut attempts = Vec::new();
    let mut total = FetchStats::default();
    for source in sources {
        progress.start(&format!("from {}", source.describe()), None);
        let result = source.fetch_dag(root, store, &|n| progress.advance(n));
        progress.finish();
        match result {
            Ok(stats) => {
                total.blocks += stats.blocks;
                total.bytes += stats.bytes;
                match super::car::first_missing(store, root)? {
                    None => {
                        store.sync().map_err(|e| Error::io(store.dir(), e))?;
                        return Ok(total);
                    }
                    Some(missing) => attempts.push((
                        source.describe(),
                        format!("does not have block `{missing}`"),
                    )),
                }
            }
            Err(e) => attempts.push((source.describe(), e.to_string())),
        }
    }
    Err(Error::Fetch {
        cid: *root,
        attempts,
    })
}

/// The network sources this run may fetch from, in the order to try them
/// (Kubo RPC, trustless gateways, from flags, environment and config). The
/// embedded store is always consulted first by [`fetch_dag`] and is not listed.
pub fn configured_sources(_layout: &super::Layout) -> Result<Vec<Box<dyn BlockSource>>, Error> {
    // Network sources arrive with issue 5; until then only the embedded store
    // (and CAR files named on the command line) serve content.
    Ok(Vec::new())
}

//! Bring a whole DAG into the embedded store from whichever source has it.
//!
//! Sources are tried in order. A source that fails (does not have a block,
//! serves a corrupt one, times out) is reported and the next one is asked;
//! blocks a failed source already delivered stay (they were verified), so the
//! next source only fills the gaps. With no source left, the error lists each
//! source and why it failed.

use crate::content::Cid;
use crate::sources::gateway::GatewaySource;
use crate::sources::http::{HttpOptions, parse_duration};
use crate::sources::kubo::{KuboSource, find_api};
use crate::sources::store::BlockStore;
use crate::sources::{BlockSource, FetchStats};

use super::{Error, Layout, Progress};
use crate::ops::content::car;

/// Make `store` hold every block under `root`. Returns what was fetched
/// (zero when the store already had it all: a warm install).
pub fn fetch_dag(
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    root: &Cid,
    progress: &dyn Progress,
) -> Result<FetchStats, Error> {
    if car::first_missing(store, root)?.is_none() {
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
                match newly_missing(store, root)? {
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
            Err(e) => {
                progress.warn(&format!(
                    "{}: {e}; trying the next source",
                    source.describe()
                ));
                attempts.push((source.describe(), e.to_string()));
            }
        }
    }
    Err(Error::Fetch {
        cid: *root,
        attempts,
    })
}

/// The first block under `root` the store lacks, after a source ran: like
/// [`car::first_missing`], but raw blocks (which have no links) are
/// only checked for presence, not read and hashed again: the source just
/// verified them on the way in.
fn newly_missing(store: &BlockStore, root: &Cid) -> Result<Option<Cid>, Error> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) || cid.hash().code() == crate::content::cid::IDENTITY {
            continue;
        }
        if cid.codec() == crate::content::cid::Codec::Raw.code() {
            if !store.has(&cid) {
                return Ok(Some(cid));
            }
            continue;
        }
        let data = match store.get(&cid) {
            Ok(data) => data,
            Err(crate::content::GetError::Missing(c)) => return Ok(Some(c)),
            Err(e) => return Err(e.into()),
        };
        if let Ok(children) = crate::content::links_of(&cid, &data) {
            stack.extend(children.into_iter().rev());
        }
    }
    Ok(None)
}

/// The network sources this run may fetch from, in the order to try them:
/// Kubo's RPC API (when one is configured or its `api` file is found), then
/// the trustless gateways, from flags, environment and config
/// (`docs/network.md`). The embedded store is always consulted first by
/// [`fetch_dag`] and is not listed.
pub fn configured_sources(layout: &Layout) -> Result<Vec<Box<dyn BlockSource>>, Error> {
    let opts = http_options(layout)?;
    let mut out: Vec<Box<dyn BlockSource>> = Vec::new();
    if let Some(kubo) = kubo(layout)? {
        out.push(Box::new(kubo));
    }
    for g in &layout.network.gateways {
        out.push(Box::new(
            GatewaySource::new(g, &opts).map_err(Error::Usage)?,
        ));
    }
    Ok(out)
}

/// The configured gateways as sources (for IPNS records as well as blocks).
pub fn gateways(layout: &Layout) -> Result<Vec<GatewaySource>, Error> {
    let opts = http_options(layout)?;
    layout
        .network
        .gateways
        .iter()
        .map(|g| GatewaySource::new(g, &opts).map_err(Error::Usage))
        .collect()
}

/// Kubo's RPC API, when `--api`, `IPFS_API`, the config or Kubo's `api` file
/// names one (and it is not `off`).
pub fn kubo(layout: &Layout) -> Result<Option<KuboSource>, Error> {
    let explicit = layout.network.kubo_api.as_deref();
    if matches!(explicit, Some("off" | "none")) {
        return Ok(None);
    }
    let opts = http_options(layout)?;
    Ok(find_api(explicit)
        .map_err(Error::Usage)?
        .map(|(url, _)| KuboSource::new(&url, &opts)))
}

/// Timeouts and retries from the config.
pub fn http_options(layout: &Layout) -> Result<HttpOptions, Error> {
    let mut opts = HttpOptions::default();
    if let Some(t) = &layout.network.timeout {
        opts.timeout = parse_duration(t).ok_or_else(|| {
            Error::Usage(format!(
                "invalid timeout `{t}`: write it like `30s` or `500ms`"
            ))
        })?;
    }
    if let Some(r) = layout.network.retries {
        opts.retries = r;
    }
    Ok(opts)
}

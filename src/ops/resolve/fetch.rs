//! Bring a whole DAG into the embedded store from whichever source has it.
//!
//! Sources are tried in order. A source that fails (does not have a block,
//! serves a corrupt one, times out, breaks a deadline or a byte budget) is
//! reported and the next one is asked; blocks a failed source already
//! delivered stay (they were verified), so the next source only fills the
//! gaps. With no source left, the error lists each source and why it failed.
//!
//! With more than one gateway, the first missing block is asked of all of
//! them at once: the first verified answer decides which gateway goes first
//! (the fastest honest one), and a gateway that is dead or lies in that race
//! is dropped for the rest of the run before anything waits on it.

use crate::content::Cid;
use crate::sources::gateway::GatewaySource;
use crate::sources::http::{HttpOptions, mark_dead, parse_duration, parse_rate};
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
    let Some(first) = car::first_missing(store, root)? else {
        return Ok(FetchStats::default());
    };
    let mut attempts = Vec::new();
    let mut total = FetchStats::default();
    let ordered = race_first(store, sources, &first, progress, &mut total)?;
    for source in ordered {
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

/// Race `cid` across the gateways among `sources` (see [`fetch_dag`]): the
/// block lands in the store when one answers, and the sources come back
/// with the fastest honest gateway first among the gateways. `warn` hears
/// about gateways dropped in the race.
pub fn race_block<'a>(
    store: &BlockStore,
    sources: &[&'a dyn BlockSource],
    cid: &Cid,
    warn: &dyn Fn(&str),
) -> Result<Vec<&'a dyn BlockSource>, Error> {
    struct Warn<'w>(&'w dyn Fn(&str));
    impl Progress for Warn<'_> {
        fn start(&self, _: &str, _: Option<u64>) {}
        fn advance(&self, _: u64) {}
        fn finish(&self) {}
        fn warn(&self, m: &str) {
            (self.0)(m)
        }
    }
    let mut total = FetchStats::default();
    race_first(store, sources, cid, &Warn(warn), &mut total)
}

/// Race the first missing block across the gateways among `sources` and
/// put the fastest honest one first among them (other sources keep their
/// place). Gateways that failed the race with a drop-worthy error (dead,
/// lying, too slow) are marked dead and named in a warning.
fn race_first<'a>(
    store: &BlockStore,
    sources: &[&'a dyn BlockSource],
    first: &Cid,
    progress: &dyn Progress,
    total: &mut FetchStats,
) -> Result<Vec<&'a dyn BlockSource>, Error> {
    let live: Vec<&GatewaySource> = sources
        .iter()
        .filter_map(|s| s.as_gateway())
        .filter(|g| crate::sources::http::dead(g.base()).is_none())
        .collect();
    if live.len() < 2 {
        return Ok(sources.to_vec());
    }
    let Ok(client) = crate::sources::parallel::Parallel::new(live[0].options()) else {
        return Ok(sources.to_vec());
    };
    let bases: Vec<String> = live.iter().map(|g| g.base().to_owned()).collect();
    let (winner, failed) = client.race(&bases, first);
    for (i, e) in &failed {
        if e.drops_source() {
            mark_dead(&bases[*i], &e.to_string());
            progress.warn(&format!(
                "gateway {}: {e}; not asked again in this run",
                bases[*i]
            ));
        }
    }
    let Some((w, data)) = winner else {
        return Ok(sources.to_vec());
    };
    if store.put(first, &data)? {
        total.blocks += 1;
        total.bytes += data.len() as u64;
    }
    // The gateways' places in the order, filled winner first.
    let mut gateways: Vec<&'a dyn BlockSource> = sources
        .iter()
        .copied()
        .filter(|s| s.as_gateway().is_some())
        .collect();
    if let Some(at) = gateways
        .iter()
        .position(|s| s.as_gateway().map(|g| g.base()) == Some(bases[w].as_str()))
    {
        let win = gateways.remove(at);
        gateways.insert(0, win);
    }
    let mut gateways = gateways.into_iter();
    Ok(sources
        .iter()
        .map(|s| match s.as_gateway() {
            Some(_) => gateways.next().unwrap_or(*s),
            None => *s,
        })
        .collect())
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

/// Deadlines, rate and retries from the config (`timeout`, `fetch-timeout`,
/// `min-rate`, `retries`; `docs/network.md`).
pub fn http_options(layout: &Layout) -> Result<HttpOptions, Error> {
    let mut opts = HttpOptions::default();
    let duration = |key: &str, t: &str| {
        parse_duration(t).ok_or_else(|| {
            Error::Usage(format!(
                "invalid {key} `{t}`: write it like `30s` or `500ms`"
            ))
        })
    };
    if let Some(t) = &layout.network.timeout {
        opts.timeout = duration("timeout", t)?;
    }
    if let Some(t) = &layout.network.fetch_timeout {
        opts.fetch_timeout = duration("fetch-timeout", t)?;
    }
    if let Some(r) = &layout.network.min_rate {
        opts.min_rate = parse_rate(r).ok_or_else(|| {
            Error::Usage(format!(
                "invalid min-rate `{r}`: write it like `64KiB/s`, `1MiB/s` or `500B/s`"
            ))
        })?;
    }
    if let Some(r) = layout.network.retries {
        opts.retries = r;
    }
    Ok(opts)
}

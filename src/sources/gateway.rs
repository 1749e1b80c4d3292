//! A trustless HTTP gateway as a block source (spec: ipfs/specs
//! `src/http-gateways/trustless-gateway.md`).
//!
//! Goals:
//! - Whole DAGs as one streamed CAR (`GET /ipfs/{cid}?format=car&dag-scope=all`,
//!   `Accept: application/vnd.ipld.car; version=1; order=dfs; dups=n`), single
//!   blocks as `?format=raw` when the CAR breaks off or only a few blocks are
//!   needed (see [`super::fetch_with_cars`]).
//! - Nothing a gateway says is believed: every block is hashed, and a gateway
//!   that serves one block that does not match its CID is dropped for the rest
//!   of the operation, and so is one that is unreachable or breaks a limit
//!   (deadline, minimum rate, a CAR past its byte budget: see
//!   [`super::http`] and [`super::CarBudget`]). The process remembers dead
//!   gateways ([`super::http::mark_dead`]), so the next DAG of the same run
//!   does not ask again.
//! - Several missing blocks at once are fetched concurrently
//!   ([`super::parallel`]), at most [`super::MAX_IN_FLIGHT`] in flight.
//! - Signed IPNS records (`/ipns/{name}?format=ipns-record`), verified by the
//!   caller.
//!
//! Non-goals: the path gateway (HTML, directory listings, DNSLink hosting),
//! which an untrusting client has no use for.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::content::cid::verify;
use crate::content::{Cid, MAX_BLOCK_SIZE};
use crate::names::ipns::MAX_RECORD_SIZE;

use super::http::{
    Guarded, HttpOptions, agent, dead_error, mark_dead, read_limited, status_error, with_retries,
};
use super::parallel::Parallel;
use super::store::BlockStore;
use super::{BlockSource, CarBudget, FetchStats, OnBlock, SourceError};

const ACCEPT_CAR: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
const ACCEPT_RAW: &str = "application/vnd.ipld.raw";
const ACCEPT_IPNS: &str = "application/vnd.ipfs.ipns-record";

/// A trustless gateway at a base URL (`http://127.0.0.1:8080`).
pub struct GatewaySource {
    base: String,
    opts: HttpOptions,
    agent: ureq::Agent,
    /// Why this gateway is no longer asked, once it served a bad block.
    dropped: Mutex<Option<String>>,
    /// Bytes of block data received (benchmarks report it).
    received: AtomicU64,
    /// The concurrent client, made on first use.
    parallel: OnceLock<Result<Parallel, String>>,
}

impl GatewaySource {
    /// A gateway at `base` (an `http://` or `https://` URL without a path
    /// beyond an optional prefix).
    pub fn new(base: &str, opts: &HttpOptions) -> Result<GatewaySource, String> {
        let base = base.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "gateway `{base}` is not an http:// or https:// URL"
            ));
        }
        Ok(GatewaySource {
            base: base.to_owned(),
            opts: *opts,
            agent: agent(opts),
            dropped: Mutex::new(None),
            received: AtomicU64::new(0),
            parallel: OnceLock::new(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Bytes of blocks this gateway delivered so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    fn check_dropped(&self) -> Result<(), SourceError> {
        if let Some(why) = self.dropped.lock().ok().and_then(|d| d.clone()) {
            return Err(SourceError::Dropped {
                message: format!("not asked again: {why}"),
            });
        }
        match dead_error(&self.base) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Note a lie, a dead gateway or a broken limit: this gateway is not
    /// asked again during this operation.
    fn drop_on_corrupt<T>(&self, r: Result<T, SourceError>) -> Result<T, SourceError> {
        if let Err(e) = &r
            && e.drops_source()
        {
            let why = match e {
                SourceError::Corrupt { cid } => {
                    format!("it served a block that does not match `{cid}`")
                }
                e => e.to_string(),
            };
            mark_dead(&self.base, &why);
            if let Ok(mut d) = self.dropped.lock() {
                d.get_or_insert(why);
            }
        }
        r
    }

    fn parallel(&self) -> Result<&Parallel, SourceError> {
        self.parallel
            .get_or_init(|| Parallel::new(&self.opts).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|m| SourceError::Other { message: m.clone() })
    }

    fn get(
        &self,
        path: &str,
        accept: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, SourceError> {
        let url = format!("{}{path}", self.base);
        with_retries(&self.opts, || {
            self.agent.get(&url).header("Accept", accept).call()
        })
    }

    /// One block, verified.
    fn raw_block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError> {
        let resp = self.get(&format!("/ipfs/{cid}?format=raw"), ACCEPT_RAW)?;
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => return Err(SourceError::Missing(*cid)),
            _ => return Err(status_error(resp)),
        }
        let data = read_limited(resp, MAX_BLOCK_SIZE, &self.opts)?;
        verify(cid, &data).map_err(|_| SourceError::Corrupt { cid: *cid })?;
        self.received
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    /// Several blocks, concurrently.
    fn raw_blocks(&self, cids: &[Cid], on_block: OnBlock<'_>) -> Result<(), SourceError> {
        if cids.len() == 1 {
            return on_block(cids[0], self.raw_block(&cids[0])?);
        }
        let received = &self.received;
        self.parallel()?.blocks(&self.base, cids, &mut |c, d| {
            received.fetch_add(d.len() as u64, Ordering::Relaxed);
            on_block(c, d)
        })
    }

    /// The sub-DAG under `cid` as a CAR stream, held to the deadline and
    /// rate limits (the budget is the caller's: [`super::fetch_with_cars`]).
    fn car(&self, cid: &Cid, budget: &Arc<CarBudget>) -> Result<Box<dyn Read + '_>, SourceError> {
        let resp = self.get(&format!("/ipfs/{cid}?format=car&dag-scope=all"), ACCEPT_CAR)?;
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => return Err(SourceError::Missing(*cid)),
            _ => return Err(status_error(resp)),
        }
        Ok(Box::new(Counting {
            inner: Guarded::car(resp.into_body().into_reader(), &self.opts, budget),
            count: &self.received,
        }))
    }

    /// The signed IPNS record for `name` (`k51…`), unverified: the caller
    /// verifies it against the name.
    pub fn ipns_record(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        self.check_dropped()?;
        let r = self
            .get(&format!("/ipns/{name}?format=ipns-record"), ACCEPT_IPNS)
            .and_then(|resp| match resp.status().as_u16() {
                200 => read_limited(resp, MAX_RECORD_SIZE, &self.opts),
                404 | 410 => Err(SourceError::Other {
                    message: format!("has no IPNS record for `{name}`"),
                }),
                _ => Err(status_error(resp)),
            });
        self.drop_on_corrupt(r)
    }
}

/// Counts the bytes read through it.
struct Counting<'a, R> {
    inner: R,
    count: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl BlockSource for GatewaySource {
    fn describe(&self) -> String {
        format!("gateway {}", self.base)
    }

    fn block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError> {
        self.check_dropped()?;
        let r = self.raw_block(cid);
        self.drop_on_corrupt(r)
    }

    fn blocks(&self, cids: &[Cid], on_block: OnBlock<'_>) -> Result<(), SourceError> {
        self.check_dropped()?;
        let r = self.raw_blocks(cids, on_block);
        self.drop_on_corrupt(r)
    }

    fn as_gateway(&self) -> Option<&GatewaySource> {
        Some(self)
    }

    fn fetch_dag(
        &self,
        root: &Cid,
        store: &BlockStore,
        progress: &dyn Fn(u64),
    ) -> Result<FetchStats, SourceError> {
        self.check_dropped()?;
        let r = super::fetch_with_cars(
            store,
            root,
            progress,
            &|cids, on| self.raw_blocks(cids, on),
            &|c, budget| self.car(c, budget),
        );
        self.drop_on_corrupt(r)
    }
}

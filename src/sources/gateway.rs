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
//!   of the operation (one [`GatewaySource`] lives for one operation).
//! - Signed IPNS records (`/ipns/{name}?format=ipns-record`), verified by the
//!   caller.
//!
//! Non-goals: the path gateway (HTML, directory listings, DNSLink hosting),
//! which an untrusting client has no use for.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::content::cid::verify;
use crate::content::{Cid, MAX_BLOCK_SIZE};
use crate::names::ipns::MAX_RECORD_SIZE;

use super::http::{HttpOptions, agent, read_limited, status_error, with_retries};
use super::store::BlockStore;
use super::{BlockSource, FetchStats, SourceError};

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
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Bytes of blocks this gateway delivered so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn check_dropped(&self) -> Result<(), SourceError> {
        match self.dropped.lock().ok().and_then(|d| d.clone()) {
            Some(why) => Err(SourceError::Other {
                message: format!("not asked again: {why}"),
            }),
            None => Ok(()),
        }
    }

    /// Note a lie: this gateway is not asked again during this operation.
    fn drop_on_corrupt<T>(&self, r: Result<T, SourceError>) -> Result<T, SourceError> {
        if let Err(SourceError::Corrupt { cid }) = &r
            && let Ok(mut d) = self.dropped.lock()
        {
            *d = Some(format!("it served a block that does not match `{cid}`"));
        }
        r
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
        let data = read_limited(resp, MAX_BLOCK_SIZE)?;
        verify(cid, &data).map_err(|_| SourceError::Corrupt { cid: *cid })?;
        self.received
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    /// The sub-DAG under `cid` as a CAR stream.
    fn car(&self, cid: &Cid) -> Result<Box<dyn Read + '_>, SourceError> {
        let resp = self.get(&format!("/ipfs/{cid}?format=car&dag-scope=all"), ACCEPT_CAR)?;
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => return Err(SourceError::Missing(*cid)),
            _ => return Err(status_error(resp)),
        }
        Ok(Box::new(Counting {
            inner: resp.into_body().into_reader(),
            count: &self.received,
        }))
    }

    /// The signed IPNS record for `name` (`k51…`), unverified: the caller
    /// verifies it against the name.
    pub fn ipns_record(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        self.check_dropped()?;
        let resp = self.get(&format!("/ipns/{name}?format=ipns-record"), ACCEPT_IPNS)?;
        match resp.status().as_u16() {
            200 => read_limited(resp, MAX_RECORD_SIZE),
            404 | 410 => Err(SourceError::Other {
                message: format!("has no IPNS record for `{name}`"),
            }),
            _ => Err(status_error(resp)),
        }
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

    fn fetch_dag(
        &self,
        root: &Cid,
        store: &BlockStore,
        progress: &dyn Fn(u64),
    ) -> Result<FetchStats, SourceError> {
        self.check_dropped()?;
        let r = super::fetch_with_cars(store, root, progress, &|c| self.raw_block(c), &|c| {
            self.car(c)
        });
        self.drop_on_corrupt(r)
    }
}

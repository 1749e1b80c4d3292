//! Concurrent block requests to trustless gateways (reqwest on tokio): the
//! first request of a fetch raced across every gateway ([`Parallel::race`]),
//! and batches of single blocks with at most [`MAX_IN_FLIGHT`] requests in
//! flight per gateway ([`Parallel::blocks`]), so an upgrade of many changed
//! blocks costs a few round trips, not one per block.
//!
//! Every request is held to the same limits as the blocking client
//! ([`super::http`]): idle timeout (connect and each read), overall deadline,
//! minimum rate, the block size limit; every block is verified against its
//! CID before it is handed on.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::content::cid::verify;
use crate::content::{Cid, MAX_BLOCK_SIZE};

use super::http::{HttpOptions, RateClock};
use super::{MAX_IN_FLIGHT, OnBlock, SourceError};

const ACCEPT_RAW: &str = "application/vnd.ipld.raw";

/// A small tokio runtime and a reqwest client for one operation.
pub struct Parallel {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    opts: HttpOptions,
}

impl Parallel {
    pub fn new(opts: &HttpOptions) -> Result<Parallel, SourceError> {
        let other = |e: &dyn std::fmt::Display| SourceError::Other {
            message: format!("cannot start the HTTP client: {e}"),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| other(&e))?;
        let client = reqwest::Client::builder()
            .connect_timeout(opts.timeout)
            .read_timeout(opts.timeout)
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .user_agent(concat!("ipkg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| other(&e))?;
        Ok(Parallel {
            rt,
            client,
            opts: *opts,
        })
    }

    /// Ask every gateway in `bases` for `cid` at once; the first verified
    /// answer wins and the other requests are cancelled. Returns the
    /// winner's index and the block, and the failures that came before it.
    #[allow(clippy::type_complexity)]
    pub fn race(
        &self,
        bases: &[String],
        cid: &Cid,
    ) -> (Option<(usize, Vec<u8>)>, Vec<(usize, SourceError)>) {
        self.rt.block_on(async {
            let mut set = JoinSet::new();
            for (i, base) in bases.iter().enumerate() {
                let (client, opts, base, cid) =
                    (self.client.clone(), self.opts, base.clone(), *cid);
                set.spawn(async move { (i, get_block(&client, &opts, &base, &cid).await) });
            }
            let mut failed = Vec::new();
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok((i, Ok(data))) => return (Some((i, data)), failed),
                    Ok((i, Err(e))) => failed.push((i, e)),
                    Err(_) => {}
                }
            }
            (None, failed)
        })
    }

    /// Fetch `cids` from the gateway at `base`, at most [`MAX_IN_FLIGHT`] at
    /// once, handing each verified block to `on_block` as it arrives. The
    /// first failure ends the batch (requests still in flight are dropped).
    pub fn blocks(
        &self,
        base: &str,
        cids: &[Cid],
        on_block: OnBlock<'_>,
    ) -> Result<(), SourceError> {
        let max = in_flight();
        self.rt.block_on(async {
            let mut set = JoinSet::new();
            let mut next = cids.iter();
            loop {
                while set.len() < max {
                    let Some(cid) = next.next() else { break };
                    let (client, opts, base, cid) =
                        (self.client.clone(), self.opts, base.to_owned(), *cid);
                    set.spawn(async move {
                        let r = get_block(&client, &opts, &base, &cid).await;
                        (cid, r)
                    });
                }
                match set.join_next().await {
                    None => return Ok(()),
                    Some(Ok((cid, r))) => on_block(cid, r?)?,
                    Some(Err(e)) => {
                        return Err(SourceError::Other {
                            message: format!("request task failed: {e}"),
                        });
                    }
                }
            }
        })
    }
}

/// Requests in flight per batch: [`MAX_IN_FLIGHT`], or `IPKG_MAX_IN_FLIGHT`
/// (a benchmark knob: `1` is the old one-round-trip-per-block walk).
fn in_flight() -> usize {
    std::env::var("IPKG_MAX_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(MAX_IN_FLIGHT)
}

/// `GET {base}/ipfs/{cid}?format=raw`, retried on a transport error or a
/// 5xx, held to the deadline and the minimum rate, verified.
async fn get_block(
    client: &reqwest::Client,
    opts: &HttpOptions,
    base: &str,
    cid: &Cid,
) -> Result<Vec<u8>, SourceError> {
    let url = format!("{base}/ipfs/{cid}?format=raw");
    let mut attempt = 0;
    loop {
        let deadline = opts.fetch_timeout;
        let r = match tokio::time::timeout(deadline, once(client, opts, &url, cid)).await {
            Ok(r) => r,
            Err(_) => Err(Attempt::Transport(format!(
                "did not answer within its deadline of {}",
                super::http::show_duration(deadline)
            ))),
        };
        match r {
            Ok(data) => return Ok(data),
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Transport(m)) if attempt >= opts.retries => {
                return Err(SourceError::Dropped { message: m });
            }
            Err(Attempt::ServerError(m)) if attempt >= opts.retries => {
                return Err(SourceError::Other { message: m });
            }
            Err(_) => {}
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
    }
}

enum Attempt {
    /// Not worth retrying.
    Final(SourceError),
    /// Refused, timed out, broken off: retried, then the source is dead.
    Transport(String),
    /// A 5xx: retried.
    ServerError(String),
}

async fn once(
    client: &reqwest::Client,
    opts: &HttpOptions,
    url: &str,
    cid: &Cid,
) -> Result<Vec<u8>, Attempt> {
    let transport = |e: reqwest::Error| {
        Attempt::Transport(if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "connection refused or unreachable".to_owned()
        } else {
            e.to_string()
        })
    };
    let mut resp = client
        .get(url)
        .header("Accept", ACCEPT_RAW)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status().as_u16();
    match status {
        200 => {}
        404 | 410 => return Err(Attempt::Final(SourceError::Missing(*cid))),
        500..=599 => return Err(Attempt::ServerError(format!("HTTP {status}"))),
        _ => {
            return Err(Attempt::Final(SourceError::Other {
                message: format!("HTTP {status}"),
            }));
        }
    }
    let mut clock = RateClock::new(opts);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BLOCK_SIZE {
            return Err(Attempt::Final(SourceError::Dropped {
                message: format!("answer is larger than {MAX_BLOCK_SIZE} bytes"),
            }));
        }
        clock
            .tick(chunk.len(), opts.fetch_timeout)
            .map_err(|v| Attempt::Final(SourceError::Dropped { message: v.0 }))?;
    }
    verify(cid, &body).map_err(|_| Attempt::Final(SourceError::Corrupt { cid: *cid }))?;
    Ok(body)
}

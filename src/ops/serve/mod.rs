//! The gateway server: what this host serves to others.
//!
//! Owns the listening socket and the HTTP responses. Read-only towards
//! installed state, registries and keys, and never writes to the store; it
//! serves blocks from the store and IPNS records from
//! [`super::resolve::names`]'s cache, both already verified (a verified
//! `PUT /routing/v1/ipns` only offers a record to that cache).
//!
//! # `ipkg serve`
//!
//! `ipkg serve`: an IPFS HTTP gateway over the embedded store, so any ipkg
//! host can be a mirror, a path gateway for browsers and a delegated router
//! for Helia and Kubo.
//!
//! Route groups (one file each, all answering through [`http::Req`] and
//! [`http::Response`]):
//! - [`trustless`]: `/ipfs/{cid}[/path]?format=raw|car` (or the `Accept`
//!   types), `/ipns/{name}?format=ipns-record`, the `bafkqaaa` probe
//!   (spec: ipfs/specs `http-gateways/trustless-gateway.md`).
//! - [`path`]: UnixFS files and directories for browsers and curl when no
//!   trustless format is asked (`http-gateways/path-gateway.md`): HTML
//!   listings, `index.html`, ranges, `?format=tar`, DAG-JSON rendering.
//! - [`routing`]: `/routing/v1/ipns/{name}` (GET and a verified PUT) and
//!   `/routing/v1/providers/{cid}` for the blocks held
//!   (`routing/http-routing-v1.md`).
//!
//! The server is hyper 1 on a tokio runtime. Every client may be hostile,
//! so every connection is bounded: a cap on open connections (further
//! clients wait, first come first served, in a fair semaphore), a deadline
//! for the request head, a header size limit (431), a write stall timeout
//! (a client that stops reading is cut and frees its slot), an idle
//! timeout between requests, and a time limit per handler. Handlers do the
//! store's blocking I/O on tokio's blocking pool; streamed answers (CARs,
//! files, tars) are produced there into a short queue, so memory per
//! connection stays at a few chunks whatever the client does.
//!
//! Non-goals: subdomain gateways, DNSLink hosts, HTTP/2, TLS (put a
//! reverse proxy in front for those).

mod http;
mod path;
mod routing;
mod trustless;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::Method;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::content::Cid;
use crate::content::cid::IDENTITY;
use crate::content::{BlockGet, GetError};
use crate::sources::store::BlockStore;

use self::http::{Req, Resp, Response};
use super::Error;
use super::resolve::names::RecordCache;

/// Connections served at once. Each costs a task, a few KiB of buffers and,
/// while it streams, one blocking thread and [`http::STREAM_QUEUE`] chunks;
/// 512 of them stay well under the 64 MiB the server aims for. Clients past
/// the cap wait in the kernel's accept queue and a FIFO semaphore, so a
/// flood delays newcomers but never starves the ones already queued.
pub const MAX_CONNECTIONS: usize = 512;
/// Request line plus headers. Browsers send 1-8 KiB; hyper answers 431 past
/// this and closes (a 128 MiB header line cost tiny_http 500 MiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Headers per request (hyper's parser keeps them on the stack).
pub const MAX_HEADERS: usize = 64;
/// Time for a client to send its request head once it has started one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that makes no progress for this long ends the connection: a
/// client that requests a CAR and never reads gets cut and frees its slot.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection (no byte either way) is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A handler that takes longer than this to produce its response head (a
/// huge HAMT lookup, a slow disk) is answered 504.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body: an IPNS record (`PUT /routing/v1/ipns`) is at
/// most 10 KiB by the IPNS spec.
pub const MAX_BODY_BYTES: usize = 10 * 1024;

/// What a running server needs.
pub struct Gateway {
    store: BlockStore,
    records: RecordCache,
    /// The peer ID this server gives itself in provider records (a fresh
    /// ed25519 key per run: HTTP providers are found by address, the ID
    /// only has to be well formed and stable while it runs).
    peer_id: String,
    /// Producer slots for streamed answers ([`http::MAX_STREAMS`]).
    streams: Arc<tokio::sync::Semaphore>,
    /// Bytes of blocks held for answers in flight ([`http::BLOCK_BUDGET`]).
    budget: Arc<tokio::sync::Semaphore>,
}

/// Run the gateway on `listen` with `threads` async workers until the
/// process is killed. `ready` is called with the bound address (port 0
/// picks one).
pub fn serve(
    store: BlockStore,
    records: RecordCache,
    listen: &str,
    threads: usize,
    ready: &dyn Fn(SocketAddr),
) -> Result<(), Error> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| Error::Usage(format!("cannot listen on `{listen}`: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot listen on `{listen}`: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Usage(format!("cannot listen on `{listen}`: {e}")))?;
    let peer_id = crate::trust::keys::Keypair::generate()
        .map(|k| k.public().peer_id())
        .map_err(|e| Error::Usage(format!("cannot make a peer ID: {e}")))?;
    let gw = Arc::new(Gateway {
        store,
        records,
        peer_id,
        streams: Arc::new(tokio::sync::Semaphore::new(http::MAX_STREAMS)),
        budget: Arc::new(tokio::sync::Semaphore::new(
            http::BLOCK_BUDGET / http::BUDGET_UNIT,
        )),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.clamp(1, 64))
        .max_blocking_threads(MAX_CONNECTIONS + 16)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the server runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::Usage(format!("cannot listen on `{listen}`: {e}")))?;
        ready(addr);
        accept_loop(listener, gw).await;
        Ok(())
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, gw: Arc<Gateway>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A slot first, then the next connection: waiting clients stay in
        // the kernel's queue in arrival order.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                // EMFILE and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Raw blocks and small answers go out in one segment, not after
        // Nagle's 40 ms.
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let gw = gw.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(Guarded::new(stream));
            let svc = hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(handle(gw, req, local).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .max_headers(MAX_HEADERS)
                .keep_alive(true)
                .serve_connection(io, svc)
                .await;
            drop(permit);
        });
    }
}

/// CORS for every answer: the content is public and verifiable, so any
/// origin may read it (path-gateway spec, "CORS").
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut ::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, ::http::HeaderValue::from_static(v));
    };
    set(h, "access-control-allow-origin", "*");
    set(h, "access-control-allow-methods", "GET, HEAD, OPTIONS");
    set(
        h,
        "access-control-allow-headers",
        "Content-Type, Range, User-Agent, X-Requested-With",
    );
    set(
        h,
        "access-control-expose-headers",
        "Content-Range, Content-Length, X-Ipfs-Path, X-Ipfs-Roots, X-Chunked-Output, X-Stream-Output",
    );
    r
}

async fn handle(gw: Arc<Gateway>, req: hyper::Request<Incoming>, local: SocketAddr) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    if method == Method::OPTIONS {
        return cors(Resp::new(200).bytes(Bytes::new()));
    }
    if !matches!(method, Method::GET | Method::HEAD | Method::PUT) {
        return cors(http::text(405, "only GET, HEAD, OPTIONS and PUT"));
    }
    let body = if method == Method::PUT {
        match http_body_util::Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return cors(http::text(
                    413,
                    &format!("a request body is at most {MAX_BODY_BYTES} bytes"),
                ));
            }
        }
    } else {
        Bytes::new()
    };
    let path = parts.uri.path().to_owned();
    let query = http::query_pairs(parts.uri.query().unwrap_or(""));
    let segs = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect();
    let req = Req {
        method,
        path,
        segs,
        query,
        headers: parts.headers,
        body,
        local,
    };
    let task = tokio::task::spawn_blocking(move || gw.route(&req));
    let resp = match tokio::time::timeout(HANDLER_TIMEOUT, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => http::text(500, "the handler failed"),
        Err(_) => http::text(504, "the answer took too long to prepare"),
    };
    cors(resp)
}

impl Gateway {
    /// Route a request to its group.
    fn route(&self, req: &Req) -> Response {
        let first = req.segs.first().map(String::as_str);
        if req.method == Method::PUT && first != Some("routing") {
            return http::text(405, "PUT is only for /routing/v1/ipns/{name}");
        }
        match first {
            Some("routing") => routing::handle(self, req),
            Some("ipfs") if req.segs.len() >= 2 => {
                let Ok(root) = crate::content::cid::parse(&req.segs[1]) else {
                    return http::text(400, &format!("`{}` is not a CID", req.segs[1]));
                };
                match trustless::pick_format(req) {
                    Some(f) => trustless::ipfs(self, req, root, &req.segs[2..], f, None),
                    // The probe clients send to find out whether a gateway
                    // is there, answered as a raw block.
                    None if root.hash().code() == IDENTITY && req.segs.len() == 2 => {
                        trustless::ipfs(self, req, root, &[], trustless::Format::Raw, None)
                    }
                    None => path::ipfs(self, req, root, &req.segs[2..], None),
                }
            }
            Some("ipns") if req.segs.len() >= 2 => {
                let name = &req.segs[1];
                let format = trustless::pick_format(req);
                if format == Some(trustless::Format::IpnsRecord) {
                    if req.segs.len() != 2 {
                        return http::text(400, "format=ipns-record takes /ipns/{name} alone");
                    }
                    return trustless::ipns_record(self, req, name);
                }
                let (root, ttl) = match self.resolve_name(name) {
                    Ok(r) => r,
                    Err(resp) => return resp,
                };
                match format {
                    Some(f) => trustless::ipfs(self, req, root, &req.segs[2..], f, Some(ttl)),
                    None => path::ipfs(self, req, root, &req.segs[2..], Some(ttl)),
                }
            }
            _ => http::text(
                404,
                "ipkg serve: /ipfs/{cid}[/path] (raw, car, tar, dag-json, files and listings), /ipns/{name}[/path], /routing/v1/{ipns,providers}",
            ),
        }
    }

    fn get(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        if cid.hash().code() == IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        self.store.get(cid)
    }

    fn has(&self, cid: &Cid) -> bool {
        cid.hash().code() == IDENTITY || self.store.has(cid)
    }

    /// An IPNS name this host holds a record for: the CID it points at and
    /// the record's TTL (how long the answer may be cached).
    // The error is the answer to send, once per request: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn resolve_name(&self, name: &str) -> Result<(Cid, Duration), Response> {
        let Some((_, rec)) = self.records.best(&routing::normalise_name(name)) else {
            return Err(http::text(
                404,
                &format!("no IPNS record for `{name}` on this host"),
            ));
        };
        let cid = rec
            .value
            .strip_prefix("/ipfs/")
            .map(|v| v.split('/').next().unwrap_or(v))
            .and_then(|v| crate::content::cid::parse(v).ok());
        match cid {
            Some(c) => Ok((c, rec.ttl)),
            None => Err(http::text(
                502,
                &format!(
                    "the record for `{name}` points at `{}`, not an /ipfs/ path",
                    rec.value
                ),
            )),
        }
    }
}

impl BlockGet for Gateway {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        self.get(cid)
    }
}

/// A TCP stream with the timeouts hyper does not have: a write that makes no
/// progress for [`WRITE_STALL_TIMEOUT`], or a connection with no traffic
/// either way for [`IDLE_TIMEOUT`], fails with `TimedOut`, which ends the
/// connection and frees its slot.
struct Guarded {
    inner: TcpStream,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl Guarded {
    fn new(inner: TcpStream) -> Guarded {
        Guarded {
            inner,
            read_timer: None,
            write_timer: None,
        }
    }

    /// Progress on the write side: the read side is not idle either (hyper
    /// polls reads while it streams a long answer).
    fn wrote(&mut self) {
        self.write_timer = None;
        if let Some(t) = self.read_timer.as_mut() {
            t.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
        }
    }

    fn stalled(timer: &mut Option<Pin<Box<Sleep>>>, limit: Duration, cx: &mut Context<'_>) -> bool {
        let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        t.as_mut().poll(cx).is_ready()
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if Guarded::stalled(&mut this.read_timer, IDLE_TIMEOUT, cx) {
                    Poll::Ready(Err(timed_out("the connection was idle too long")))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.wrote();
                Poll::Ready(r)
            }
            Poll::Pending => {
                if Guarded::stalled(&mut this.write_timer, WRITE_STALL_TIMEOUT, cx) {
                    Poll::Ready(Err(timed_out("the client stopped reading")))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.wrote();
                Poll::Ready(r)
            }
            Poll::Pending => {
                if Guarded::stalled(&mut this.write_timer, WRITE_STALL_TIMEOUT, cx) {
                    Poll::Ready(Err(timed_out("the client stopped reading")))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => {
                if Guarded::stalled(&mut this.write_timer, WRITE_STALL_TIMEOUT, cx) {
                    Poll::Ready(Err(timed_out("the client stopped reading")))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

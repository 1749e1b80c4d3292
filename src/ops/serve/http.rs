//! HTTP plumbing shared by every route group: the request as handlers see
//! it, response builders, query and `Range` parsing, and the streamed body
//! that aborts (no final chunk) when its producer fails.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// The response body of every route.
pub type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;
pub type Response = http::Response<Body>;

/// The CAR and file streams hand bytes to the connection in chunks of this
/// size: big enough that a 100 MiB CAR is ~1600 writes, small enough that
/// a slow reader pins little memory (see [`STREAM_QUEUE`]).
pub const STREAM_CHUNK: usize = 64 * 1024;
/// Chunks queued per streamed response before the producer waits. With
/// [`STREAM_CHUNK`], a client that never reads holds at most ~192 KiB of
/// ours (plus the kernel's socket buffer) until the write timeout cuts it.
pub const STREAM_QUEUE: usize = 2;
/// The most ranges a `Range` header may ask for; past it the header is
/// ignored and the whole representation sent (RFC 9110 §14.2 allows it),
/// so a request cannot make us cut a block into thousands of parts.
pub const MAX_RANGES: usize = 16;

/// A request, read and decoded: what every handler gets.
pub struct Req {
    pub method: Method,
    /// The raw path (percent-encoded), without the query.
    pub path: String,
    /// The path split on `/`, each segment percent-decoded.
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The request body (only `PUT` has one; bounded before it gets here).
    pub body: Bytes,
    /// The address the client reached us on (our own, for provider records).
    pub local: std::net::SocketAddr,
}

impl Req {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }
}

pub fn full(b: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response under construction (a thin wrapper so handlers read as a list
/// of headers).
pub struct Resp(pub http::response::Builder);

impl Resp {
    pub fn new(status: u16) -> Resp {
        Resp(http::Response::builder().status(status))
    }

    pub fn h(self, name: &str, value: &str) -> Resp {
        // Values are ASCII we made or checked; anything else is dropped
        // rather than sent malformed.
        match HeaderValue::from_str(value) {
            Ok(v) => Resp(self.0.header(name, v)),
            Err(_) => self,
        }
    }

    pub fn body(self, body: Body) -> Response {
        self.0.body(body).unwrap_or_else(|_| {
            let mut r = http::Response::new(empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }

    pub fn bytes(self, b: impl Into<Bytes>) -> Response {
        let b = b.into();
        self.h("Content-Length", &b.len().to_string()).body(full(b))
    }
}

/// A plain-text answer (errors and notes); never cached as immutable.
pub fn text(status: u16, msg: &str) -> Response {
    Resp::new(status)
        .h("Content-Type", "text/plain; charset=utf-8")
        .h("Cache-Control", "no-store")
        .bytes(format!("{msg}\n"))
}

/// Split `a=b&c=d` into pairs, percent-decoded.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode one path segment (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut enc = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

/// `Content-Disposition` for a download named `name` (RFC 6266: an ASCII
/// fallback with each other character as `_`, and the UTF-8 form).
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == name {
        format!("{kind}; filename=\"{name}\"")
    } else {
        format!(
            "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
            percent_encode(name)
        )
    }
}

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// No header, a unit other than bytes, bad syntax or too many parts:
    /// send the whole representation (RFC 9110 §14.2).
    Whole,
    /// No part overlaps the representation: 416.
    Unsatisfiable,
    /// Inclusive byte ranges, clamped to `len`, in the order asked.
    Parts(Vec<(u64, u64)>),
}

/// Parse `Range: bytes=a-b, c-, -n` against a representation of `len` bytes.
pub fn parse_ranges(h: Option<&str>, len: u64) -> Ranges {
    let Some(h) = h else {
        return Ranges::Whole;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let specs: Vec<&str> = spec.split(',').map(str::trim).collect();
    if specs.len() > MAX_RANGES {
        return Ranges::Whole;
    }
    let mut parts = Vec::new();
    for s in specs {
        let Some((a, b)) = s.split_once('-') else {
            return Ranges::Whole;
        };
        if a.is_empty() {
            let Ok(n) = b.parse::<u64>() else {
                return Ranges::Whole;
            };
            if n > 0 && len > 0 {
                parts.push((len.saturating_sub(n), len - 1));
            }
        } else {
            let Ok(start) = a.parse::<u64>() else {
                return Ranges::Whole;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return Ranges::Whole,
                }
            };
            if start < len {
                parts.push((start, end.min(len - 1)));
            }
        }
    }
    if parts.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Parts(parts)
    }
}

/// The 416 answer for a representation of `len` bytes.
pub fn unsatisfiable(len: u64) -> Response {
    Resp::new(416)
        .h("Content-Range", &format!("bytes */{len}"))
        .h("Content-Type", "text/plain; charset=utf-8")
        .h("Cache-Control", "no-store")
        .bytes(format!("the range asked is outside the {len} bytes\n"))
}

/// A `multipart/byteranges` body (RFC 9110 §14.6) of `parts` of `data`.
pub fn multipart(data: &[u8], parts: &[(u64, u64)], ctype: &str) -> (String, Vec<u8>) {
    let boundary = "ipkg-byteranges-3d6b6a416f9b";
    let total = data.len();
    let mut out = Vec::new();
    for &(a, b) in parts {
        let _ = write!(
            out,
            "\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n"
        );
        out.extend_from_slice(&data[a as usize..=b as usize]);
    }
    let _ = write!(out, "\r\n--{boundary}--\r\n");
    (format!("multipart/byteranges; boundary={boundary}"), out)
}

/// What a producer thread sends down a streamed body.
pub enum Msg {
    Data(Bytes),
    /// The producer wrote everything: end the body normally. Without it a
    /// closed channel means the producer failed or panicked.
    Done,
    Fail(io::Error),
}

/// A body fed by a producer on a blocking thread. When the producer fails
/// (or vanishes without [`Msg::Done`]) the body yields an error, and hyper
/// then drops the connection without the final chunk: the client sees an
/// incomplete response, never a complete one that is wrong or short.
pub struct ChannelBody {
    rx: mpsc::Receiver<Msg>,
    done: bool,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Msg::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Msg::Done)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Msg::Fail(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::other(
                "the producer of this response stopped",
            )))),
        }
    }
}

/// The writing end: a `Write` that hands chunks of [`STREAM_CHUNK`] to the
/// body, waiting while the client is behind.
pub struct ChunkWriter {
    tx: mpsc::Sender<Msg>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(STREAM_CHUNK),
        ));
        self.tx
            .blocking_send(Msg::Data(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Flush and tell the body it is complete.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.tx
            .blocking_send(Msg::Done)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Abort the body: the connection is dropped without the final chunk.
    pub fn fail(self, e: io::Error) {
        let _ = self.tx.blocking_send(Msg::Fail(e));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        // Whole blocks (up to 2 MiB) arrive in one write: cut them so the
        // queue holds chunks, not blocks.
        let n = data.len();
        while !data.is_empty() {
            let room = STREAM_CHUNK - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() >= STREAM_CHUNK {
                self.send()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams produced at once. A producer holds the block it is writing (up
/// to 2 MiB) while its client is behind, and hashes every block it reads:
/// 16 of them bound that memory to ~32 MiB and leave CPU for everyone else
/// on a small host. Further streams wait their turn, first come first
/// served, for at most [`STREAM_WAIT`].
pub const MAX_STREAMS: usize = 16;
/// How long a streamed answer waits for a producer slot before it is
/// aborted (the client may retry); as long as a stalled writer may hold one.
pub const STREAM_WAIT: std::time::Duration = super::WRITE_STALL_TIMEOUT;

/// Bytes of whole blocks held for answers in flight (raw blocks above
/// [`SMALL_BLOCK`]): 256 clients asking for a 1 MiB block each took the
/// server to 200 MiB. Past the budget, a request waits (FIFO) for at most
/// [`STREAM_WAIT`], then gets 503.
pub const BLOCK_BUDGET: usize = 24 * 1024 * 1024;
/// Blocks up to this size are answered without taking from the budget:
/// they leave in one segment and pin almost nothing.
pub const SMALL_BLOCK: u64 = 64 * 1024;
/// The budget's unit: a permit stands for this many bytes.
pub const BUDGET_UNIT: usize = 16 * 1024;

/// A complete body that holds budget permits until it is dropped (sent, or
/// the connection gone).
pub struct Held {
    inner: http_body_util::Full<Bytes>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|never| match never {})
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Wait (from a blocking thread) for budget to hold `bytes`.
pub fn reserve(
    budget: &std::sync::Arc<tokio::sync::Semaphore>,
    bytes: u64,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let units = (bytes as usize)
        .div_ceil(BUDGET_UNIT)
        .clamp(1, BLOCK_BUDGET / BUDGET_UNIT) as u32;
    let budget = budget.clone();
    tokio::runtime::Handle::current()
        .block_on(async {
            tokio::time::timeout(STREAM_WAIT, budget.acquire_many_owned(units)).await
        })
        .ok()?
        .ok()
}

/// A complete body of `data` that keeps `permit` until sent.
pub fn held(data: Bytes, permit: tokio::sync::OwnedSemaphorePermit) -> Body {
    Held {
        inner: http_body_util::Full::new(data),
        _permit: permit,
    }
    .boxed()
}

/// A streamed body and the writer that feeds it. `produce` runs on a
/// blocking thread once one of the `slots` is free; its error (or panic)
/// aborts the response.
pub fn stream<F>(slots: &std::sync::Arc<tokio::sync::Semaphore>, produce: F) -> Body
where
    F: FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let mut w = ChunkWriter {
        tx,
        buf: Vec::with_capacity(STREAM_CHUNK),
    };
    let slots = slots.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let permit =
            rt.block_on(async { tokio::time::timeout(STREAM_WAIT, slots.acquire_owned()).await });
        let Ok(Ok(_permit)) = permit else {
            return w.fail(io::Error::other("no stream slot came free in time"));
        };
        match produce(&mut w) {
            Ok(()) => {
                let _ = w.finish();
            }
            Err(e) => w.fail(e),
        }
    });
    ChannelBody { rx, done: false }.boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition() {
        assert_eq!(
            disposition("attachment", "a.car"),
            "attachment; filename=\"a.car\""
        );
        assert_eq!(
            disposition("attachment", "testтест.ipns-record"),
            "attachment; filename=\"test____.ipns-record\"; filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82.ipns-record"
        );
    }

    #[test]
    fn ranges() {
        let p = |h: &str, len| parse_ranges(Some(h), len);
        assert_eq!(p("bytes=0-3", 10), Ranges::Parts(vec![(0, 3)]));
        assert_eq!(p("bytes=5-", 10), Ranges::Parts(vec![(5, 9)]));
        assert_eq!(p("bytes=-2", 10), Ranges::Parts(vec![(8, 9)]));
        assert_eq!(p("bytes=-20", 10), Ranges::Parts(vec![(0, 9)]));
        assert_eq!(p("bytes=1-2,4-5", 10), Ranges::Parts(vec![(1, 2), (4, 5)]));
        assert_eq!(p("bytes=20-30", 10), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=999999999-", 10), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=8-30", 10), Ranges::Parts(vec![(8, 9)]));
        assert_eq!(p("bytes=5-1", 10), Ranges::Whole);
        assert_eq!(p("items=0-1", 10), Ranges::Whole);
        assert_eq!(p("bytes=x-1", 10), Ranges::Whole);
        assert_eq!(p("bytes=0-0", 0), Ranges::Unsatisfiable);
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(p(&many, 10), Ranges::Whole);
        assert_eq!(parse_ranges(None, 10), Ranges::Whole);
    }

    #[test]
    fn multipart_body() {
        let (ct, body) = multipart(b"0123456789", &[(0, 1), (8, 9)], "text/plain");
        assert!(ct.starts_with("multipart/byteranges; boundary="));
        let s = String::from_utf8(body).unwrap();
        assert!(s.contains("Content-Range: bytes 0-1/10\r\n\r\n01\r\n"));
        assert!(s.contains("Content-Range: bytes 8-9/10\r\n\r\n89\r\n"));
        assert!(s.ends_with("--\r\n"));
    }
}

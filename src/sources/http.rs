//! HTTP plumbing shared by the network sources: one blocking client (ureq,
//! rustls) per source, deadlines, retries, and which sources are dead for the
//! rest of the operation.
//!
//! Every request is held to three limits (`docs/network.md`, "Deadlines and
//! budgets"):
//! - an **idle timeout** (`timeout`): connecting, the response headers, and
//!   the gap between two reads of a body;
//! - an **overall deadline** (`fetch-timeout`) for a request whose size is
//!   bounded (a block, a record, an RPC answer); a CAR stream's deadline grows
//!   with its byte budget at the minimum rate;
//! - a **minimum rate** (`min-rate`): over every window of [`rate_window`]
//!   the body must bring at least `min-rate` bytes/s, so a 1 B/s trickle,
//!   which never trips an idle timeout, fails within one window.
//!
//! A connection refused, a timeout or a 5xx answer is retried `retries` times
//! with a short back-off; a 4xx answer is not. A source that is still
//! unreachable, or breaks a limit, is dead for the rest of the operation
//! ([`mark_dead`]): the next DAG of the same run does not wait for it again.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Response;

use super::SourceError;

/// Default idle timeout: long enough for a busy public gateway to start
/// answering, short enough that a dead one costs seconds, not minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default overall deadline of one bounded request (a block of at most 2 MiB,
/// a record, an RPC answer): 2 MiB at the default minimum rate takes 32 s.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Default minimum transfer rate, bytes/s: 64 KiB/s is a slow mobile link; a
/// source slower than that is better replaced by the next one.
pub const DEFAULT_MIN_RATE: u64 = 64 << 10;
/// The shortest window the minimum rate is measured over (it is the idle
/// timeout, within these bounds): short bursts of slowness are forgiven.
pub const MIN_RATE_WINDOW: Duration = Duration::from_secs(1);
/// The longest window: a stalled stream is caught within 10 s even with a
/// long idle timeout.
pub const MAX_RATE_WINDOW: Duration = Duration::from_secs(10);
/// How long a dead source stays dead in a long-running process (`ipkg
/// serve` never fetches, but a library user may keep one process): one CLI
/// run is one operation and ends long before.
pub const DEAD_FOR: Duration = Duration::from_secs(600);

/// Deadlines, rate and retries for network sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpOptions {
    /// Idle timeout: how long to wait for a connection, for the response
    /// headers, and between two reads of a body.
    pub timeout: Duration,
    /// Overall deadline of one bounded request (block, record, RPC call).
    pub fetch_timeout: Duration,
    /// Minimum transfer rate of a body, bytes/s, measured per window.
    pub min_rate: u64,
    /// Extra attempts after a failed one (transport error or 5xx).
    pub retries: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: DEFAULT_TIMEOUT,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
            retries: 1,
        }
    }
}

impl HttpOptions {
    /// The window the minimum rate is measured over.
    pub fn rate_window(&self) -> Duration {
        self.timeout.clamp(MIN_RATE_WINDOW, MAX_RATE_WINDOW)
    }

    /// The deadline of a stream of (at most) `bytes` bytes started now: the
    /// fixed deadline plus the time `bytes` take at the minimum rate.
    pub fn stream_deadline(&self, bytes: u64) -> Duration {
        let rate = self.min_rate.max(1);
        self.fetch_timeout + Duration::from_secs(bytes / rate)
    }
}

/// Why a body was given up on while it was still arriving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// The deadline and minimum-rate clock of one response body.
#[derive(Debug, Clone)]
pub struct RateClock {
    start: Instant,
    min_rate: u64,
    window: Duration,
    window_start: Instant,
    window_bytes: u64,
    /// Total bytes so far.
    pub bytes: u64,
}

impl RateClock {
    pub fn new(opts: &HttpOptions) -> RateClock {
        let now = Instant::now();
        RateClock {
            start: now,
            min_rate: opts.min_rate,
            window: opts.rate_window(),
            window_start: now,
            window_bytes: 0,
            bytes: 0,
        }
    }

    /// Since the request started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Count `n` bytes just received; an error when the deadline
    /// (`deadline` after the start) passed or the last full window was
    /// slower than the minimum rate.
    pub fn tick(&mut self, n: usize, deadline: Duration) -> Result<(), Violation> {
        self.bytes += n as u64;
        self.window_bytes += n as u64;
        let now = Instant::now();
        if now.duration_since(self.start) > deadline {
            return Err(Violation(format!(
                "did not finish within its deadline of {} ({} bytes in)",
                show_duration(deadline),
                self.bytes
            )));
        }
        let w = now.duration_since(self.window_start);
        if w >= self.window {
            let rate = (self.window_bytes as f64 / w.as_secs_f64()) as u64;
            if rate < self.min_rate {
                return Err(Violation(format!(
                    "sent {rate} bytes/s, below the minimum rate of {} bytes/s (`min-rate`)",
                    self.min_rate
                )));
            }
            self.window_start = now;
            self.window_bytes = 0;
        }
        Ok(())
    }
}

/// A body reader held to an overall deadline and the minimum rate. Its
/// errors carry a [`Violation`] (see [`violation_of`]).
pub struct Guarded<R> {
    inner: R,
    clock: RateClock,
    deadline: Duration,
    /// A CAR's budget: the deadline grows with it ([`HttpOptions::stream_deadline`]).
    budget: Option<(std::sync::Arc<super::CarBudget>, HttpOptions)>,
}

impl<R: Read> Guarded<R> {
    pub fn new(inner: R, opts: &HttpOptions, deadline: Duration) -> Guarded<R> {
        Guarded {
            inner,
            clock: RateClock::new(opts),
            deadline,
            budget: None,
        }
    }

    /// A CAR stream whose deadline follows its byte budget.
    pub fn car(
        inner: R,
        opts: &HttpOptions,
        budget: &std::sync::Arc<super::CarBudget>,
    ) -> Guarded<R> {
        Guarded {
            inner,
            clock: RateClock::new(opts),
            deadline: opts.stream_deadline(budget.limit()),
            budget: Some((budget.clone(), *opts)),
        }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some((b, opts)) = &self.budget {
            self.deadline = opts.stream_deadline(b.limit());
        }
        if self.clock.elapsed() > self.deadline {
            let v = Violation(format!(
                "did not finish within its deadline of {} ({} bytes in)",
                show_duration(self.deadline),
                self.clock.bytes
            ));
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, v));
        }
        let n = self.inner.read(buf)?;
        self.clock
            .tick(n, self.deadline)
            .map_err(|v| std::io::Error::new(std::io::ErrorKind::TimedOut, v))?;
        Ok(n)
    }
}

/// The [`Violation`] inside an I/O error, if that is what it is.
pub fn violation_of(e: &std::io::Error) -> Option<Violation> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<Violation>())
        .cloned()
}

/// `1.5s`, `250ms`, `2m`.
pub fn show_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.as_secs() >= 120 && d.as_secs().is_multiple_of(60) {
        format!("{}m", d.as_secs() / 60)
    } else {
        format!("{}s", (d.as_secs_f64() * 10.0).round() / 10.0)
    }
}

// ---------------------------------------------------------------------------
// Dead sources.

static DEAD: Mutex<Option<HashMap<String, (Instant, String)>>> = Mutex::new(None);

/// Remember that the source at `base` is dead (unreachable, or it broke a
/// limit or lied) for the rest of the operation, and why.
pub fn mark_dead(base: &str, why: &str) {
    if let Ok(mut d) = DEAD.lock() {
        d.get_or_insert_with(HashMap::new)
            .entry(base.to_owned())
            .or_insert_with(|| (Instant::now(), why.to_owned()));
    }
}

/// Forget that the source at `base` is dead. A lazy mount lives for hours
/// and reads block by block: a source that lied about one block is kept for
/// the others (the mount remembers the lie for that block alone).
pub fn forget_dead(base: &str) {
    if let Ok(mut d) = DEAD.lock()
        && let Some(map) = d.as_mut()
    {
        map.remove(base);
    }
}

/// Why the source at `base` is dead, if it is.
pub fn dead(base: &str) -> Option<String> {
    let mut d = DEAD.lock().ok()?;
    let map = d.as_mut()?;
    match map.get(base) {
        Some((at, _)) if at.elapsed() > DEAD_FOR => {
            map.remove(base);
            None
        }
        Some((_, why)) => Some(why.clone()),
        None => None,
    }
}

/// The error for a request to a dead source.
pub fn dead_error(base: &str) -> Option<super::SourceError> {
    dead(base).map(|why| super::SourceError::Dropped {
        message: format!("not asked again in this run: {why}"),
    })
}

/// A client with the given timeouts. Statuses are not errors: each source
/// reads the status itself (a 404 means "missing", a 500 is retried).
pub fn agent(opts: &HttpOptions) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(opts.timeout))
        .timeout_recv_response(Some(opts.timeout))
        .timeout_per_read(Some(opts.timeout))
        .timeout_per_write(Some(opts.timeout))
        .user_agent(concat!("ipkg/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Send a request built by `make` until it gets an answer that is not a 5xx,
/// at most `1 + retries` times. Returns the last answer or transport error.
pub fn with_retries(
    opts: &HttpOptions,
    mut make: impl FnMut() -> Result<Response<ureq::Body>, ureq::Error>,
) -> Result<Response<ureq::Body>, SourceError> {
    let mut attempt = 0;
    loop {
        let result = make();
        let retry = match &result {
            Ok(resp) => resp.status().is_server_error(),
            Err(_) => true,
        };
        if !retry || attempt >= opts.retries {
            return result.map_err(transport_error);
        }
        attempt += 1;
        std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
    }
}

/// A transport failure (after the retries) as a source error: the source is
/// unreachable, so [`SourceError::Dropped`] (not asked again in this run).
pub fn transport_error(e: ureq::Error) -> SourceError {
    let message = match &e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        _ => e.to_string(),
    };
    SourceError::Dropped { message }
}

/// Read a whole body of at most `max` bytes (one block, one record), held to
/// the overall deadline and the minimum rate. A body that breaks them is a
/// [`SourceError::Dropped`].
pub fn read_limited(
    resp: Response<ureq::Body>,
    max: usize,
    opts: &HttpOptions,
) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    let reader = Guarded::new(resp.into_body().into_reader(), opts, opts.fetch_timeout);
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| match violation_of(&e) {
            Some(v) => SourceError::Dropped {
                message: v.to_string(),
            },
            None => SourceError::Other {
                message: format!("reading the answer: {e}"),
            },
        })?;
    if body.len() > max {
        return Err(SourceError::Other {
            message: format!("answer is larger than {max} bytes"),
        });
    }
    Ok(body)
}

/// A short description of a non-200 answer: `HTTP 500: <first line of body>`.
pub fn status_error(resp: Response<ureq::Body>) -> SourceError {
    let status = resp.status();
    let quick = HttpOptions {
        fetch_timeout: Duration::from_secs(5),
        ..HttpOptions::default()
    };
    let body = read_limited(resp, 4096, &quick).unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    // Kubo's RPC answers `{"Message": "...", "Code": 0, "Type": "error"}`.
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("Message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.lines().next().unwrap_or("").trim().to_owned());
    let message = if detail.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {}", status.as_u16(), clip(&detail, 200))
    };
    SourceError::Other { message }
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parse a rate written `64KiB/s`, `1MiB/s`, `500B/s`, `2000` (bytes/s).
pub fn parse_rate(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix("/s").unwrap_or(s).trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "B"),
    };
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "" | "B" => 1.0,
        "K" | "KiB" | "k" | "kB" | "KB" => 1024.0,
        "M" | "MiB" | "MB" => 1024.0 * 1024.0,
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && (1.0..1e15).contains(&v)).then_some(v as u64)
}

/// Parse a duration written `500ms`, `2s`, `1m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `http://host:port` from a Kubo-style API address: a multiaddr
/// (`/ip4/127.0.0.1/tcp/5001`, `/ip6/::1/tcp/5001`, `/dns4/localhost/tcp/5001`,
/// optionally ending `/http` or `/https`) or a URL.
pub fn api_url(addr: &str) -> Option<String> {
    let addr = addr.trim();
    if addr.starts_with("http://") || addr.starts_with("https://") {
        return Some(addr.trim_end_matches('/').to_owned());
    }
    let parts: Vec<&str> = addr.trim_matches('/').split('/').collect();
    let (host, rest) = match parts.as_slice() {
        ["ip4", ip, "tcp", port, rest @ ..] => (ip.to_string(), (port, rest)),
        ["ip6", ip, "tcp", port, rest @ ..] => (format!("[{ip}]"), (port, rest)),
        ["dns" | "dns4" | "dns6", host, "tcp", port, rest @ ..] => (host.to_string(), (port, rest)),
        _ => return None,
    };
    let (port, rest) = rest;
    port.parse::<u16>().ok()?;
    let scheme = match rest {
        [] | ["http"] => "http",
        ["https"] | ["tls", "http"] => "https",
        _ => return None,
    };
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_addresses() {
        assert_eq!(
            api_url("/ip4/127.0.0.1/tcp/5001").as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(
            api_url("/ip6/::1/tcp/5001/http").as_deref(),
            Some("http://[::1]:5001")
        );
        assert_eq!(
            api_url("/dns4/localhost/tcp/80\n").as_deref(),
            Some("http://localhost:80")
        );
        assert_eq!(
            api_url("http://127.0.0.1:5001/").as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(api_url("/unix/run/ipfs.sock"), None);
        assert_eq!(api_url("/ip4/1.2.3.4/tcp/x"), None);
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("64KiB/s"), Some(64 * 1024));
        assert_eq!(parse_rate("1MiB/s"), Some(1 << 20));
        assert_eq!(parse_rate("500B/s"), Some(500));
        assert_eq!(parse_rate("2000"), Some(2000));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("fast"), None);
    }

    /// A trickle fails within one window; a steady stream does not.
    #[test]
    fn the_rate_clock_catches_a_trickle() {
        let opts = HttpOptions {
            timeout: Duration::from_millis(100),
            fetch_timeout: Duration::from_secs(10),
            min_rate: 1000,
            retries: 0,
        };
        let mut c = RateClock::new(&opts);
        let deadline = Duration::from_secs(10);
        let mut failed = false;
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(50));
            if c.tick(1, deadline).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "1 byte per 50 ms passed a 1000 B/s minimum");
        let mut c = RateClock::new(&opts);
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(10));
            c.tick(1000, deadline).unwrap();
        }
        let mut c = RateClock::new(&opts);
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.tick(1_000_000, Duration::from_millis(10)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("fast"), None);
    }
}

//! HTTP plumbing shared by the network sources: one blocking client (ureq,
//! rustls) per source, timeouts, retries, and the fetch strategy that decides
//! between one CAR for a whole sub-DAG and single blocks.
//!
//! Timeouts are idle timeouts: a gateway streaming a big CAR slowly is fine,
//! one that stops sending for `timeout` is given up on. A connection refused,
//! a timeout or a 5xx answer is retried `retries` times with a short back-off;
//! a 4xx answer is not.

use std::io::Read;
use std::time::Duration;

use ureq::Agent;
use ureq::http::Response;

use super::SourceError;

/// Timeouts and retries for network sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpOptions {
    /// How long to wait for a connection, for the response headers, and
    /// between two reads of a body.
    pub timeout: Duration,
    /// Extra attempts after a failed one (transport error or 5xx).
    pub retries: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            retries: 1,
        }
    }
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

/// A transport failure as a source error.
pub fn transport_error(e: ureq::Error) -> SourceError {
    let message = match &e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        _ => e.to_string(),
    };
    SourceError::Other { message }
}

/// Read a whole body of at most `max` bytes (one block, one record).
pub fn read_limited(resp: Response<ureq::Body>, max: usize) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    resp.into_body()
        .into_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| SourceError::Other {
            message: format!("reading the answer: {e}"),
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
    let body = read_limited(resp, 4096).unwrap_or_default();
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
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("fast"), None);
    }
}

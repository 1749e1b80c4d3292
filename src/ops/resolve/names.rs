//! Names: IPNS records this host has seen, and resolving IPNS names and
//! DNSLink domains over the network.
//!
//! The record cache (`<prefix>/.ipkg/state/ipns/<name>.ipns-record`) keeps,
//! per name, the best verified record seen so far. It is the memory that
//! refuses rollbacks (a record with a lower sequence than one already seen
//! is rejected, whoever serves it) and what `ipkg serve` hands out.
//!
//! Resolution asks every configured source (Kubo `routing/get`, gateways
//! `?format=ipns-record`, delegated routing `GET /routing/v1/ipns/{name}`),
//! verifies each answer locally (`names::ipns::verify`), and keeps the best
//! (`select_best`). Sources that fail or serve a bad or older record are
//! reported, not fatal, as long as one good record is found.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::names::dnslink;
use crate::names::ipns::{self, VerifiedRecord};

use super::{Error, Layout};
use crate::ops::pins::write_atomic;
use crate::ops::publish::registry;

/// The best record seen per IPNS name.
#[derive(Debug, Clone)]
pub struct RecordCache {
    dir: PathBuf,
    /// Maintainer registries' own records (`registries/*/ipns-record`).
    registries: PathBuf,
}

/// What [`RecordCache::offer`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Newer than anything seen: kept.
    Newer,
    /// The same sequence as the kept one.
    Same,
    /// Older than the kept one: refused (a rollback).
    Older { seen: u64 },
}

impl RecordCache {
    pub fn open(layout: &Layout) -> RecordCache {
        RecordCache {
            dir: layout.state_root().join("state").join("ipns"),
            registries: registry::registries_dir(layout),
        }
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        // Names are `k51…`: base36 letters and digits only.
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric())
            .then(|| self.dir.join(format!("{name}.ipns-record")))
    }

    /// The kept record for `name`, verified now (an expired one is not given).
    pub fn best(&self, name: &str) -> Option<(Vec<u8>, VerifiedRecord)> {
        let now = SystemTime::now();
        let mut found: Vec<(Vec<u8>, VerifiedRecord)> = Vec::new();
        let mut candidates = Vec::new();
        if let Some(p) = self.path(name) {
            candidates.push(p);
        }
        if let Ok(entries) = std::fs::read_dir(&self.registries) {
            for e in entries.flatten() {
                candidates.push(e.path().join("ipns-record"));
            }
        }
        for p in candidates {
            if let Ok(bytes) = std::fs::read(&p)
                && let Ok(v) = ipns::verify(name, &bytes, now)
            {
                found.push((bytes, v));
            }
        }
        let recs: Vec<VerifiedRecord> = found.iter().map(|(_, v)| v.clone()).collect();
        let i = ipns::select_best(&recs)?;
        Some(found.swap_remove(i))
    }

    /// The highest sequence kept for `name` (expired records count: a
    /// rollback to before an expired record is still a rollback).
    pub fn highest(&self, name: &str) -> Option<u64> {
        let bytes = std::fs::read(self.path(name)?).ok()?;
        let far = SystemTime::UNIX_EPOCH;
        // Verified as of the epoch so expiry does not hide it.
        ipns::verify(name, &bytes, far).ok().map(|v| v.sequence)
    }

    /// Offer a record (already verified against `name`): kept when it is
    /// newer than what is kept.
    pub fn offer(&self, name: &str, bytes: &[u8], rec: &VerifiedRecord) -> Result<Offered, Error> {
        let Some(path) = self.path(name) else {
            return Err(Error::Usage(format!("`{name}` is not an IPNS name")));
        };
        let seen = self.highest(name);
        match seen {
            Some(seen) if rec.sequence < seen => return Ok(Offered::Older { seen }),
            Some(seen) if rec.sequence == seen => {
                // Keep the one that is valid longer.
                let kept = std::fs::read(&path)
                    .ok()
                    .and_then(|b| ipns::verify(name, &b, SystemTime::UNIX_EPOCH).ok());
                if kept.is_some_and(|k| k.validity >= rec.validity) {
                    return Ok(Offered::Same);
                }
            }
            _ => {}
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        write_atomic(&path, bytes).map_err(|e| Error::io(&path, e))?;
        Ok(if seen == Some(rec.sequence) {
            Offered::Same
        } else {
            Offered::Newer
        })
    }
}

// ---------------------------------------------------------------------------
// Resolving over the network.

/// A name resolved to a verified record.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    /// The content path the record points at (`/ipfs/<cid>`).
    pub value: String,
    pub sequence: u64,
    /// The record itself.
    pub record: Vec<u8>,
    /// Which source's record was used (`cache` when none gave a better one).
    pub from: String,
}

const ACCEPT_IPNS: &str = "application/vnd.ipfs.ipns-record";

/// A place IPNS records come from.
enum RecordSource {
    Kubo(crate::sources::kubo::KuboSource),
    Gateway(crate::sources::gateway::GatewaySource),
    Router {
        base: String,
        agent: ureq::Agent,
        opts: crate::sources::http::HttpOptions,
    },
}

impl RecordSource {
    fn describe(&self) -> String {
        match self {
            RecordSource::Kubo(k) => format!("Kubo RPC at {} (routing/get)", k.base()),
            RecordSource::Gateway(g) => format!("gateway {}", g.base()),
            RecordSource::Router { base, .. } => format!("delegated routing at {base}"),
        }
    }

    fn get(&self, name: &str) -> Result<Vec<u8>, String> {
        match self {
            RecordSource::Kubo(k) => k.routing_get(name).map_err(|e| e.to_string()),
            RecordSource::Gateway(g) => g.ipns_record(name).map_err(|e| e.to_string()),
            RecordSource::Router { base, agent, opts } => {
                let url = format!("{base}/routing/v1/ipns/{name}");
                let resp = crate::sources::http::with_retries(opts, || {
                    agent.get(&url).header("Accept", ACCEPT_IPNS).call()
                })
                .map_err(|e| e.to_string())?;
                match resp.status().as_u16() {
                    200 => crate::sources::http::read_limited(resp, ipns::MAX_RECORD_SIZE)
                        .map_err(|e| e.to_string()),
                    404 => Err(format!("has no IPNS record for `{name}`")),
                    _ => Err(crate::sources::http::status_error(resp).to_string()),
                }
            }
        }
    }

    fn put(&self, name: &str, record: &[u8]) -> Result<(), String> {
        match self {
            RecordSource::Kubo(k) => k.routing_put(name, record).map_err(|e| e.to_string()),
            RecordSource::Gateway(_) => Err("gateways do not take records".into()),
            RecordSource::Router { base, agent, .. } => {
                let url = format!("{base}/routing/v1/ipns/{name}");
                let resp = agent
                    .put(&url)
                    .header("Content-Type", ACCEPT_IPNS)
                    .send(record)
                    .map_err(|e| e.to_string())?;
                match resp.status().as_u16() {
                    200 | 204 => Ok(()),
                    _ => Err(crate::sources::http::status_error(resp).to_string()),
                }
            }
        }
    }
}

fn record_sources(layout: &Layout) -> Result<Vec<RecordSource>, Error> {
    let opts = super::fetch::http_options(layout)?;
    let mut out = Vec::new();
    if let Some(k) = super::fetch::kubo(layout)? {
        out.push(RecordSource::Kubo(k));
    }
    for g in super::fetch::gateways(layout)? {
        out.push(RecordSource::Gateway(g));
    }
    for r in &layout.network.routers {
        let base = r.trim_end_matches('/');
        let base = base.strip_suffix("/routing/v1").unwrap_or(base).to_owned();
        out.push(RecordSource::Router {
            base,
            agent: crate::sources::http::agent(&opts),
            opts,
        });
    }
    Ok(out)
}

/// Resolve an IPNS name: ask every source, verify every answer, refuse
/// records older than the highest sequence seen for the name, keep the best
/// (and remember it). `warn` hears about each source whose answer was not
/// used. With no network answer, a valid cached record is used.
pub fn resolve_ipns(layout: &Layout, name: &str, warn: &dyn Fn(&str)) -> Result<Resolved, Error> {
    crate::trust::keys::PublicKey::from_canonical_name(name)
        .map_err(|e| Error::Usage(format!("`{name}` is not an IPNS name: {e}")))?;
    let cache = RecordCache::open(layout);
    let seen = cache.highest(name);
    let now = SystemTime::now();
    let mut attempts = Vec::new();
    let mut good: Vec<(Vec<u8>, VerifiedRecord, String)> = Vec::new();
    for src in record_sources(layout)? {
        let what = src.describe();
        let result = src.get(name).and_then(|bytes| {
            let rec = ipns::verify(name, &bytes, now).map_err(|e| e.to_string())?;
            match seen {
                Some(s) if rec.sequence < s => Err(format!(
                    "served an older record (sequence {} < {s} already seen): refused as a rollback",
                    rec.sequence
                )),
                _ => Ok((bytes, rec)),
            }
        });
        match result {
            Ok((bytes, rec)) => good.push((bytes, rec, what)),
            Err(why) => {
                warn(&format!("{what}: {why}"));
                attempts.push((what, why));
            }
        }
    }
    let recs: Vec<VerifiedRecord> = good.iter().map(|(_, r, _)| r.clone()).collect();
    if let Some(i) = ipns::select_best(&recs) {
        let (bytes, rec, from) = good.swap_remove(i);
        cache.offer(name, &bytes, &rec)?;
        return Ok(Resolved {
            name: name.to_owned(),
            value: rec.value,
            sequence: rec.sequence,
            record: bytes,
            from,
        });
    }
    if let Some((bytes, rec)) = cache.best(name) {
        return Ok(Resolved {
            name: name.to_owned(),
            value: rec.value,
            sequence: rec.sequence,
            record: bytes,
            from: "cache".into(),
        });
    }
    Err(Error::Resolve {
        name: name.to_owned(),
        attempts,
    })
}

/// Where a record was sent, and whether it was taken.
pub type Delivery = (String, Result<(), String>);

/// Hand a signed record to every configured delegated router (`PUT
/// /routing/v1/ipns/{name}`). Returns each destination and the outcome.
/// (Kubo gets records through `publish --to kubo`, with the blocks.) The record is also kept in the local cache (so `ipkg serve`
/// serves it).
pub fn publish_record(layout: &Layout, name: &str, record: &[u8]) -> Result<Vec<Delivery>, Error> {
    let rec = ipns::verify(name, record, SystemTime::now())
        .map_err(|e| Error::Usage(format!("refusing to publish a bad record: {e}")))?;
    RecordCache::open(layout).offer(name, record, &rec)?;
    let mut out = Vec::new();
    for src in record_sources(layout)? {
        if !matches!(src, RecordSource::Router { .. }) {
            continue;
        }
        out.push((src.describe(), src.put(name, record)));
    }
    Ok(out)
}

/// Name servers from the config (`ip` or `ip:port`), else from
/// `/etc/resolv.conf`.
fn name_servers(layout: &Layout) -> Result<Vec<std::net::SocketAddr>, Error> {
    let parse = |s: &str| -> Option<std::net::SocketAddr> {
        s.parse::<std::net::SocketAddr>()
            .ok()
            .or_else(|| s.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()))
    };
    let mut out = Vec::new();
    if layout.network.dns_servers.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for line in text.lines() {
            if let Some(ip) = line.trim().strip_prefix("nameserver")
                && let Some(a) = parse(ip.trim())
            {
                out.push(a);
            }
        }
    } else {
        for s in &layout.network.dns_servers {
            out.push(parse(s).ok_or_else(|| {
                Error::Usage(format!(
                    "invalid name server `{s}` in `dns-servers`: write it as `127.0.0.1:53`"
                ))
            })?);
        }
    }
    Ok(out)
}

/// The TXT strings at `name` (each record's character strings joined).
fn txt_lookup(
    servers: &[std::net::SocketAddr],
    timeout: std::time::Duration,
    name: &str,
) -> Result<Vec<String>, String> {
    use hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
    for s in servers {
        let mut udp = ConnectionConfig::udp();
        udp.port = s.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = s.port();
        let mut ns = NameServerConfig::udp_and_tcp(s.ip());
        ns.connections = vec![udp, tcp];
        config.add_name_server(ns);
    }
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 2;
    opts.cache_size = 0;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let resolver = hickory_resolver::Resolver::builder_with_config(
        config,
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    )
    .with_options(opts)
    .build()
    .map_err(|e| e.to_string())?;
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let lookup = rt
        .block_on(resolver.txt_lookup(fqdn))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for record in lookup.answers() {
        if let hickory_resolver::proto::rr::RData::TXT(txt) = &record.data {
            let mut s = String::new();
            for part in txt.txt_data.iter() {
                s.push_str(&String::from_utf8_lossy(part));
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// Follow a domain's DNSLink (at most [`dnslink::MAX_RECURSION`] hops) to
/// an IPNS key or an `/ipfs/` path.
pub fn resolve_dnslink(layout: &Layout, domain: &str) -> Result<dnslink::Target, Error> {
    let servers = name_servers(layout)?;
    if servers.is_empty() {
        return Err(Error::DnsLink {
            domain: domain.to_owned(),
            reason: "no name server: set `dns-servers` in config.toml".into(),
        });
    }
    let timeout = super::fetch::http_options(layout)?.timeout;
    let mut current = domain.to_owned();
    for _ in 0..dnslink::MAX_RECURSION {
        let txt = txt_lookup(&servers, timeout, &format!("_dnslink.{current}")).map_err(|e| {
            Error::DnsLink {
                domain: current.clone(),
                reason: e,
            }
        })?;
        match dnslink::parse_txt(&txt).map_err(|reason| Error::DnsLink {
            domain: current.clone(),
            reason,
        })? {
            dnslink::Target::Domain(next) => current = next,
            other => return Ok(other),
        }
    }
    Err(Error::DnsLink {
        domain: domain.to_owned(),
        reason: format!("more than {} DNSLink hops", dnslink::MAX_RECURSION),
    })
}

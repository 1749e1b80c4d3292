//! The gateway server: what this host serves to others.
//!
//! Owns the listening socket and the HTTP responses. Read-only: must not
//! touch installed state, registries or keys, and never writes to the store;
//! it serves blocks from the store and IPNS records from
//! [`super::resolve::names`]'s cache, both already verified.
//!
//! # `ipkg serve`
//!
//! `ipkg serve`: a trustless gateway over the embedded store, so any ipkg
//! host can be a mirror (spec: ipfs/specs `http-gateways/trustless-gateway.md`).
//!
//! Serves:
//! - `GET|HEAD /ipfs/{cid}[/path]?format=raw` (or `Accept:
//!   application/vnd.ipld.raw`): one block, with single `Range` requests.
//! - `?format=car` (or `Accept: application/vnd.ipld.car`): a CARv1 streamed
//!   from the store, with `dag-scope=block|entity|all`, `entity-bytes=from:to`,
//!   `order=dfs` and `dups=y|n` (from the `Accept` parameters, or `car-order`
//!   and `car-dups` in the query, which win). Paths resolve through dag-pb
//!   directories (HAMT included) and DAG-CBOR documents; the blocks walked
//!   come first in the CAR.
//! - `/ipns/{name}?format=ipns-record`: the best verified record ipkg holds
//!   for the name (see [`crate::ops::resolve::names::RecordCache`]).
//! - `/ipfs/bafkqaaa`: the empty identity CID that clients probe a gateway with.
//!
//! Non-goals: the path gateway (HTML, UnixFS files as web pages, DNSLink
//! hosts, subdomains): clients verify, so they ask for blocks and CARs.
//!
//! Memory stays flat: a CAR is written by a thread into a pipe while the
//! response reads the other end, one block at a time.

use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::content::car::CarWriter;
use crate::content::cid::{Codec, IDENTITY, parse};
use crate::content::dagpb::PbNode;
use crate::content::unixfs::{Data, DataType};
use crate::content::{BlockGet, Cid, GetError, links_of, reader};
use crate::sources::store::BlockStore;

use super::Error;
use crate::ops::resolve::names::RecordCache;

const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// What a running server needs.
pub struct Gateway {
    store: BlockStore,
    records: RecordCache,
}

/// The CAR parameters of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Block,
    Entity,
    All,
}

/// Run the gateway on `listen` with `threads` workers until the process is
/// killed. `ready` is called with the bound address (port 0 picks one).
pub fn serve(
    store: BlockStore,
    records: RecordCache,
    listen: &str,
    threads: usize,
    ready: &dyn Fn(SocketAddr),
) -> Result<(), Error> {
    let server = tiny_http::Server::http(listen)
        .map_err(|e| Error::Usage(format!("cannot listen on `{listen}`: {e}")))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Usage(format!("`{listen}` is not an IP address")))?;
    ready(addr);
    let server = Arc::new(server);
    let gw = Arc::new(Gateway { store, records });
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let (server, gw) = (server.clone(), gw.clone());
        workers.push(std::thread::spawn(move || {
            while let Ok(req) = server.recv() {
                gw.handle(req);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn header(name: &str, value: &str) -> Header {
    // Names and values here are ASCII we made or checked.
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|_| Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("ascii"))
}

fn text(status: u16, msg: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(format!("{msg}\n"))
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

/// Split `a=b&c=d` into pairs, percent-decoded.
fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
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

/// `Content-Disposition` for a download named `name` (RFC 6266: an ASCII
/// fallback with each other character as `_`, and the UTF-8 form).
fn disposition(name: &str) -> String {
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
        format!("attachment; filename=\"{name}\"")
    } else {
        let mut enc = String::new();
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}")
    }
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Raw,
    Car,
    IpnsRecord,
}

/// The response format: `format=` wins over `Accept` (IPIP-523).
fn pick_format(query: &[(String, String)], accept: &str) -> Option<Format> {
    if let Some((_, f)) = query.iter().find(|(k, _)| k == "format") {
        return match f.as_str() {
            "raw" => Some(Format::Raw),
            "car" => Some(Format::Car),
            "ipns-record" => Some(Format::IpnsRecord),
            _ => None,
        };
    }
    for part in accept.split(',') {
        let mime = part.split(';').next().unwrap_or("").trim();
        match mime {
            "application/vnd.ipld.raw" => return Some(Format::Raw),
            "application/vnd.ipld.car" => return Some(Format::Car),
            "application/vnd.ipfs.ipns-record" => return Some(Format::IpnsRecord),
            _ => {}
        }
    }
    None
}

/// `order` and `dups` from the `Accept` parameters of the CAR type, then the
/// `car-order`/`car-dups` query parameters.
fn car_params(query: &[(String, String)], accept: &str) -> Result<(bool, String), String> {
    let mut dups = false;
    let mut order = "dfs".to_owned();
    for part in accept.split(',') {
        let mut params = part.split(';');
        if params.next().map(str::trim) != Some("application/vnd.ipld.car") {
            continue;
        }
        for p in params {
            match p.trim().split_once('=') {
                Some(("dups", "y")) => dups = true,
                Some(("dups", "n")) => dups = false,
                Some(("order", o)) => order = o.to_owned(),
                Some(("version", v)) if v != "1" => {
                    return Err(format!("CAR version {v} is not supported (only 1)"));
                }
                _ => {}
            }
        }
        break;
    }
    for (k, v) in query {
        match (k.as_str(), v.as_str()) {
            ("car-dups", "y") => dups = true,
            ("car-dups", "n") => dups = false,
            ("car-order", o) => order = o.to_owned(),
            ("car-version", v) if v != "1" => {
                return Err(format!("CAR version {v} is not supported (only 1)"));
            }
            _ => {}
        }
    }
    // Blocks always come depth-first; `unk` is answered with what we do.
    if order == "unk" {
        order = "dfs".to_owned();
    }
    if order != "dfs" {
        return Err(format!("CAR order `{order}` is not supported (only dfs)"));
    }
    Ok((dups, order))
}

/// `entity-bytes=from:to` (`to` may be `*`; both may be negative).
fn parse_entity_bytes(s: &str) -> Result<(i64, Option<i64>), String> {
    let bad = || format!("invalid entity-bytes `{s}`: write it as `from:to`");
    let (f, t) = s.split_once(':').ok_or_else(bad)?;
    let from: i64 = f.parse().map_err(|_| bad())?;
    let to = if t == "*" {
        None
    } else {
        Some(t.parse::<i64>().map_err(|_| bad())?)
    };
    if let (true, Some(t)) = (from >= 0, to)
        && t >= 0
        && t < from
    {
        return Err(bad());
    }
    Ok((from, to))
}

/// A block getter that remembers which blocks were read, in order (the
/// blocks a path resolution walked through).
struct Recording<'a> {
    store: &'a BlockStore,
    log: std::cell::RefCell<Vec<Cid>>,
}

impl BlockGet for Recording<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        self.log.borrow_mut().push(*cid);
        if cid.hash().code() == IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        self.store.get(cid)
    }
}

/// Why a path did not resolve.
enum PathError {
    NotFound(String),
    Missing(Cid),
    Bad(String),
}

impl Gateway {
    fn get(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        if cid.hash().code() == IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        self.store.get(cid)
    }

    /// Resolve `root/segments`: the blocks walked (root first, terminal
    /// excluded), the logical path (for `X-Ipfs-Roots`) and the terminal CID.
    fn resolve(&self, root: &Cid, segs: &[String]) -> Result<(Vec<Cid>, Vec<Cid>, Cid), PathError> {
        let mut walked = Vec::new();
        let mut logical = vec![*root];
        let mut cur = *root;
        let mut i = 0;
        while i < segs.len() {
            match Codec::from_code(cur.codec()) {
                Some(Codec::DagPb) => {
                    let rec = Recording {
                        store: &self.store,
                        log: Default::default(),
                    };
                    let r = reader::lookup(&rec, &cur, &segs[i]);
                    walked.extend(rec.log.into_inner());
                    match r {
                        Ok(Some(e)) => cur = e.cid,
                        Ok(None) => return Err(PathError::NotFound(segs[i].clone())),
                        Err(reader::ReadError::Get(GetError::Missing(c))) => {
                            return Err(PathError::Missing(c));
                        }
                        Err(e) => return Err(PathError::Bad(e.to_string())),
                    }
                    i += 1;
                }
                Some(Codec::DagCbor) => {
                    let bytes = self.get(&cur).map_err(|e| match e {
                        GetError::Missing(c) => PathError::Missing(c),
                        e => PathError::Bad(e.to_string()),
                    })?;
                    walked.push(cur);
                    let doc: ipld_core::ipld::Ipld = serde_ipld_dagcbor::from_slice(&bytes)
                        .map_err(|e| PathError::Bad(e.to_string()))?;
                    // Walk inside the document until a link (or the end).
                    let mut v = &doc;
                    loop {
                        if let ipld_core::ipld::Ipld::Link(c) = v {
                            cur = *c;
                            break;
                        }
                        let Some(seg) = segs.get(i) else {
                            return Err(PathError::Bad(
                                "the path ends inside a DAG-CBOR document".into(),
                            ));
                        };
                        v = match v {
                            ipld_core::ipld::Ipld::Map(m) => m.get(seg.as_str()),
                            ipld_core::ipld::Ipld::List(l) => {
                                seg.parse::<usize>().ok().and_then(|n| l.get(n))
                            }
                            _ => None,
                        }
                        .ok_or_else(|| PathError::NotFound(seg.clone()))?;
                        i += 1;
                    }
                }
                _ => return Err(PathError::NotFound(segs[i].clone())),
            }
            logical.push(cur);
        }
        // A HAMT lookup reads the terminal's parent shards, never the terminal.
        walked.retain(|c| c != &cur);
        let mut seen = HashSet::new();
        walked.retain(|c| seen.insert(*c));
        Ok((walked, logical, cur))
    }

    fn handle(&self, req: Request) {
        let method = req.method().clone();
        if !matches!(method, Method::Get | Method::Head) {
            let _ = req.respond(text(405, "only GET and HEAD"));
            return;
        }
        let url = req.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let query = query_pairs(query);
        let accept = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Accept"))
            .map(|h| h.value.as_str().to_owned())
            .unwrap_or_default();
        let range = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Range"))
            .map(|h| h.value.as_str().to_owned());
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let filename = query
            .iter()
            .find(|(k, _)| k == "filename")
            .map(|(_, v)| v.clone());
        let format = pick_format(&query, &accept);
        match segs.first().map(String::as_str) {
            Some("ipfs") if segs.len() >= 2 => {
                let Ok(root) = parse(&segs[1]) else {
                    let _ = req.respond(text(400, &format!("`{}` is not a CID", segs[1])));
                    return;
                };
                self.ipfs(
                    req,
                    root,
                    &segs[2..],
                    path,
                    &query,
                    &accept,
                    format,
                    range,
                    filename,
                );
            }
            Some("ipns") if segs.len() == 2 => {
                if format != Some(Format::IpnsRecord) {
                    let _ = req.respond(text(
                        406,
                        "this trustless gateway serves /ipns/ only as ?format=ipns-record",
                    ));
                    return;
                }
                self.ipns(req, &segs[1], filename);
            }
            _ => {
                let _ = req.respond(text(
                    404,
                    "ipkg serve: a trustless gateway (/ipfs/{cid}?format=raw|car, /ipns/{name}?format=ipns-record)",
                ));
            }
        }
    }

    fn ipns(&self, req: Request, name: &str, filename: Option<String>) {
        match self.records.best(name) {
            Some((bytes, rec)) => {
                let ttl = rec.ttl.as_secs().clamp(1, 31_536_000);
                let fname = filename.unwrap_or_else(|| format!("{name}.ipns-record"));
                let resp = Response::from_data(bytes)
                    .with_header(header("Content-Type", "application/vnd.ipfs.ipns-record"))
                    .with_header(header("Content-Disposition", &disposition(&fname)))
                    .with_header(header("Cache-Control", &format!("public, max-age={ttl}")))
                    .with_header(header("X-Content-Type-Options", "nosniff"))
                    .with_header(header("Vary", "Accept"));
                let _ = req.respond(resp);
            }
            None => {
                let _ = req.respond(text(404, &format!("no IPNS record for `{name}`")));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ipfs(
        &self,
        req: Request,
        root: Cid,
        rest: &[String],
        path: &str,
        query: &[(String, String)],
        accept: &str,
        format: Option<Format>,
        range: Option<String>,
        filename: Option<String>,
    ) {
        let format = match format {
            Some(f) => f,
            // The probe clients send to find out whether a gateway is there.
            None if root.hash().code() == IDENTITY && rest.is_empty() => Format::Raw,
            None => {
                let _ = req.respond(text(
                    406,
                    "a trustless gateway: ask for ?format=raw or ?format=car (or Accept: application/vnd.ipld.raw / application/vnd.ipld.car)",
                ));
                return;
            }
        };
        if format == Format::IpnsRecord {
            let _ = req.respond(text(400, "format=ipns-record is for /ipns/ paths"));
            return;
        }
        let (walked, logical, cid) = match self.resolve(&root, rest) {
            Ok(r) => r,
            Err(PathError::NotFound(seg)) => {
                let _ = req.respond(text(404, &format!("no link named `{seg}`")));
                return;
            }
            Err(PathError::Missing(c)) => {
                let _ = req.respond(text(404, &format!("block `{c}` is not in this store")));
                return;
            }
            Err(PathError::Bad(why)) => {
                let _ = req.respond(text(400, &why));
                return;
            }
        };
        let roots: Vec<String> = logical.iter().map(Cid::to_string).collect();
        let common = |resp: Response<Box<dyn Read + Send>>| {
            resp.with_header(header("X-Ipfs-Path", path))
                .with_header(header("X-Ipfs-Roots", &roots.join(",")))
                .with_header(header("X-Content-Type-Options", "nosniff"))
                .with_header(header("Cache-Control", IMMUTABLE))
                .with_header(header("Vary", "Accept"))
        };
        match format {
            Format::Raw => {
                let data = match self.get(&cid) {
                    Ok(d) => d,
                    Err(GetError::Missing(_)) => {
                        let _ =
                            req.respond(text(404, &format!("block `{cid}` is not in this store")));
                        return;
                    }
                    Err(e) => {
                        let _ = req.respond(text(500, &e.to_string()));
                        return;
                    }
                };
                let fname = filename.unwrap_or_else(|| format!("{cid}.bin"));
                let total = data.len();
                let (status, body, content_range) =
                    match range.as_deref().and_then(|r| parse_range(r, total)) {
                        Some((a, b)) => (
                            206,
                            data[a..=b].to_vec(),
                            Some(format!("bytes {a}-{b}/{total}")),
                        ),
                        None => (200, data, None),
                    };
                let len = body.len();
                let mut resp = common(Response::new(
                    StatusCode(status),
                    vec![],
                    Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
                    Some(len),
                    None,
                ))
                .with_header(header("Content-Type", "application/vnd.ipld.raw"))
                .with_header(header("Content-Disposition", &disposition(&fname)))
                .with_header(header("Etag", &format!("\"{cid}.raw\"")))
                .with_header(header("Accept-Ranges", "bytes"));
                if let Some(cr) = content_range {
                    resp = resp.with_header(header("Content-Range", &cr));
                }
                let _ = req.respond(resp);
            }
            Format::Car => {
                let (dups, order) = match car_params(query, accept) {
                    Ok(p) => p,
                    Err(why) => {
                        let _ = req.respond(text(400, &why));
                        return;
                    }
                };
                let scope = match query
                    .iter()
                    .find(|(k, _)| k == "dag-scope")
                    .map(|(_, v)| v.as_str())
                {
                    None | Some("all") => Scope::All,
                    Some("entity") => Scope::Entity,
                    Some("block") => Scope::Block,
                    Some(other) => {
                        let _ = req.respond(text(400, &format!("unknown dag-scope `{other}`")));
                        return;
                    }
                };
                let bytes = match query.iter().find(|(k, _)| k == "entity-bytes") {
                    None => None,
                    Some((_, v)) => match parse_entity_bytes(v) {
                        Ok(r) => Some(r),
                        Err(why) => {
                            let _ = req.respond(text(400, &why));
                            return;
                        }
                    },
                };
                let dups_s = if dups { "y" } else { "n" };
                let etag = format!(
                    "W/\"{cid}.car.{scope:?}.{}.{dups_s}\"",
                    query
                        .iter()
                        .find(|(k, _)| k == "entity-bytes")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("")
                );
                let fname = filename.unwrap_or_else(|| format!("{cid}.car"));
                let store = self.store.clone();
                let (reader, writer) = match std::io::pipe() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = req.respond(text(500, &e.to_string()));
                        return;
                    }
                };
                let head = *req.method() == Method::Head;
                if !head {
                    std::thread::spawn(move || {
                        let w = BufWriter::with_capacity(1 << 18, writer);
                        let _ = write_car(&store, w, &root, &walked, &cid, scope, bytes, dups);
                    });
                } else {
                    drop(writer);
                }
                let resp = common(Response::new(
                    StatusCode(200),
                    vec![],
                    Box::new(reader) as Box<dyn Read + Send>,
                    None,
                    None,
                ))
                .with_header(header(
                    "Content-Type",
                    &format!("application/vnd.ipld.car; version=1; order={order}; dups={dups_s}"),
                ))
                .with_header(header("Content-Disposition", &disposition(&fname)))
                .with_header(header("Etag", &etag))
                .with_header(header("Accept-Ranges", "none"));
                let _ = req.respond(resp);
            }
            Format::IpnsRecord => {}
        }
    }
}

/// The first range of a `Range: bytes=…` header, clamped to `len`.
fn parse_range(h: &str, len: usize) -> Option<(usize, usize)> {
    let spec = h.strip_prefix("bytes=")?.split(',').next()?.trim();
    let (a, b) = spec.split_once('-')?;
    if len == 0 {
        return None;
    }
    let (start, end) = if a.is_empty() {
        let n: usize = b.parse().ok()?;
        (len.saturating_sub(n), len - 1)
    } else {
        let start: usize = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<usize>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

/// Write the CAR for a request: the blocks the path walked, then the
/// terminal entity by `scope`. Stops (leaving a truncated CAR the client
/// will notice) at the first block the store lacks.
#[allow(clippy::too_many_arguments)]
fn write_car<W: Write>(
    store: &BlockStore,
    out: W,
    root: &Cid,
    walked: &[Cid],
    terminal: &Cid,
    scope: Scope,
    bytes: Option<(i64, Option<i64>)>,
    dups: bool,
) -> std::io::Result<()> {
    let mut w = CarWriter::new(out, std::slice::from_ref(root))?;
    let mut seen = HashSet::new();
    let io_err = |e: GetError| std::io::Error::other(e.to_string());
    let mut emit = |w: &mut CarWriter<W>, cid: &Cid, data: &[u8]| -> std::io::Result<bool> {
        // Identity blocks are never written: their data is in the CID.
        if cid.hash().code() == IDENTITY {
            return Ok(false);
        }
        let first = seen.insert(*cid);
        if first || dups {
            w.write_block(cid, data)?;
        }
        Ok(first)
    };
    let load = |cid: &Cid| -> Result<Vec<u8>, GetError> {
        if cid.hash().code() == IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        store.get(cid)
    };
    for c in walked {
        let data = load(c).map_err(io_err)?;
        emit(&mut w, c, &data)?;
    }
    let data = load(terminal).map_err(io_err)?;
    match scope {
        Scope::Block => {
            emit(&mut w, terminal, &data)?;
        }
        Scope::All => {
            let mut stack = vec![(*terminal, Some(data))];
            while let Some((cid, data)) = stack.pop() {
                let data = match data {
                    Some(d) => d,
                    None => load(&cid).map_err(io_err)?,
                };
                let first = emit(&mut w, &cid, &data)?;
                if !first && !dups {
                    continue;
                }
                let children = links_of(&cid, &data).unwrap_or_default();
                stack.extend(children.into_iter().rev().map(|c| (c, None)));
            }
        }
        Scope::Entity => {
            let pb = (cid_codec(terminal) == Some(Codec::DagPb))
                .then(|| PbNode::decode(&data).ok())
                .flatten();
            let ufs = pb
                .as_ref()
                .and_then(|n| n.data.as_deref())
                .and_then(|d| Data::decode(d).ok());
            match (pb, ufs) {
                (Some(pb), Some(ufs))
                    if matches!(ufs.data_type, DataType::File | DataType::Raw) =>
                {
                    let size = ufs.filesize.unwrap_or_else(|| ufs.blocksizes.iter().sum());
                    let (from, to) = resolve_entity_bytes(bytes, size);
                    write_file_range(
                        &mut w,
                        &mut emit,
                        &load,
                        terminal,
                        data,
                        0,
                        from,
                        to,
                        Some((pb, ufs)),
                    )?;
                }
                (Some(pb), Some(ufs)) if ufs.data_type == DataType::HAMTShard => {
                    // The whole sharded directory: every shard, no entries.
                    emit(&mut w, terminal, &data)?;
                    let pad = crate::content::hamt::pad_len(ufs.fanout.unwrap_or(256));
                    let mut stack: Vec<Cid> = shard_children(&pb, pad);
                    stack.reverse();
                    while let Some(c) = stack.pop() {
                        let d = load(&c).map_err(io_err)?;
                        emit(&mut w, &c, &d)?;
                        if let Ok(n) = PbNode::decode(&d) {
                            let mut more = shard_children(&n, pad);
                            more.reverse();
                            stack.extend(more);
                        }
                    }
                }
                _ if cid_codec(terminal) == Some(Codec::Raw) => {
                    // A raw file: one block, whatever the range.
                    emit(&mut w, terminal, &data)?;
                }
                _ => {
                    emit(&mut w, terminal, &data)?;
                }
            }
        }
    }
    let mut out = w.finish()?;
    out.flush()
}

fn cid_codec(c: &Cid) -> Option<Codec> {
    Codec::from_code(c.codec())
}

/// Links of a HAMT shard that are sub-shards (name is the slot prefix only).
fn shard_children(pb: &PbNode, pad: usize) -> Vec<Cid> {
    pb.links
        .iter()
        .filter(|l| l.name.as_deref().is_some_and(|n| n.len() == pad))
        .map(|l| l.cid)
        .collect()
}

/// `entity-bytes` against a file of `size` bytes: an inclusive byte range
/// (`from > to` means nothing beyond the root).
fn resolve_entity_bytes(bytes: Option<(i64, Option<i64>)>, size: u64) -> (u64, i64) {
    let size_i = size as i64;
    let Some((from, to)) = bytes else {
        return (0, size_i - 1);
    };
    let from = if from < 0 {
        (size_i + from).max(0)
    } else {
        from
    };
    let to = match to {
        None => size_i - 1,
        Some(t) if t < 0 => size_i + t,
        Some(t) => t.min(size_i - 1),
    };
    (from as u64, to)
}

/// Writes a block into the CAR (unless it is a duplicate); true if first seen.
type Emit<'e, W> = dyn FnMut(&mut CarWriter<W>, &Cid, &[u8]) -> std::io::Result<bool> + 'e;

/// Emit the file node `cid` (starting at byte `offset` of the file) and the
/// children that hold bytes in `from..=to`, depth first.
#[allow(clippy::too_many_arguments)]
fn write_file_range<W: Write>(
    w: &mut CarWriter<W>,
    emit: &mut Emit<'_, W>,
    load: &dyn Fn(&Cid) -> Result<Vec<u8>, GetError>,
    cid: &Cid,
    data: Vec<u8>,
    offset: u64,
    from: u64,
    to: i64,
    decoded: Option<(PbNode, Data)>,
) -> std::io::Result<()> {
    emit(w, cid, &data)?;
    let Some((pb, ufs)) = decoded.or_else(|| {
        let pb = PbNode::decode(&data).ok()?;
        let ufs = Data::decode(pb.data.as_deref()?).ok()?;
        Some((pb, ufs))
    }) else {
        return Ok(());
    };
    let mut start = offset + ufs.data.as_ref().map_or(0, |d| d.len() as u64);
    for (link, size) in pb.links.iter().zip(ufs.blocksizes.iter()) {
        let end = start + size; // exclusive
        let overlaps = (to >= 0) && end > from && (start as i64) <= to && *size > 0;
        if overlaps {
            let d = load(&link.cid).map_err(|e| std::io::Error::other(e.to_string()))?;
            if cid_codec(&link.cid) == Some(Codec::DagPb) {
                write_file_range(w, emit, load, &link.cid, d, start, from, to, None)?;
            } else {
                emit(w, &link.cid, &d)?;
            }
        }
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_bytes() {
        assert_eq!(parse_entity_bytes("0:*").unwrap(), (0, None));
        assert_eq!(parse_entity_bytes("512:-256").unwrap(), (512, Some(-256)));
        assert!(parse_entity_bytes("5:1").is_err());
        assert!(parse_entity_bytes("x").is_err());
        assert_eq!(
            resolve_entity_bytes(Some((-9999, Some(-3))), 1026),
            (0, 1023)
        );
        assert_eq!(resolve_entity_bytes(Some((-5, None)), 1026), (1021, 1025));
        assert_eq!(resolve_entity_bytes(None, 10), (0, 9));
    }

    #[test]
    fn content_disposition() {
        assert_eq!(disposition("a.car"), "attachment; filename=\"a.car\"");
        assert_eq!(
            disposition("testтест.ipns-record"),
            "attachment; filename=\"test____.ipns-record\"; filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82.ipns-record"
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-3", 10), Some((0, 3)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=-2", 10), Some((8, 9)));
        assert_eq!(parse_range("bytes=1-2,4-5", 10), Some((1, 2)));
        assert_eq!(parse_range("bytes=20-30", 10), None);
    }

    #[test]
    fn formats() {
        let q = query_pairs("format=car");
        assert_eq!(
            pick_format(&q, "application/vnd.ipld.raw"),
            Some(Format::Car)
        );
        assert_eq!(
            pick_format(&[], "application/vnd.ipld.raw"),
            Some(Format::Raw)
        );
        assert_eq!(
            car_params(
                &query_pairs("car-dups=y"),
                "application/vnd.ipld.car; dups=n"
            )
            .unwrap(),
            (true, "dfs".to_owned())
        );
    }
}

//! The trustless gateway (ipfs/specs `http-gateways/trustless-gateway.md`):
//! blocks (`?format=raw`), CARs (`?format=car` with `dag-scope`,
//! `entity-bytes`, `order=dfs`, `dups`) and IPNS records
//! (`?format=ipns-record`), for clients that verify what they get.
//!
//! A CAR is streamed from the store one block at a time. When a block
//! cannot be produced mid-stream (missing, corrupt, undecodable), the
//! response is aborted: the connection drops without the final chunk, so
//! the client sees an incomplete answer, never a short CAR ending in a
//! clean 200 that a cache would keep as complete.

use std::collections::HashSet;
use std::io::{self, Write};
use std::time::Duration;

use crate::content::car::CarWriter;
use crate::content::cid::{Codec, IDENTITY};
use crate::content::dagpb::PbNode;
use crate::content::unixfs::{Data, DataType};
use crate::content::{BlockGet, Cid, GetError, links_of, reader};
use crate::sources::store::BlockStore;

use super::Gateway;
use super::http::{self, Ranges, Req, Resp, Response};

/// `Cache-Control` of a complete answer under `/ipfs/` (content addressed:
/// it can never change). Only ever on a response that is whole: error
/// answers are `no-store`, and a stream that fails is aborted, which HTTP
/// caches must not keep.
pub const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Car,
    IpnsRecord,
}

/// The trustless response format: `format=` wins over `Accept` (IPIP-523).
/// `None` when the request asks for none of them (a path-gateway request).
pub fn pick_format(req: &Req) -> Option<Format> {
    if let Some(f) = req.q("format") {
        return match f {
            "raw" => Some(Format::Raw),
            "car" => Some(Format::Car),
            "ipns-record" => Some(Format::IpnsRecord),
            _ => None,
        };
    }
    for part in req.header("accept").split(',') {
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

/// The CAR parameters of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Block,
    Entity,
    All,
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
    gw: &'a Gateway,
    log: std::cell::RefCell<Vec<Cid>>,
}

impl BlockGet for Recording<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        self.log.borrow_mut().push(*cid);
        self.gw.get(cid)
    }
}

/// Why a path did not resolve.
pub enum PathError {
    NotFound(String),
    Missing(Cid),
    Bad(String),
}

impl PathError {
    pub fn response(self) -> Response {
        match self {
            PathError::NotFound(seg) => http::text(404, &format!("no link named `{seg}`")),
            PathError::Missing(c) => http::text(404, &format!("block `{c}` is not in this store")),
            PathError::Bad(why) => http::text(400, &why),
        }
    }
}

/// A path resolved: the blocks walked (root first, terminal excluded), the
/// logical path (for `X-Ipfs-Roots`) and the terminal CID.
pub struct Resolved {
    pub walked: Vec<Cid>,
    pub logical: Vec<Cid>,
    pub cid: Cid,
}

impl Resolved {
    pub fn roots_header(&self) -> String {
        self.logical
            .iter()
            .map(Cid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Resolve `root/segments` through dag-pb directories (HAMT included) and
/// DAG-CBOR documents.
pub fn resolve(gw: &Gateway, root: &Cid, segs: &[String]) -> Result<Resolved, PathError> {
    let mut walked = Vec::new();
    let mut logical = vec![*root];
    let mut cur = *root;
    let mut i = 0;
    while i < segs.len() {
        match Codec::from_code(cur.codec()) {
            Some(Codec::DagPb) => {
                let rec = Recording {
                    gw,
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
                let bytes = gw.get(&cur).map_err(|e| match e {
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
    Ok(Resolved {
        walked,
        logical,
        cid: cur,
    })
}

/// `/ipns/{name}?format=ipns-record`: the best verified record held.
pub fn ipns_record(gw: &Gateway, req: &Req, name: &str) -> Response {
    let name = super::routing::normalise_name(name);
    match gw.records.best(&name) {
        Some((bytes, rec)) => {
            let ttl = rec.ttl.as_secs().clamp(1, 31_536_000);
            let fname = req
                .q("filename")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{name}.ipns-record"));
            Resp::new(200)
                .h("Content-Type", "application/vnd.ipfs.ipns-record")
                .h(
                    "Content-Disposition",
                    &http::disposition("attachment", &fname),
                )
                .h("Cache-Control", &format!("public, max-age={ttl}"))
                .h("X-Content-Type-Options", "nosniff")
                .h("Vary", "Accept")
                .bytes(bytes)
        }
        None => http::text(404, &format!("no IPNS record for `{name}`")),
    }
}

/// `Cache-Control` for an answer under `/ipfs/` (`ttl` is `None`) or under
/// `/ipns/` (the record's TTL).
pub fn cache_control(ttl: Option<Duration>) -> String {
    match ttl {
        None => IMMUTABLE.to_owned(),
        Some(t) => format!("public, max-age={}", t.as_secs().clamp(1, 31_536_000)),
    }
}

/// `/ipfs/{cid}[/path]` (or `/ipns/…`) as a raw block or a CAR.
pub fn ipfs(
    gw: &Gateway,
    req: &Req,
    root: Cid,
    rest: &[String],
    format: Format,
    ttl: Option<Duration>,
) -> Response {
    if format == Format::IpnsRecord {
        return http::text(400, "format=ipns-record is for /ipns/ paths");
    }
    let res = match resolve(gw, &root, rest) {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let cid = res.cid;
    let filename = req.q("filename").map(str::to_owned);
    let common = |r: Resp| {
        r.h("X-Ipfs-Path", &req.path)
            .h("X-Ipfs-Roots", &res.roots_header())
            .h("X-Content-Type-Options", "nosniff")
            .h("Vary", "Accept")
    };
    match format {
        Format::Raw => {
            // A big block is read only once budget can hold it, and the
            // budget is given back when the answer has been written.
            let permit = match gw.store.size(&cid) {
                Some(n) if n > http::SMALL_BLOCK && !req.is_head() => {
                    match http::reserve(&gw.budget, n) {
                        Some(p) => Some(p),
                        None => return http::text(503, "busy: try again shortly"),
                    }
                }
                _ => None,
            };
            let data = match gw.get(&cid) {
                Ok(d) => d,
                Err(GetError::Missing(_)) => {
                    return http::text(404, &format!("block `{cid}` is not in this store"));
                }
                Err(e) => return http::text(500, &e.to_string()),
            };
            let fname = filename.unwrap_or_else(|| format!("{cid}.bin"));
            let etag = format!("\"{cid}.raw\"");
            if req.header("if-none-match") == etag {
                return common(Resp::new(304))
                    .h("Etag", &etag)
                    .h("Cache-Control", &cache_control(ttl))
                    .body(http::empty());
            }
            let total = data.len() as u64;
            let base = |status| {
                common(Resp::new(status))
                    .h("Cache-Control", &cache_control(ttl))
                    .h(
                        "Content-Disposition",
                        &http::disposition("attachment", &fname),
                    )
                    .h("Etag", &etag)
                    .h("Accept-Ranges", "bytes")
            };
            match http::parse_ranges(
                req.headers.get("range").and_then(|v| v.to_str().ok()),
                total,
            ) {
                Ranges::Whole => {
                    let r = base(200)
                        .h("Content-Type", "application/vnd.ipld.raw")
                        .h("Content-Length", &data.len().to_string());
                    match permit {
                        Some(p) => r.body(http::held(data.into(), p)),
                        None => r.body(http::full(data)),
                    }
                }
                Ranges::Unsatisfiable => http::unsatisfiable(total),
                Ranges::Parts(p) if p.len() == 1 => {
                    let (a, b) = p[0];
                    base(206)
                        .h("Content-Type", "application/vnd.ipld.raw")
                        .h("Content-Range", &format!("bytes {a}-{b}/{total}"))
                        .bytes(data[a as usize..=b as usize].to_vec())
                }
                Ranges::Parts(p) => {
                    let (ct, body) = http::multipart(&data, &p, "application/vnd.ipld.raw");
                    base(206).h("Content-Type", &ct).bytes(body)
                }
            }
        }
        Format::Car => {
            let (dups, order) = match car_params(&req.query, req.header("accept")) {
                Ok(p) => p,
                Err(why) => return http::text(400, &why),
            };
            let scope = match req.q("dag-scope") {
                None | Some("all") => Scope::All,
                Some("entity") => Scope::Entity,
                Some("block") => Scope::Block,
                Some(other) => return http::text(400, &format!("unknown dag-scope `{other}`")),
            };
            let bytes = match req.q("entity-bytes") {
                None => None,
                Some(v) => match parse_entity_bytes(v) {
                    Ok(r) => Some(r),
                    Err(why) => return http::text(400, &why),
                },
            };
            // The terminal block must be here before we promise a 200; a
            // block missing further down aborts the stream instead.
            if !gw.has(&cid) {
                return http::text(404, &format!("block `{cid}` is not in this store"));
            }
            let dups_s = if dups { "y" } else { "n" };
            let etag = format!(
                "W/\"{cid}.car.{scope:?}.{}.{dups_s}\"",
                req.q("entity-bytes").unwrap_or("")
            );
            let fname = filename.unwrap_or_else(|| format!("{cid}.car"));
            let resp = common(Resp::new(200))
                .h("Cache-Control", &cache_control(ttl))
                .h(
                    "Content-Type",
                    &format!("application/vnd.ipld.car; version=1; order={order}; dups={dups_s}"),
                )
                .h(
                    "Content-Disposition",
                    &http::disposition("attachment", &fname),
                )
                .h("Etag", &etag)
                .h("Accept-Ranges", "none");
            if req.is_head() {
                return resp.body(http::empty());
            }
            let store = gw.store.clone();
            let walked = res.walked.clone();
            resp.body(http::stream(&gw.streams, move |w| {
                write_car(&store, w, &root, &walked, &cid, scope, bytes, dups)
            }))
        }
        Format::IpnsRecord => http::text(400, "format=ipns-record is for /ipns/ paths"),
    }
}

fn io_err(e: GetError) -> io::Error {
    io::Error::other(e.to_string())
}

fn load(store: &BlockStore, cid: &Cid) -> Result<Vec<u8>, GetError> {
    if cid.hash().code() == IDENTITY {
        return Ok(cid.hash().digest().to_vec());
    }
    store.get(cid)
}

/// Write the CAR for a request: the blocks the path walked, then the
/// terminal entity by `scope`. Fails at the first block the store lacks or
/// whose links cannot be read, which aborts the response.
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
) -> io::Result<()> {
    let mut w = CarWriter::new(out, std::slice::from_ref(root))?;
    let mut seen = HashSet::new();
    let mut emit = |w: &mut CarWriter<W>, cid: &Cid, data: &[u8]| -> io::Result<bool> {
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
    let load = |cid: &Cid| load(store, cid);
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
                // A node whose links we cannot read would silently end the
                // DAG here: fail instead, so the client is not told "all".
                let children = links_of(&cid, &data).map_err(|e| {
                    io::Error::other(format!("cannot read the links of `{cid}`: {e}"))
                })?;
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
                        let n = PbNode::decode(&d).map_err(|e| {
                            io::Error::other(format!("cannot read HAMT shard `{c}`: {e}"))
                        })?;
                        let mut more = shard_children(&n, pad);
                        more.reverse();
                        stack.extend(more);
                    }
                }
                _ => {
                    // A raw file (one block, whatever the range), a plain
                    // directory, a symlink or another codec: the block.
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
type Emit<'e, W> = dyn FnMut(&mut CarWriter<W>, &Cid, &[u8]) -> io::Result<bool> + 'e;

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
) -> io::Result<()> {
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
            let d = load(&link.cid).map_err(io_err)?;
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
    fn car_parameters() {
        assert_eq!(
            car_params(
                &http::query_pairs("car-dups=y"),
                "application/vnd.ipld.car; dups=n"
            )
            .unwrap(),
            (true, "dfs".to_owned())
        );
        assert!(car_params(&[], "application/vnd.ipld.car; order=bfs").is_err());
    }
}

//! The path gateway (ipfs/specs `http-gateways/path-gateway.md`) for
//! browsers and curl: `GET /ipfs/{cid}[/path]` and `/ipns/{name}[/path]`
//! when no trustless format is asked.
//!
//! - A UnixFS file: its bytes, `Content-Type` from the name's extension or
//!   a sniff of its first bytes, `ETag: "{cid}"`, `Range` (206, multi-range
//!   as `multipart/byteranges` for small files, 416), streamed from the
//!   store; a missing block mid-file aborts the response.
//! - A directory: a redirect to the URL with a trailing `/`, then its
//!   `index.html` if it has one, else an HTML listing.
//! - `?format=tar` (or `Accept: application/x-tar`): the entity as a tar.
//! - `?format=dag-json|dag-cbor|json|cbor` (or their `Accept` types): the
//!   terminal block converted (dag-pb and DAG-CBOR to DAG-JSON and back).
//! - `Cache-Control`: immutable under `/ipfs/`, the record's TTL under
//!   `/ipns/`; listings (which depend on this server's HTML) for a week.
//!
//! Non-goals: subdomain and DNSLink hosts, `_redirects`, HTML previews of
//! DAG-CBOR beyond a `<pre>` of its DAG-JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use ipld_core::ipld::Ipld;

use crate::content::cid::{Codec, IDENTITY};
use crate::content::dagpb::PbNode;
use crate::content::reader::{self, MAX_DEPTH, NodeKind};
use crate::content::unixfs::{Data, DataType};
use crate::content::{Cid, GetError};
use crate::sources::store::BlockStore;

use super::Gateway;
use super::http::{self, Ranges, Req, Resp, Response};
use super::trustless::{self, Resolved, cache_control};

/// A file this small (or smaller) may be cut into several ranges in one
/// `multipart/byteranges` answer, built in memory; a larger one answers a
/// multi-range request with its first range only.
const MAX_MULTIPART_FILE: u64 = 16 * 1024 * 1024;
/// Bytes read from the start of a file to guess its type (the WHATWG MIME
/// sniffing algorithm reads 512).
const SNIFF_BYTES: u64 = 512;
/// Entries listed on one directory page: a HAMT of a million entries would
/// otherwise be one 100 MiB HTML page built in memory.
const MAX_LISTING: usize = 10_000;

/// What the client asked of the path gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Files as they are, directories as HTML.
    Web,
    Tar,
    DagJson,
    DagCbor,
}

// The error is the answer to send, once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn want(req: &Req) -> Result<Want, Response> {
    if let Some(f) = req.q("format") {
        return match f {
            "tar" => Ok(Want::Tar),
            "dag-json" | "json" => Ok(Want::DagJson),
            "dag-cbor" | "cbor" => Ok(Want::DagCbor),
            other => Err(http::text(
                400,
                &format!(
                    "unknown format `{other}` (raw, car, tar, dag-json, dag-cbor, json, cbor)"
                ),
            )),
        };
    }
    for part in req.header("accept").split(',') {
        match part.split(';').next().unwrap_or("").trim() {
            "application/x-tar" => return Ok(Want::Tar),
            "application/vnd.ipld.dag-json" | "application/json" => return Ok(Want::DagJson),
            "application/vnd.ipld.dag-cbor" | "application/cbor" => return Ok(Want::DagCbor),
            _ => {}
        }
    }
    Ok(Want::Web)
}

pub fn ipfs(
    gw: &Gateway,
    req: &Req,
    root: Cid,
    rest: &[String],
    ttl: Option<Duration>,
) -> Response {
    let want = match want(req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let res = match trustless::resolve(gw, &root, rest) {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let common = |status: u16| {
        Resp::new(status)
            .h("X-Ipfs-Path", &req.path)
            .h("X-Ipfs-Roots", &res.roots_header())
            .h("Vary", "Accept")
    };
    if !gw.has(&res.cid) {
        return http::text(404, &format!("block `{}` is not in this store", res.cid));
    }
    match want {
        Want::Tar => return tar(gw, req, &res, ttl, common(200)),
        Want::DagJson | Want::DagCbor => return codec(gw, req, &res, want, ttl, common(200)),
        Want::Web => {}
    }
    let codec = Codec::from_code(res.cid.codec());
    if matches!(codec, Some(Codec::DagCbor)) || res.cid.codec() == DAG_JSON {
        return codec_page(gw, req, &res, ttl, common(200));
    }
    let stat = match reader::stat(gw, &res.cid) {
        Ok(s) => s,
        Err(reader::ReadError::Get(GetError::Missing(c))) => {
            return http::text(404, &format!("block `{c}` is not in this store"));
        }
        Err(e) => return http::text(502, &format!("cannot read `{}`: {e}", res.cid)),
    };
    let name = rest.last().cloned().unwrap_or_default();
    match stat.kind {
        NodeKind::File | NodeKind::Raw => {
            file(gw, req, &res.cid, &name, stat.size, ttl, common, false)
        }
        NodeKind::Symlink => match reader::read_symlink(gw, &res.cid) {
            Ok(target) => common(200)
                .h("Content-Type", "text/plain; charset=utf-8")
                .h("Cache-Control", &cache_control(ttl))
                .h("Etag", &format!("\"{}\"", res.cid))
                .bytes(target),
            Err(e) => http::text(502, &format!("cannot read symlink `{}`: {e}", res.cid)),
        },
        NodeKind::Directory | NodeKind::HamtDirectory => {
            if !req.path.ends_with('/') {
                // Relative links in a page (and the listing's) need the slash.
                let mut to = format!("{}/", req.path);
                let q: Vec<String> = req
                    .query
                    .iter()
                    .map(|(k, v)| {
                        format!("{}={}", http::percent_encode(k), http::percent_encode(v))
                    })
                    .collect();
                if !q.is_empty() {
                    to = format!("{to}?{}", q.join("&"));
                }
                return common(301)
                    .h("Location", &to)
                    .h("Cache-Control", &cache_control(ttl))
                    .bytes("");
            }
            match reader::lookup(gw, &res.cid, "index.html") {
                Ok(Some(e)) => {
                    if let Ok(s) = reader::stat(gw, &e.cid)
                        && s.kind.is_file()
                    {
                        let roots = format!("{},{}", res.roots_header(), e.cid);
                        let common = |status: u16| {
                            Resp::new(status)
                                .h("X-Ipfs-Path", &req.path)
                                .h("X-Ipfs-Roots", &roots)
                                .h("Vary", "Accept")
                        };
                        return file(gw, req, &e.cid, "index.html", s.size, ttl, common, true);
                    }
                }
                Ok(None) => {}
                Err(e) => return http::text(502, &format!("cannot read `{}`: {e}", res.cid)),
            }
            listing(gw, req, &res, ttl, common(200))
        }
    }
}

const DAG_JSON: u64 = 0x0129;

/// The type of a file by its name's extension.
fn type_by_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" | "toml" | "rs" | "sh" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "car" => "application/vnd.ipld.car",
        "tar" => "application/x-tar",
        "gz" | "tgz" => "application/gzip",
        "zip" => "application/zip",
        _ => return None,
    })
}

/// The type of a file by its first bytes: a few magic numbers, then text if
/// it is UTF-8 with no control characters other than whitespace.
fn sniff(head: &[u8]) -> &'static str {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if starts(b"GIF8") {
        "image/gif"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else if starts(b"\x1f\x8b") {
        "application/gzip"
    } else if starts(b"\0asm") {
        "application/wasm"
    } else {
        let lower: Vec<u8> = head.iter().take(64).map(u8::to_ascii_lowercase).collect();
        let text = match std::str::from_utf8(head) {
            Ok(_) => true,
            // A multi-byte character cut at the end of the sniffed bytes.
            Err(e) => e.error_len().is_none(),
        } && !head
            .iter()
            .any(|&b| b < 0x20 && !b"\t\n\r\x0c".contains(&b));
        if text && (lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html")) {
            "text/html; charset=utf-8"
        } else if text {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        }
    }
}

/// Answer a UnixFS file of `size` bytes.
#[allow(clippy::too_many_arguments)]
fn file<'r>(
    gw: &Gateway,
    req: &Req,
    cid: &Cid,
    name: &str,
    size: u64,
    ttl: Option<Duration>,
    common: impl Fn(u16) -> Resp + 'r,
    index: bool,
) -> Response {
    let etag = format!("\"{cid}\"");
    if req.header("if-none-match") == etag || req.header("if-none-match") == "*" {
        return common(304)
            .h("Etag", &etag)
            .h("Cache-Control", &cache_control(ttl))
            .body(http::empty());
    }
    let ctype = match type_by_name(name).or(index.then_some("text/html; charset=utf-8")) {
        Some(t) => t,
        None => {
            let mut head = Vec::new();
            let end = size.min(SNIFF_BYTES);
            if end > 0 && write_range(&gw.store, cid, 0, 0, end - 1, &mut head, 0).is_err() {
                return http::text(502, &format!("cannot read file `{cid}`"));
            }
            sniff(&head)
        }
    };
    let base = |status: u16| {
        let mut r = common(status)
            .h("Etag", &etag)
            .h("Cache-Control", &cache_control(ttl))
            .h("Accept-Ranges", "bytes")
            .h("X-Content-Type-Options", "nosniff");
        if let Some(f) = req.q("filename") {
            let kind = if req.q("download") == Some("true") {
                "attachment"
            } else {
                "inline"
            };
            r = r.h("Content-Disposition", &http::disposition(kind, f));
        }
        r
    };
    let range = req.headers.get("range").and_then(|v| v.to_str().ok());
    let (status, from, to, ctype_h, content_range) = match http::parse_ranges(range, size) {
        Ranges::Whole => (200, 0, size, ctype.to_owned(), None),
        Ranges::Unsatisfiable => return http::unsatisfiable(size),
        Ranges::Parts(p) if p.len() > 1 && size <= MAX_MULTIPART_FILE => {
            let mut data = Vec::with_capacity(size as usize);
            if size > 0 && write_range(&gw.store, cid, 0, 0, size - 1, &mut data, 0).is_err() {
                return http::text(502, &format!("cannot read file `{cid}`"));
            }
            let (ct, body) = http::multipart(&data, &p, ctype);
            return base(206).h("Content-Type", &ct).bytes(body);
        }
        Ranges::Parts(p) => {
            let (a, b) = p[0];
            (
                206,
                a,
                b + 1,
                ctype.to_owned(),
                Some(format!("bytes {a}-{b}/{size}")),
            )
        }
    };
    let mut r = base(status)
        .h("Content-Type", &ctype_h)
        .h("Content-Length", &(to - from).to_string());
    if let Some(cr) = content_range {
        r = r.h("Content-Range", &cr);
    }
    if req.is_head() || to == from {
        return r.body(http::empty());
    }
    let (store, cid) = (gw.store.clone(), *cid);
    r.body(http::stream(&gw.streams, move |w| {
        write_range(&store, &cid, 0, from, to - 1, w, 0)
    }))
}

fn load(store: &BlockStore, cid: &Cid) -> Result<Vec<u8>, GetError> {
    if cid.hash().code() == IDENTITY {
        return Ok(cid.hash().digest().to_vec());
    }
    store.get(cid)
}

/// Write bytes `from..=to` of the file node `cid`, which starts at byte
/// `offset` of the file, skipping the children outside the range by their
/// recorded sizes (so a range near the end reads only the blocks it needs).
fn write_range(
    store: &BlockStore,
    cid: &Cid,
    offset: u64,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!("file `{cid}` is nested too deep")));
    }
    let data = load(store, cid).map_err(|e| io::Error::other(e.to_string()))?;
    let mut put = |start: u64, bytes: &[u8]| -> io::Result<()> {
        let end = start + bytes.len() as u64; // exclusive
        if end <= from || start > to {
            return Ok(());
        }
        let a = from.saturating_sub(start) as usize;
        let b = ((to + 1).min(end) - start) as usize;
        out.write_all(&bytes[a..b])
    };
    if Codec::from_code(cid.codec()) != Some(Codec::DagPb) {
        return put(offset, &data);
    }
    let pb = PbNode::decode(&data).map_err(|e| io::Error::other(format!("`{cid}`: {e}")))?;
    let ufs = Data::decode(pb.data.as_deref().unwrap_or_default())
        .map_err(|e| io::Error::other(format!("`{cid}`: {e}")))?;
    if !matches!(ufs.data_type, DataType::File | DataType::Raw) {
        return Err(io::Error::other(format!("`{cid}` is not a file")));
    }
    let inline = ufs.data.as_deref().unwrap_or_default();
    put(offset, inline)?;
    let mut start = offset + inline.len() as u64;
    for (link, size) in pb.links.iter().zip(ufs.blocksizes.iter()) {
        let end = start + size;
        if end > from && start <= to && *size > 0 {
            write_range(store, &link.cid, start, from, to, out, depth + 1)?;
        }
        start = end;
        if start > to {
            break;
        }
    }
    Ok(())
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A human size: `1.5 MiB`.
fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The HTML listing of a directory.
fn listing(gw: &Gateway, req: &Req, res: &Resolved, ttl: Option<Duration>, resp: Resp) -> Response {
    let entries = match reader::list_dir(gw, &res.cid) {
        Ok(e) => e,
        Err(e) => return http::text(502, &format!("cannot list `{}`: {e}", res.cid)),
    };
    let title = html_escape(&http::percent_decode(&req.path));
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em}}\
         .cid{{font-family:monospace;color:#666}}</style></head><body>\n\
         <h1>Index of {title}</h1>\n<p class=\"cid\">{}</p>\n<table>\n",
        res.cid
    );
    if req.segs.len() > 2 {
        h.push_str("<tr><td><a href=\"..\">..</a></td><td></td><td></td></tr>\n");
    }
    for e in entries.iter().take(MAX_LISTING) {
        let name = html_escape(&e.name);
        let href = http::percent_encode(&e.name);
        let size = e.tsize.map(human).unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td><a href=\"{href}\">{name}</a></td><td class=\"cid\"><a href=\"/ipfs/{cid}?filename={href}\">{cid}</a></td><td>{size}</td></tr>",
            cid = e.cid
        );
    }
    if entries.len() > MAX_LISTING {
        let _ = writeln!(
            h,
            "<tr><td colspan=3>… and {} more (listing stops at {MAX_LISTING})</td></tr>",
            entries.len() - MAX_LISTING
        );
    }
    h.push_str("</table>\n</body></html>\n");
    // Generated HTML changes with this server's version: not immutable.
    let cc = match ttl {
        None => "public, max-age=604800, stale-while-revalidate=2678400".to_owned(),
        Some(_) => cache_control(ttl),
    };
    resp.h("Content-Type", "text/html; charset=utf-8")
        .h("Cache-Control", &cc)
        .h("Etag", &format!("\"DirIndex-ipkg1_CID-{}\"", res.cid))
        .bytes(h)
}

/// `?format=tar`: the entity (a file, or a directory and all beneath it).
fn tar(gw: &Gateway, req: &Req, res: &Resolved, ttl: Option<Duration>, resp: Resp) -> Response {
    let cid = res.cid;
    let resp = resp
        .h("Content-Type", "application/x-tar")
        .h("Cache-Control", &cache_control(ttl))
        .h("Etag", &format!("W/\"{cid}.x-tar\""))
        .h("X-Content-Type-Options", "nosniff")
        .h(
            "Content-Disposition",
            &http::disposition(
                "attachment",
                req.q("filename").unwrap_or(&format!("{cid}.tar")),
            ),
        );
    if req.is_head() {
        return resp.body(http::empty());
    }
    let store = gw.store.clone();
    resp.body(http::stream(&gw.streams, move |w| {
        let mut b = ::tar::Builder::new(w);
        b.mode(::tar::HeaderMode::Deterministic);
        tar_entry(&store, &mut b, &cid, cid.to_string(), 0)?;
        b.into_inner()?;
        Ok(())
    }))
}

struct StoreGet<'a>(&'a BlockStore);

impl crate::content::BlockGet for StoreGet<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, GetError> {
        load(self.0, cid)
    }
}

fn tar_entry<W: Write>(
    store: &BlockStore,
    b: &mut ::tar::Builder<W>,
    cid: &Cid,
    path: String,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!("`{cid}` is nested too deep")));
    }
    let get = StoreGet(store);
    let other = |e: reader::ReadError| io::Error::other(e.to_string());
    let stat = reader::stat(&get, cid).map_err(other)?;
    let mut h = ::tar::Header::new_gnu();
    h.set_mtime(0);
    match stat.kind {
        NodeKind::File | NodeKind::Raw => {
            h.set_entry_type(::tar::EntryType::Regular);
            h.set_size(stat.size);
            h.set_mode(stat.mode.unwrap_or(0o644) & 0o7777);
            let r = reader::FileReader::new(get, cid).map_err(other)?;
            b.append_data(&mut h, &path, r)
        }
        NodeKind::Symlink => {
            let target = reader::read_symlink(&get, cid).map_err(other)?;
            h.set_entry_type(::tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, &path, target)
        }
        NodeKind::Directory | NodeKind::HamtDirectory => {
            h.set_entry_type(::tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(stat.mode.unwrap_or(0o755) & 0o7777);
            b.append_data(&mut h, format!("{path}/"), io::empty())?;
            for e in reader::list_dir(&get, cid).map_err(other)? {
                tar_entry(store, b, &e.cid, format!("{path}/{}", e.name), depth + 1)?;
            }
            Ok(())
        }
    }
}

/// The terminal block as an IPLD value (dag-pb in its DAG-JSON form).
fn to_ipld(cid: &Cid, data: &[u8]) -> Result<Ipld, String> {
    match Codec::from_code(cid.codec()) {
        Some(Codec::DagCbor) => serde_ipld_dagcbor::from_slice(data).map_err(|e| e.to_string()),
        Some(Codec::DagPb) => {
            let pb = PbNode::decode(data).map_err(|e| e.to_string())?;
            let mut m = BTreeMap::new();
            if let Some(d) = pb.data {
                m.insert("Data".to_owned(), Ipld::Bytes(d));
            }
            let links = pb
                .links
                .into_iter()
                .map(|l| {
                    let mut lm = BTreeMap::new();
                    lm.insert("Hash".to_owned(), Ipld::Link(l.cid));
                    if let Some(n) = l.name {
                        lm.insert("Name".to_owned(), Ipld::String(n));
                    }
                    if let Some(t) = l.tsize {
                        lm.insert("Tsize".to_owned(), Ipld::Integer(t.into()));
                    }
                    Ipld::Map(lm)
                })
                .collect();
            m.insert("Links".to_owned(), Ipld::List(links));
            Ok(Ipld::Map(m))
        }
        Some(Codec::Raw) => Ok(Ipld::Bytes(data.to_vec())),
        _ if cid.codec() == DAG_JSON => Err("DAG-JSON is served as it is, not converted".into()),
        _ => Err(format!("codec 0x{:x} cannot be converted", cid.codec())),
    }
}

/// DAG-JSON (ipfs/specs `codecs/dag-json`): links as `{"/": cid}`, bytes as
/// `{"/": {"bytes": base64}}`, map keys in byte order, no whitespace.
pub fn dag_json(v: &Ipld, out: &mut String) {
    match v {
        Ipld::Null => out.push_str("null"),
        Ipld::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Ipld::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Ipld::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f:?}");
        }
        Ipld::Float(_) => out.push_str("null"),
        Ipld::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
        Ipld::Bytes(b) => {
            let enc = multibase::Base::Base64.encode(b);
            let _ = write!(out, "{{\"/\":{{\"bytes\":\"{enc}\"}}}}");
        }
        Ipld::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                dag_json(x, out);
            }
            out.push(']');
        }
        Ipld::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                dag_json(x, out);
            }
            out.push('}');
        }
        Ipld::Link(c) => {
            let _ = write!(out, "{{\"/\":\"{c}\"}}");
        }
    }
}

/// `?format=dag-json|dag-cbor`: the terminal block converted.
fn codec(
    gw: &Gateway,
    req: &Req,
    res: &Resolved,
    want: Want,
    ttl: Option<Duration>,
    resp: Resp,
) -> Response {
    let cid = res.cid;
    let data = match gw.get(&cid) {
        Ok(d) => d,
        Err(e) => return http::text(404, &e.to_string()),
    };
    let (ctype, ext, body) = match want {
        Want::DagJson if cid.codec() == DAG_JSON => ("application/vnd.ipld.dag-json", "json", data),
        Want::DagCbor if cid.codec() == Codec::DagCbor.code() => {
            ("application/vnd.ipld.dag-cbor", "cbor", data)
        }
        _ => {
            let v = match to_ipld(&cid, &data) {
                Ok(v) => v,
                Err(e) => {
                    return http::text(406, &format!("`{cid}` cannot be shown as {want:?}: {e}"));
                }
            };
            if want == Want::DagJson {
                let mut s = String::new();
                dag_json(&v, &mut s);
                ("application/vnd.ipld.dag-json", "json", s.into_bytes())
            } else {
                match serde_ipld_dagcbor::to_vec(&v) {
                    Ok(b) => ("application/vnd.ipld.dag-cbor", "cbor", b),
                    Err(e) => return http::text(500, &e.to_string()),
                }
            }
        }
    };
    let ctype = match req.q("format") {
        Some("json") => "application/json",
        Some("cbor") => "application/cbor",
        _ => ctype,
    };
    resp.h("Content-Type", ctype)
        .h("Cache-Control", &cache_control(ttl))
        .h(
            "Etag",
            &format!("\"{cid}.{}\"", ctype.rsplit('/').next().unwrap_or(ext)),
        )
        .h("X-Content-Type-Options", "nosniff")
        .h(
            "Content-Disposition",
            &http::disposition(
                "inline",
                req.q("filename").unwrap_or(&format!("{cid}.{ext}")),
            ),
        )
        .bytes(body)
}

/// A DAG-CBOR or DAG-JSON block asked for without a format: an HTML page of
/// its DAG-JSON for browsers, else the block as it is with its own type.
fn codec_page(
    gw: &Gateway,
    req: &Req,
    res: &Resolved,
    ttl: Option<Duration>,
    resp: Resp,
) -> Response {
    let cid = res.cid;
    if !req.header("accept").contains("text/html") {
        let want = if cid.codec() == DAG_JSON {
            Want::DagJson
        } else {
            Want::DagCbor
        };
        return codec(gw, req, res, want, ttl, resp);
    }
    let data = match gw.get(&cid) {
        Ok(d) => d,
        Err(e) => return http::text(404, &e.to_string()),
    };
    let json = if cid.codec() == DAG_JSON {
        String::from_utf8_lossy(&data).into_owned()
    } else {
        match to_ipld(&cid, &data) {
            Ok(v) => {
                let mut s = String::new();
                dag_json(&v, &mut s);
                s
            }
            Err(e) => return http::text(502, &format!("cannot decode `{cid}`: {e}")),
        }
    };
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{cid}</title></head><body>\n\
         <h1>{cid}</h1>\n<p><a href=\"?format=dag-json\">DAG-JSON</a> · <a href=\"?format=dag-cbor\">DAG-CBOR</a> · <a href=\"?format=car\">CAR</a></p>\n<pre>{}</pre>\n</body></html>\n",
        html_escape(&json)
    );
    resp.h("Content-Type", "text/html; charset=utf-8")
        .h("Cache-Control", "public, max-age=604800")
        .h("Etag", &format!("\"DagIndex-ipkg1_CID-{cid}\""))
        .bytes(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"hello\n"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"<!DOCTYPE html><p>"), "text/html; charset=utf-8");
        assert_eq!(sniff(b"\x7fELF\x02\x01"), "application/octet-stream");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(type_by_name("a/B.HTML"), Some("text/html; charset=utf-8"));
        assert_eq!(type_by_name("noext"), None);
    }

    #[test]
    fn dag_json_form() {
        let mut m = BTreeMap::new();
        m.insert("b".to_owned(), Ipld::Bytes(vec![1, 2, 3]));
        m.insert(
            "a".to_owned(),
            Ipld::List(vec![Ipld::Integer(-1), Ipld::Null]),
        );
        let mut s = String::new();
        dag_json(&Ipld::Map(m), &mut s);
        assert_eq!(s, r#"{"a":[-1,null],"b":{"/":{"bytes":"AQID"}}}"#);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            html_escape("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(10), "10 B");
    }
}

//! Delegated routing over HTTP (ipfs/specs `routing/http-routing-v1.md`,
//! IPIP-337 and IPIP-417) for what this host holds:
//! - `GET /routing/v1/ipns/{name}`: the best verified record held;
//! - `PUT /routing/v1/ipns/{name}`: stores a record after verifying it (a
//!   valid signature by the name's key, not expired, a sequence not below
//!   the one held); anything else is refused and nothing is stored;
//! - `GET /routing/v1/providers/{cid}`: this server itself, as a `peer`
//!   record with the `transport-ipfs-gateway-http` protocol and its own
//!   address, when the block is here; 404 otherwise.
//!
//! Non-goals: providers for content held elsewhere, `/routing/v1/peers`
//! (answered 404), and ndjson streaming (the answer is one record).

use std::time::SystemTime;

use crate::names::ipns;
use crate::ops::resolve::names::Offered;
use crate::trust::keys::PublicKey;

use super::Gateway;
use super::http::{self, Req, Resp, Response};

const IPNS_RECORD: &str = "application/vnd.ipfs.ipns-record";

/// An IPNS name as the record cache keys it (`k51…`, base36 CIDv1
/// `libp2p-key`): routing clients may send any multibase, or a peer ID.
pub fn normalise_name(name: &str) -> String {
    PublicKey::from_ipns_name(name)
        .map(|k| k.ipns_name())
        .unwrap_or_else(|_| name.to_owned())
}

pub fn handle(gw: &Gateway, req: &Req) -> Response {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["routing", "v1", "ipns", name] => match req.method {
            ::http::Method::PUT => put_ipns(gw, req, name),
            _ => get_ipns(gw, name),
        },
        ["routing", "v1", "providers", cid] if req.method != ::http::Method::PUT => {
            providers(gw, req, cid)
        }
        ["routing", "v1", "peers", _] => http::text(404, "no peer records on this host"),
        _ => http::text(
            404,
            "routing v1 here: GET|PUT /routing/v1/ipns/{name}, GET /routing/v1/providers/{cid}",
        ),
    }
}

fn get_ipns(gw: &Gateway, name: &str) -> Response {
    let key = normalise_name(name);
    match gw.records.best(&key) {
        Some((bytes, rec)) => {
            let ttl = rec.ttl.as_secs().clamp(1, 31_536_000);
            Resp::new(200)
                .h("Content-Type", IPNS_RECORD)
                .h("Cache-Control", &format!("public, max-age={ttl}"))
                .h("Vary", "Accept")
                .bytes(bytes)
        }
        None => http::text(404, &format!("no IPNS record for `{name}` on this host")),
    }
}

fn put_ipns(gw: &Gateway, req: &Req, name: &str) -> Response {
    let ctype = req.header("content-type");
    if !ctype.is_empty() && !ctype.starts_with(IPNS_RECORD) {
        return http::text(
            415,
            &format!("a record is sent as `{IPNS_RECORD}`, not `{ctype}`"),
        );
    }
    let Ok(key) = PublicKey::from_ipns_name(name) else {
        return http::text(400, &format!("`{name}` is not an IPNS name"));
    };
    let key = key.ipns_name();
    let rec = match ipns::verify(&key, &req.body, SystemTime::now()) {
        Ok(r) => r,
        Err(e) => return http::text(400, &format!("refused the record for `{name}`: {e}")),
    };
    match gw.records.offer(&key, &req.body, &rec) {
        Ok(Offered::Newer | Offered::Same) => Resp::new(200).bytes(""),
        Ok(Offered::Older { seen }) => http::text(
            409,
            &format!(
                "refused the record for `{name}`: sequence {} is below the {seen} held",
                rec.sequence
            ),
        ),
        Err(e) => http::text(500, &format!("cannot store the record for `{name}`: {e}")),
    }
}

fn providers(gw: &Gateway, req: &Req, cid: &str) -> Response {
    let Ok(cid) = crate::content::cid::parse(cid) else {
        return http::text(400, &format!("`{cid}` is not a CID"));
    };
    if !gw.has(&cid) {
        return http::text(404, &format!("`{cid}` is not held by this host"));
    }
    let addr = match req.local {
        std::net::SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}/http", a.ip(), a.port()),
        std::net::SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}/http", a.ip(), a.port()),
    };
    let record = serde_json::json!({
        "Schema": "peer",
        "ID": gw.peer_id,
        "Addrs": [addr],
        "Protocols": ["transport-ipfs-gateway-http"],
    });
    // Streaming clients (Helia, boxo) ask for ndjson: one record a line.
    if req.header("accept").contains("application/x-ndjson") {
        return Resp::new(200)
            .h("Content-Type", "application/x-ndjson")
            .h("Cache-Control", "public, max-age=15")
            .h("Vary", "Accept")
            .bytes(format!("{record}\n"));
    }
    let body = serde_json::json!({ "Providers": [record] });
    Resp::new(200)
        .h("Content-Type", "application/json")
        .h("Cache-Control", "public, max-age=15")
        .h("Vary", "Accept")
        .bytes(body.to_string())
}

//! A Kubo node's RPC API as a block source, and the few RPC calls ipkg makes
//! besides fetching: pins, `dag/import`, `routing/get` and `routing/put`.
//!
//! The API address is found as Kubo's own clients find it (see
//! [`find_api`]). Content comes from `dag/export` (one CAR for a cold
//! sub-DAG, through Kubo's bitswap when the node does not have it) and
//! `block/get`; every block is verified like a gateway's: a local daemon is
//! trusted no more than a public gateway.
//!
//! Non-goals: anything Kubo would need ipkg's keys for. Records are signed by
//! ipkg and handed to Kubo with `routing/put`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::content::cid::verify;
use crate::content::{Cid, MAX_BLOCK_SIZE};
use crate::names::ipns::MAX_RECORD_SIZE;

use super::http::{
    Guarded, HttpOptions, agent, api_url, dead_error, mark_dead, read_limited, status_error,
    transport_error, with_retries,
};
use super::store::BlockStore;
use super::{BlockSource, CarBudget, FetchStats, SourceError};

/// Where Kubo's API is, as the `ipfs` CLI looks for it: an explicit address
/// (`--api`, `IPFS_API`, the config), else the `api` file in `$IPFS_PATH` or
/// `~/.ipfs`, written by a running daemon. Returns the URL and where it came
/// from.
pub fn find_api(explicit: Option<&str>) -> Result<Option<(String, String)>, String> {
    if let Some(addr) = explicit {
        let url = api_url(addr).ok_or_else(|| {
            format!("`{addr}` is not a Kubo API address (try `/ip4/127.0.0.1/tcp/5001`)")
        })?;
        return Ok(Some((url, addr.to_owned())));
    }
    let repo = std::env::var_os("IPFS_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".ipfs")));
    let Some(file) = repo.map(|r| r.join("api")) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => match api_url(&text) {
            Some(url) => Ok(Some((url, file.display().to_string()))),
            None => Err(format!(
                "`{}` does not hold a Kubo API address",
                file.display()
            )),
        },
        Err(_) => Ok(None),
    }
}

/// A Kubo node's RPC API at `http://host:port`.
pub struct KuboSource {
    base: String,
    opts: HttpOptions,
    agent: ureq::Agent,
}

/// What `dag/import` reported for a root.
#[derive(Debug, Clone)]
pub struct Imported {
    pub root: String,
    pub pin_error: Option<String>,
}

impl KuboSource {
    pub fn new(base: &str, opts: &HttpOptions) -> KuboSource {
        KuboSource {
            base: base.trim_end_matches('/').to_owned(),
            opts: *opts,
            agent: agent(opts),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, cmd: &str, args: &[(&str, &str)]) -> String {
        let mut url = format!("{}/api/v0/{cmd}", self.base);
        for (i, (k, v)) in args.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode_query(v));
        }
        url
    }

    /// POST an RPC command with no body; non-200 answers become errors.
    fn rpc(
        &self,
        cmd: &str,
        args: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, SourceError> {
        if let Some(e) = dead_error(&self.base) {
            return Err(e);
        }
        let url = self.url(cmd, args);
        let resp = with_retries(&self.opts, || self.agent.post(&url).send_empty())
            .map_err(|e| self.note(e))?;
        if resp.status().as_u16() != 200 {
            return Err(status_error(resp));
        }
        Ok(resp)
    }

    /// Remember a dead node (or one that broke a limit) for this run.
    fn note(&self, e: SourceError) -> SourceError {
        if e.drops_source() {
            mark_dead(&self.base, &e.to_string());
        }
        e
    }

    /// A body of at most `max` bytes, held to the deadline and rate.
    fn read(
        &self,
        resp: ureq::http::Response<ureq::Body>,
        max: usize,
    ) -> Result<Vec<u8>, SourceError> {
        read_limited(resp, max, &self.opts).map_err(|e| self.note(e))
    }

    /// POST an RPC command with one file argument sent as multipart.
    fn rpc_file(
        &self,
        cmd: &str,
        args: &[(&str, &str)],
        file: &mut dyn Read,
    ) -> Result<ureq::http::Response<ureq::Body>, SourceError> {
        let boundary = format!("ipkg-{:016x}", rand_u64());
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let mut body = head.as_bytes().chain(file).chain(tail.as_bytes());
        let url = self.url(cmd, args);
        // Not retried: the body is a stream that cannot be replayed.
        let resp = self
            .agent
            .post(&url)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(ureq::SendBody::from_reader(&mut body))
            .map_err(|e| self.note(transport_error(e)))?;
        if resp.status().as_u16() != 200 {
            return Err(status_error(resp));
        }
        Ok(resp)
    }

    /// `id`: check that a node answers; returns its peer ID.
    pub fn id(&self) -> Result<String, SourceError> {
        let resp = self.rpc("id", &[])?;
        let v: serde_json::Value =
            serde_json::from_slice(&self.read(resp, 1 << 20)?).map_err(bad_json)?;
        Ok(v["ID"].as_str().unwrap_or_default().to_owned())
    }

    /// `pin/add --name NAME CID` (recursive).
    pub fn pin_add(&self, cid: &Cid, name: &str) -> Result<(), SourceError> {
        let cid = cid.to_string();
        self.rpc("pin/add", &[("arg", &cid), ("name", name)])
            .and_then(|r| self.read(r, 1 << 20))
            .map(|_| ())
    }

    /// `pin/rm CID`; a CID that is not pinned is not an error.
    pub fn pin_rm(&self, cid: &Cid) -> Result<(), SourceError> {
        let c = cid.to_string();
        match self.rpc("pin/rm", &[("arg", &c)]) {
            Ok(r) => self.read(r, 1 << 20).map(|_| ()),
            Err(SourceError::Other { message }) if message.contains("not pinned") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The name of the recursive pin on `cid`, if it is pinned (`pin/ls --names`).
    pub fn pin_name(&self, cid: &Cid) -> Result<Option<String>, SourceError> {
        let c = cid.to_string();
        match self.rpc(
            "pin/ls",
            &[("arg", &c), ("type", "recursive"), ("names", "true")],
        ) {
            Ok(r) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&self.read(r, 1 << 20)?).map_err(bad_json)?;
                let keys = v["Keys"].as_object().cloned().unwrap_or_default();
                Ok(keys
                    .values()
                    .next()
                    .map(|k| k["Name"].as_str().unwrap_or_default().to_owned()))
            }
            Err(SourceError::Other { message }) if message.contains("not pinned") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `dag/import` of a CAR stream, pinning its roots or not.
    pub fn dag_import(
        &self,
        car: &mut dyn Read,
        pin_roots: bool,
    ) -> Result<Vec<Imported>, SourceError> {
        let pin = if pin_roots { "true" } else { "false" };
        let resp = self.rpc_file("dag/import", &[("pin-roots", pin)], car)?;
        let body = self.read(resp, 1 << 20)?;
        let mut out = Vec::new();
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).map_err(bad_json)?;
            if let Some(root) = v.get("Root") {
                let pin_error = root["PinErrorMsg"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                out.push(Imported {
                    root: root["Cid"]["/"].as_str().unwrap_or_default().to_owned(),
                    pin_error,
                });
            }
        }
        Ok(out)
    }

    /// `routing/get /ipns/NAME`: the record bytes, unverified.
    pub fn routing_get(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        let key = format!("/ipns/{name}");
        let resp = self.rpc("routing/get", &[("arg", &key)])?;
        let body = self.read(resp, 4 * MAX_RECORD_SIZE)?;
        // Kubo emits `{"Extra": base64(record), "Type": 5, …}`.
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(bad_json)?;
        let extra = v["Extra"].as_str().unwrap_or_default();
        multibase::Base::Base64Pad
            .decode(extra)
            .map_err(|e| SourceError::Other {
                message: format!("routing/get gave a record that is not base64: {e}"),
            })
    }

    /// `routing/put /ipns/NAME` of a signed record (Kubo validates it).
    pub fn routing_put(&self, name: &str, record: &[u8]) -> Result<(), SourceError> {
        let key = format!("/ipns/{name}");
        let mut r = record;
        let resp = self.rpc_file(
            "routing/put",
            &[("arg", &key), ("allow-offline", "true")],
            &mut r,
        )?;
        self.read(resp, 1 << 20).map(|_| ())
    }

    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError> {
        let c = cid.to_string();
        let timeout = format!("{}s", self.opts.timeout.as_secs().max(1));
        let resp = match self.rpc("block/get", &[("arg", &c), ("timeout", &timeout)]) {
            Ok(r) => r,
            Err(SourceError::Other { message })
                if message.contains("not found") || message.contains("deadline exceeded") =>
            {
                return Err(SourceError::Missing(*cid));
            }
            Err(e) => return Err(e),
        };
        let data = self.read(resp, MAX_BLOCK_SIZE)?;
        verify(cid, &data).map_err(|_| SourceError::Corrupt { cid: *cid })?;
        Ok(data)
    }

    /// The sub-DAG under `cid` as a CAR stream, held to the deadline and
    /// rate limits like a gateway's (the budget is the caller's).
    fn dag_export(
        &self,
        cid: &Cid,
        budget: &Arc<CarBudget>,
    ) -> Result<Box<dyn Read + '_>, SourceError> {
        let c = cid.to_string();
        let resp = self.rpc("dag/export", &[("arg", &c), ("progress", "false")])?;
        Ok(Box::new(Guarded::car(
            resp.into_body().into_reader(),
            &self.opts,
            budget,
        )))
    }
}

impl BlockSource for KuboSource {
    fn describe(&self) -> String {
        format!("Kubo RPC at {}", self.base)
    }

    fn block(&self, cid: &Cid) -> Result<Vec<u8>, SourceError> {
        self.get_block(cid)
    }

    fn fetch_dag(
        &self,
        root: &Cid,
        store: &BlockStore,
        progress: &dyn Fn(u64),
    ) -> Result<FetchStats, SourceError> {
        let r = super::fetch_with_cars(
            store,
            root,
            progress,
            &|cids, on| {
                for c in cids {
                    on(*c, self.get_block(c)?)?;
                }
                Ok(())
            },
            &|c, budget| self.dag_export(c, budget),
        );
        r.map_err(|e| self.note(e))
    }
}

fn bad_json(e: serde_json::Error) -> SourceError {
    SourceError::Other {
        message: format!("unexpected answer from Kubo: {e}"),
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

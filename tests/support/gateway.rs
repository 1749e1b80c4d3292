//! A trustless gateway for tests that can be told to lie: it serves blocks
//! from memory (`?format=raw`, `?format=car`) and IPNS records, and in each
//! [`Mode`] misbehaves in one way a real gateway might. Loopback only; the
//! server thread stops when the [`FakeGateway`] drops.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipkg::content::Cid;
use ipkg::content::car::CarWriter;

/// How the gateway misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serves what it has, correctly.
    Good,
    /// Flips one byte of every block it serves (raw and in CARs).
    FlipByte,
    /// Cuts every CAR in half and answers 404 for single blocks.
    TruncateCar,
    /// Accepts the connection and never answers.
    Hang,
    /// 404 for everything.
    NotFound,
    /// 500 for everything.
    ServerError,
}

pub struct FakeGateway {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Requests seen.
    pub hits: Arc<AtomicU64>,
    records: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl FakeGateway {
    /// Serve `blocks` (in DAG order, root first for CARs) on a free loopback port.
    pub fn start(blocks: Vec<(Cid, Vec<u8>)>, mode: Mode) -> FakeGateway {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binding the fake gateway"));
        let addr = server.server_addr().to_ip().expect("an IP address");
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicU64::new(0));
        let records: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let map: HashMap<Vec<u8>, Vec<u8>> = blocks
            .iter()
            .map(|(c, d)| (c.hash().to_bytes(), d.clone()))
            .collect();
        let order: Vec<(Cid, Vec<u8>)> = blocks;
        let thread = {
            let (server, stop, hits, records) =
                (server.clone(), stop.clone(), hits.clone(), records.clone());
            std::thread::spawn(move || {
                let mut hung = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    hits.fetch_add(1, Ordering::Relaxed);
                    match mode {
                        Mode::Hang => {
                            // Keep the request (and its connection) open, unanswered.
                            hung.push(req);
                            continue;
                        }
                        Mode::NotFound => {
                            let _ = req.respond(tiny_http::Response::empty(404));
                            continue;
                        }
                        Mode::ServerError => {
                            let _ = req.respond(
                                tiny_http::Response::from_string("boom").with_status_code(500),
                            );
                            continue;
                        }
                        _ => {}
                    }
                    let url = req.url().to_owned();
                    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
                    // Delegated routing (`/routing/v1/ipns/{name}`): GET and PUT.
                    if let Some(name) = path.strip_prefix("/routing/v1/ipns/") {
                        let mut req = req;
                        if *req.method() == tiny_http::Method::Put {
                            let mut body = Vec::new();
                            let _ = std::io::Read::read_to_end(req.as_reader(), &mut body);
                            records.lock().unwrap().insert(name.to_owned(), body);
                            let _ = req.respond(tiny_http::Response::empty(200));
                            continue;
                        }
                        let r = records.lock().unwrap().get(name).cloned();
                        let _ = match r {
                            Some(r) => req.respond(tiny_http::Response::from_data(r)),
                            None => req.respond(tiny_http::Response::empty(404)),
                        };
                        continue;
                    }
                    if let Some(name) = path.strip_prefix("/ipns/") {
                        match records.lock().unwrap().get(name) {
                            Some(r) => {
                                let _ = req.respond(tiny_http::Response::from_data(r.clone()));
                            }
                            None => {
                                let _ = req.respond(tiny_http::Response::empty(404));
                            }
                        }
                        continue;
                    }
                    let Some(cid) = path
                        .strip_prefix("/ipfs/")
                        .and_then(|c| ipkg::content::cid::parse(c).ok())
                    else {
                        let _ = req.respond(tiny_http::Response::empty(400));
                        continue;
                    };
                    let flip = |mut d: Vec<u8>| {
                        if mode == Mode::FlipByte && !d.is_empty() {
                            let i = d.len() / 2;
                            d[i] ^= 0x01;
                        }
                        d
                    };
                    if query.contains("format=car") {
                        // The sub-DAG under `cid`, in the order given.
                        let mut out = Vec::new();
                        let mut w = CarWriter::new(&mut out, &[cid]).unwrap();
                        let sub = subdag(&map, &cid);
                        for (c, d) in order
                            .iter()
                            .filter(|(c, _)| sub.contains(&c.hash().to_bytes()))
                        {
                            w.write_block(c, &flip(d.clone())).unwrap();
                        }
                        w.finish().unwrap();
                        if mode == Mode::TruncateCar {
                            out.truncate(out.len() / 2);
                        }
                        let _ = req.respond(tiny_http::Response::new(
                            200.into(),
                            vec![],
                            Cursor::new(out),
                            None,
                            None,
                        ));
                    } else {
                        match map.get(&cid.hash().to_bytes()) {
                            Some(d) if mode != Mode::TruncateCar => {
                                let _ =
                                    req.respond(tiny_http::Response::from_data(flip(d.clone())));
                            }
                            _ => {
                                let _ = req.respond(tiny_http::Response::empty(404));
                            }
                        }
                    }
                }
                drop(hung);
            })
        };
        FakeGateway {
            addr,
            server,
            stop,
            thread: Some(thread),
            hits,
            records,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The record last PUT (or set) for `name`.
    pub fn record(&self, name: &str) -> Option<Vec<u8>> {
        self.records.lock().unwrap().get(name).cloned()
    }

    /// Serve `record` for `/ipns/{name}?format=ipns-record`.
    pub fn set_record(&self, name: &str, record: Vec<u8>) {
        self.records.lock().unwrap().insert(name.to_owned(), record);
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Multihashes of every block under `root` that `map` holds.
fn subdag(map: &HashMap<Vec<u8>, Vec<u8>>, root: &Cid) -> std::collections::HashSet<Vec<u8>> {
    let mut out = std::collections::HashSet::new();
    let mut stack = vec![*root];
    while let Some(c) = stack.pop() {
        let k = c.hash().to_bytes();
        if !out.insert(k.clone()) {
            continue;
        }
        if let Some(d) = map.get(&k) {
            stack.extend(ipkg::content::links_of(&c, d).unwrap_or_default());
        }
    }
    out
}

/// Every block of a CAR file, in file order.
pub fn blocks_of_car(path: &std::path::Path) -> Vec<(Cid, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("reading the CAR");
    let (_, blocks) = ipkg::content::car::read_all(&bytes).expect("a valid CAR");
    blocks.into_iter().map(|b| (b.cid, b.data)).collect()
}

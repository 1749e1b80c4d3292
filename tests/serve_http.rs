//! `ipkg serve` as an HTTP citizen facing hostile clients (issue 14): slow
//! readers and header floods do not starve honest requests or grow memory;
//! a CAR that cannot be completed is aborted, not a 200 success; Range
//! semantics (206, multipart, 416); `/routing/v1` (IPNS GET/PUT verified,
//! providers); the path gateway (files, listings, index.html, tar,
//! DAG-JSON); and `@helia/verified-fetch` fetching from it alone.
//!
//! Loopback only: every server listens on 127.0.0.1 port 0.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipkg::names::ipns::Record;
use ipkg::trust::keys::Keypair;
use support::serve::{Served, serve};
use support::{TestEnv, http, in_ci, path_str};

/// Bytes that do not compress or dedupe (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn add(env: &TestEnv, path: &Path) -> String {
    let out = env.ipkg(["add", "-q", path_str(path)]);
    out.success().stdout_lines().last().unwrap().to_string()
}

/// The server's resident memory, from /proc.
fn rss_kib(server: &Served) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// How many sockets the server holds open (its listener included).
fn sockets(server: &Served) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Send `head` and read everything until EOF or an error; also says
/// whether the read ended in an error (a reset) rather than EOF.
fn raw_exchange(addr: SocketAddr, head: &str) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, true),
        }
    }
}

fn shrink_receive_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket and a correctly sized int option.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Regression (issue 14): 8 clients that requested a CAR and never read
/// blocked every tiny_http worker (0 of 6 normal requests answered), and 4
/// connections sending a 128 MiB header line took the server from 33 to
/// 544 MiB. Now: 64 slow readers and a header flood at once, while normal
/// requests are each answered within a second and RSS stays under 64 MiB;
/// the flood is answered 431 and the slow readers are cut.
#[test]
fn slow_readers_and_header_floods_do_not_starve_honest_clients() {
    const CAR_BYTES: usize = 32 << 20;
    const RSS_BOUND_KIB: u64 = 64 * 1024;
    let env = TestEnv::new();
    let big = env.path("big.bin");
    std::fs::write(&big, noise(7, CAR_BYTES)).unwrap();
    let big_cid = add(&env, &big);
    let small = env.path("small.txt");
    std::fs::write(&small, b"hello, honest client\n").unwrap();
    let small_cid = add(&env, &small);
    let server = serve(&env, &[]);
    let addr = server.addr;
    let rss_before = rss_kib(&server);

    let slow: Vec<TcpStream> = (0..64)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            shrink_receive_buffer(&s);
            let req = format!("GET /ipfs/{big_cid}?format=car HTTP/1.1\r\nHost: x\r\n\r\n");
            (&s).write_all(req.as_bytes()).unwrap();
            s
        })
        .collect();
    let flood: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                let _ = s.write_all(b"GET /ipfs/bafkqaaa HTTP/1.1\r\nX-Flood: ");
                let chunk = vec![b'a'; 1 << 16];
                let mut sent = 0usize;
                while sent < 128 << 20 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                sent
            })
        })
        .collect();

    let start = Instant::now();
    let (mut worst, mut answered, mut max_rss) = (Duration::ZERO, 0, 0);
    while start.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        let r = http::get(addr, &format!("/ipfs/{small_cid}?format=raw")).unwrap();
        worst = worst.max(t.elapsed());
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello, honest client\n");
        answered += 1;
        max_rss = max_rss.max(rss_kib(&server));
        std::thread::sleep(Duration::from_millis(100));
    }
    // A header line past the limit, sent whole: the answer is 431.
    let (resp, _) = raw_exchange(
        addr,
        &format!(
            "GET /ipfs/bafkqaaa HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "b".repeat(64 << 10)
        ),
    );
    assert!(
        resp.starts_with(b"HTTP/1.1 431"),
        "a 64 KiB header line: {:?}",
        String::from_utf8_lossy(&resp[..resp.len().min(80)])
    );
    for f in flood {
        let sent = f.join().unwrap();
        assert!(
            sent < 128 << 20,
            "the server read a whole 128 MiB header line"
        );
    }
    max_rss = max_rss.max(rss_kib(&server));
    eprintln!(
        "{answered} honest requests, slowest {worst:?}; RSS {rss_before} KiB before, {max_rss} KiB at most"
    );
    assert!(answered >= 10, "only {answered} honest requests in 4 s");
    assert!(
        worst < Duration::from_secs(1),
        "an honest request took {worst:?}"
    );
    assert!(
        max_rss < RSS_BOUND_KIB,
        "RSS reached {max_rss} KiB (bound {RSS_BOUND_KIB} KiB)"
    );

    // The slow readers are cut once their writes stall (10 s), or their
    // turn to be streamed does not come within 10 s: the server closes
    // their sockets, which frees their slots, though they never read.
    let open_at_peak = sockets(&server);
    assert!(
        open_at_peak >= 64,
        "{open_at_peak} sockets open with 64 slow readers"
    );
    let cut = Instant::now();
    while sockets(&server) > 4 {
        assert!(
            cut.elapsed() < Duration::from_secs(30),
            "{} of the server's sockets still open 30 s later",
            sockets(&server)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "slow readers cut {:?} after the honest phase",
        cut.elapsed()
    );
    drop(slow);
    // And the server still answers.
    let r = http::get(addr, &format!("/ipfs/{small_cid}?format=raw")).unwrap();
    assert_eq!(r.status, 200);
}

/// The store's file for a block (`blocks/<shard>/<base32 multihash>`).
fn block_file(env: &TestEnv, cid: &str) -> PathBuf {
    let cid = ipkg::content::cid::parse(cid).unwrap();
    let key = multibase::Base::Base32Lower.encode(cid.hash().to_bytes());
    let blocks = env.prefix.join(".ipkg/blocks");
    let n = key.len();
    let p = blocks.join(&key[n - 3..n - 1]).join(&key);
    assert!(p.is_file(), "no block file {}", p.display());
    p
}

/// Regression (issue 14): a CAR whose blocks could not all be produced was
/// answered 200 with `Cache-Control: immutable`, ending as if complete. Now
/// the response is aborted: no final chunk, the client sees an error.
#[test]
fn a_car_missing_a_block_is_aborted_not_a_success() {
    let env = TestEnv::new();
    let file = env.path("three.bin");
    std::fs::write(&file, noise(3, 3 << 20)).unwrap();
    let cid = add(&env, &file);
    // The root's second link (1 MiB raw leaves): remove it from the store.
    let root = std::fs::read(block_file(&env, &cid)).unwrap();
    let node = ipkg::content::dagpb::PbNode::decode(&root).unwrap();
    assert_eq!(node.links.len(), 3);
    std::fs::remove_file(block_file(&env, &node.links[1].cid.to_string())).unwrap();
    let server = serve(&env, &[]);

    let (raw, _) = raw_exchange(
        server.addr,
        &format!("GET /ipfs/{cid}?format=car HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    let text = String::from_utf8_lossy(&raw[..raw.len().min(1000)]).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        !raw.ends_with(b"\r\n0\r\n\r\n"),
        "the CAR ended with a final chunk although a block is missing"
    );
    assert!(raw.len() < (2 << 20), "more than the first leaf was sent");
    assert!(
        http::get(server.addr, &format!("/ipfs/{cid}?format=car")).is_err(),
        "a client read the truncated CAR as a complete answer"
    );
    // The same file through the path gateway: aborted as well.
    assert!(http::get(server.addr, &format!("/ipfs/{cid}")).is_err());
    // A missing terminal block is a plain 404, not a stream.
    let gone = &node.links[1].cid.to_string();
    let r = http::get(server.addr, &format!("/ipfs/{gone}?format=car")).unwrap();
    assert_eq!(r.status, 404);
    assert_ne!(r.header("cache-control"), Some(IMMUTABLE));
}

const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// Regression (issue 14): `Range: bytes=999999999-` was answered 200 with
/// the whole block (Kubo: 416). Ranges on raw blocks and on files.
#[test]
fn ranges_single_multi_and_unsatisfiable() {
    let env = TestEnv::new();
    let f = env.path("hello.txt");
    std::fs::write(&f, b"hello world").unwrap();
    let cid = add(&env, &f);
    let big = env.path("big.bin");
    let data = noise(5, 3 << 20);
    std::fs::write(&big, &data).unwrap();
    let big_cid = add(&env, &big);
    let server = serve(&env, &[]);
    let get = |path: &str, range: &str| {
        http::request(server.addr, "GET", path, &[("Range", range)], &[]).unwrap()
    };
    let raw = format!("/ipfs/{cid}?format=raw");

    let r = get(&raw, "bytes=999999999-");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */11"));
    assert_ne!(r.header("cache-control"), Some(IMMUTABLE));
    let r = get(&raw, "bytes=0-4");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"hello"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 0-4/11"));
    assert_eq!(r.header("content-length"), Some("5"));
    let r = get(&raw, "bytes=-5");
    assert_eq!(r.body, b"world");
    let r = get(&raw, "bytes=0-0,6-10");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap_or_default().to_owned();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let body = r.body_str();
    assert!(
        body.contains("Content-Range: bytes 0-0/11\r\n\r\nh\r\n"),
        "{body}"
    );
    assert!(
        body.contains("Content-Range: bytes 6-10/11\r\n\r\nworld\r\n"),
        "{body}"
    );
    // A whole raw block: one Content-Length, not chunked.
    let r = http::get(server.addr, &raw).unwrap();
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("transfer-encoding"), None);

    // A multi-block file through the path gateway, across a block boundary.
    let file = format!("/ipfs/{big_cid}");
    let (a, b) = ((1 << 20) - 10, (1 << 20) + 9);
    let r = get(&file, &format!("bytes={a}-{b}"));
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[a..=b]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {a}-{b}/{}", data.len()).as_str())
    );
    let r = get(&file, &format!("bytes={}-", data.len()));
    assert_eq!(r.status, 416);
    let r = http::get(server.addr, &file).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("etag"), Some(format!("\"{big_cid}\"").as_str()));
}

fn record(key: &Keypair, value: &str, seq: u64) -> Vec<u8> {
    Record::create(
        key,
        value,
        seq,
        Duration::from_secs(3600),
        Duration::from_secs(60),
    )
    .unwrap()
    .to_bytes()
}

fn put(addr: SocketAddr, name: &str, body: &[u8]) -> http::Response {
    http::request(
        addr,
        "PUT",
        &format!("/routing/v1/ipns/{name}"),
        &[("Content-Type", "application/vnd.ipfs.ipns-record")],
        body,
    )
    .unwrap()
}

/// `/routing/v1`: IPNS records are verified before they are stored (bad
/// bytes, another key's signature, a lower sequence are all refused and
/// change nothing); providers answer for held blocks only.
#[test]
fn routing_v1_ipns_put_get_and_providers() {
    let env = TestEnv::new();
    let f = env.path("f.txt");
    std::fs::write(&f, b"routed\n").unwrap();
    let cid = add(&env, &f);
    let server = serve(&env, &[]);
    let key = Keypair::generate().unwrap();
    let other = Keypair::generate().unwrap();
    let name = key.ipns_name();
    let path = format!("/routing/v1/ipns/{name}");

    assert_eq!(http::get(server.addr, &path).unwrap().status, 404);
    let r = put(server.addr, &name, b"not a record");
    assert_eq!(r.status, 400, "{}", r.body_str());
    let forged = record(&other, &format!("/ipfs/{cid}"), 9);
    let r = put(server.addr, &name, &forged);
    assert_eq!(r.status, 400, "another key's record: {}", r.body_str());
    assert_eq!(http::get(server.addr, &path).unwrap().status, 404);

    let good = record(&key, &format!("/ipfs/{cid}"), 2);
    let r = put(server.addr, &name, &good);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = http::get(server.addr, &path).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.ipfs.ipns-record")
    );
    assert_eq!(r.body, good);
    let older = record(&key, "/ipfs/bafkqaaa", 1);
    let r = put(server.addr, &name, &older);
    assert_eq!(r.status, 409, "{}", r.body_str());
    assert_eq!(http::get(server.addr, &path).unwrap().body, good);
    // The record also resolves on the gateway: /ipns/{name} as a file.
    let r = http::get(server.addr, &format!("/ipns/{name}")).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"routed\n"[..]));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));

    let r = http::get(server.addr, &format!("/routing/v1/providers/{cid}")).unwrap();
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let p = &v["Providers"][0];
    assert_eq!(p["Schema"], "peer");
    assert!(p["ID"].as_str().unwrap().starts_with("12D3KooW"), "{v}");
    assert_eq!(
        p["Addrs"][0],
        format!("/ip4/127.0.0.1/tcp/{}/http", server.addr.port())
    );
    assert_eq!(p["Protocols"][0], "transport-ipfs-gateway-http");
    let absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let r = http::get(server.addr, &format!("/routing/v1/providers/{absent}")).unwrap();
    assert_eq!(r.status, 404);
}

/// The path gateway: a file with its type and ETag, a directory redirect,
/// listing and `index.html`, CORS, `?format=tar`, `?format=dag-json`.
#[test]
fn path_gateway_files_listings_tar_and_dag_json() {
    let env = TestEnv::new();
    let site = env.path("site");
    std::fs::create_dir_all(site.join("docs")).unwrap();
    std::fs::write(site.join("readme.txt"), b"read me\n").unwrap();
    std::fs::write(site.join("docs/a <b>.md"), b"# a\n").unwrap();
    std::fs::create_dir_all(site.join("www")).unwrap();
    std::fs::write(site.join("www/index.html"), b"<!doctype html><p>hi</p>").unwrap();
    let cid = add(&env, &site);
    let server = serve(&env, &[]);
    let get = |p: &str| http::get(server.addr, p).unwrap();

    let r = get(&format!("/ipfs/{cid}/readme.txt"));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"read me\n"[..]));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    let etag = r.header("etag").unwrap().to_owned();
    assert!(etag.starts_with("\"baf"), "{etag}");
    let r = http::request(
        server.addr,
        "GET",
        &format!("/ipfs/{cid}/readme.txt"),
        &[("If-None-Match", &etag)],
        &[],
    );
    assert_eq!(r.map(|r| r.status).unwrap_or(304), 304);

    let r = get(&format!("/ipfs/{cid}"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(format!("/ipfs/{cid}/").as_str()));
    let r = get(&format!("/ipfs/{cid}/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.body_str();
    for want in ["readme.txt", "docs", "www", &cid] {
        assert!(html.contains(want), "listing lacks {want}: {html}");
    }
    let r = get(&format!("/ipfs/{cid}/docs/"));
    assert!(r.body_str().contains("a &lt;b&gt;.md"), "{}", r.body_str());
    assert!(r.body_str().contains("href=\"a%20%3Cb%3E.md\""));
    let r = get(&format!("/ipfs/{cid}/docs/a%20%3Cb%3E.md"));
    assert_eq!(r.body, b"# a\n");
    let r = get(&format!("/ipfs/{cid}/www/"));
    assert_eq!(r.body, b"<!doctype html><p>hi</p>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(&format!("/ipfs/{cid}/nothing-here"));
    assert_eq!(r.status, 404);

    let r = get(&format!("/ipfs/{cid}?format=tar"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(r.body.as_slice());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.ends_with("readme.txt") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "read me\n");
        }
        names.push(p);
    }
    assert!(names.contains(&format!("{cid}/docs/a <b>.md")), "{names:?}");

    let r = get(&format!("/ipfs/{cid}?format=dag-json"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.ipld.dag-json")
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = v["Links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs", "readme.txt", "www"]);
    assert!(
        v["Links"][0]["Hash"]["/"]
            .as_str()
            .unwrap()
            .starts_with("baf")
    );
}

/// Where `.ci/run` installs `@helia/verified-fetch` (npm).
fn helia_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("IPKG_HELIA_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("IPKG_CI_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("ipkg-ci"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ipkg-ci"))
                })
                .map(|c| c.join("helia"))
        })?;
    dir.join("node_modules/@helia/verified-fetch/package.json")
        .is_file()
        .then_some(dir)
}

/// `@helia/verified-fetch`, the standard JS client, pointed only at this
/// `ipkg serve` as gateway and router: a file by CID and by `ipns://`
/// name, byte-identical. Regression (issue 14): `ipns://` failed because
/// `/routing/v1/ipns/{name}` was 404.
#[test]
fn helia_verified_fetch_reads_from_ipkg_serve_alone() {
    let Some(dir) = helia_dir() else {
        assert!(
            !in_ci(),
            "@helia/verified-fetch is not installed: .ci/run installs it with npm"
        );
        eprintln!(
            "skipped: @helia/verified-fetch not installed (npm install --prefix ~/.cache/ipkg-ci/helia @helia/verified-fetch)"
        );
        return;
    };
    let env = TestEnv::new();
    let f = env.path("payload.bin");
    let data = noise(11, (2 << 20) + 12345);
    std::fs::write(&f, &data).unwrap();
    let cid = add(&env, &f);
    let server = serve(&env, &[]);
    let key = Keypair::generate().unwrap();
    let name = key.ipns_name();
    let r = put(
        server.addr,
        &name,
        &record(&key, &format!("/ipfs/{cid}"), 1),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helia/verified_fetch.mjs");
    let out_cid = env.path("by-cid.bin");
    let out_name = env.path("by-name.bin");
    let run = Command::new("node")
        .arg(&script)
        .arg(&server.url)
        .arg(format!("ipfs://{cid}"))
        .arg(&out_cid)
        .arg(format!("ipns://{name}"))
        .arg(&out_name)
        .env("HELIA_DIR", &dir)
        .stdin(Stdio::null())
        .output()
        .expect("running node");
    assert!(
        run.status.success(),
        "node failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(std::fs::read(&out_cid).unwrap() == data, "by CID differs");
    assert!(
        std::fs::read(&out_name).unwrap() == data,
        "by ipns:// differs"
    );
}

/// Regression (issue 14): Kubo writes Linux file names as they are, so a
/// directory may hold a non-UTF-8 name (`caf\xe9.txt`). ipkg's strict
/// decoder refused that node, and `serve` sent 1 of 3 blocks as a complete
/// CAR. Now the DAG is imported, served whole (the same blocks as Kubo's
/// `dag export`), and `get` refuses with an error naming the entry.
#[test]
fn a_kubo_dag_with_a_non_utf8_name_is_served_whole() {
    use std::os::unix::ffi::OsStrExt;
    if !support::kubo_available() {
        return;
    }
    let kubo = support::Kubo::init();
    let tree = kubo.scratch().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("ok.txt"), b"fine\n").unwrap();
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(tree.join(latin1), b"latin-1 name\n").unwrap();
    let cid = kubo.add(&tree, &[]);
    let export = kubo.ipfs(["dag", "export", &cid]);
    export.success();
    let (_, kubo_blocks) = ipkg::content::car::read_all(&export.stdout_raw).unwrap();
    assert_eq!(kubo_blocks.len(), 3);

    let env = TestEnv::new();
    let car = env.path("kubo.car");
    std::fs::write(&car, &export.stdout_raw).unwrap();
    env.ipkg(["car", "import", path_str(&car)]).success();
    let server = serve(&env, &[]);
    let r = http::get(server.addr, &format!("/ipfs/{cid}?format=car")).unwrap();
    assert_eq!(r.status, 200);
    let (roots, blocks) = ipkg::content::car::read_all(&r.body).unwrap();
    assert_eq!(roots[0].to_string(), cid);
    let mut want: Vec<String> = kubo_blocks.iter().map(|b| b.cid.to_string()).collect();
    let mut got: Vec<String> = blocks.iter().map(|b| b.cid.to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "the CAR served is not the whole DAG");

    let out = env.ipkg(["get", &cid, "-o", path_str(&env.path("out"))]);
    out.failure();
    assert!(
        out.stderr.contains("caf\\xe9.txt"),
        "the error does not name the entry: {}",
        out.stderr
    );
}

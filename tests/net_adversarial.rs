//! Availability under hostile gateways (issue 14): deadlines, minimum rate,
//! CAR byte budgets, dead sources remembered, and freshness that is told,
//! not assumed.
//!
//! The adversaries are real HTTP servers on 127.0.0.1 written here
//! ([`Adversary`]): an endless CAR of unrequested blocks, the root block
//! repeated forever, a 1 byte/s trickle, a port that accepts and never
//! answers, and one that refuses. Each comes first in the client's gateway
//! list, an honest gateway (`support::gateway`) second; the install (and
//! `update`) must succeed through the honest one within a bound of a few
//! times the configured deadline, and the bytes the endless adversary
//! managed to send are counted and bounded. The limits are small
//! (`timeout = "1s"`, `fetch-timeout = "2s"`) so the whole file stays cheap.
//!
//! Loopback only; every client config names only these servers
//! (`kubo-api = "off"`).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipkg::content::Cid;
use ipkg::content::car::CarWriter;
use ipkg::content::cid::{Codec, cid_of};
use support::gateway::{FakeGateway, Mode, blocks_of_car};
use support::{TestEnv, path_str};

/// The limits every client here runs with.
const TIMEOUT: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What a client command may take with one adversary first: three times the
/// deadline of one request plus its idle timeout (a bound that says "it
/// finished", not a performance figure).
fn bound() -> Duration {
    3 * (FETCH_TIMEOUT + TIMEOUT)
}

/// The most bytes an endless adversary may push before it is cut off: the
/// client's budget for these small DAGs is a few MiB; the rest is what the
/// loopback socket buffers absorb. Before the budget existed it was
/// gigabytes.
const MAX_ADVERSARY_BYTES: u64 = 48 << 20;

// ---------------------------------------------------------------------------
// The adversaries.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evil {
    /// Honest single blocks; a CAR of unrequested blocks that never ends;
    /// an endless IPNS record body.
    EndlessCar,
    /// Honest single blocks; a CAR that repeats the root block forever.
    RepeatRoot,
    /// Everything honest, at 1 byte per second.
    Trickle,
    /// Accepts, reads the request, never answers.
    Hang,
}

struct Adversary {
    addr: SocketAddr,
    /// Bytes written to clients.
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Content {
    blocks: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    records: std::collections::HashMap<String, Vec<u8>>,
}

impl Adversary {
    fn start(evil: Evil, blocks: &[(Cid, Vec<u8>)], records: &[(&str, Vec<u8>)]) -> Adversary {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the adversary");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let content = Arc::new(Content {
            blocks: blocks
                .iter()
                .map(|(c, d)| (c.hash().to_bytes(), d.clone()))
                .collect(),
            records: records
                .iter()
                .map(|(n, r)| (n.to_string(), r.clone()))
                .collect(),
        });
        let thread = {
            let (sent, stop) = (sent.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (sent, stop, content) =
                                (sent.clone(), stop.clone(), content.clone());
                            std::thread::spawn(move || {
                                let _ = serve_one(evil, stream, &content, &sent, &stop);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Adversary {
            addr,
            sent,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Adversary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes through to the socket, counting bytes and stopping with the test.
struct Counted<'a> {
    stream: TcpStream,
    sent: &'a AtomicU64,
    stop: &'a AtomicBool,
    /// Pause after every byte (a trickle).
    trickle: bool,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("test over"));
        }
        let buf = if self.trickle && !buf.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
            &buf[..1]
        } else {
            buf
        };
        let n = self.stream.write(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn serve_one(
    evil: Evil,
    mut stream: TcpStream,
    content: &Content,
    sent: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    if evil == Evil::Hang {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return Ok(());
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut out = Counted {
        stream,
        sent,
        stop,
        trickle: evil == Evil::Trickle,
    };
    let respond = |out: &mut Counted<'_>, status: &str, body: &[u8]| -> std::io::Result<()> {
        out.write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )?;
        out.write_all(body)
    };
    let open_stream = |out: &mut Counted<'_>, ctype: &str| -> std::io::Result<()> {
        out.write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    if let Some(name) = path.strip_prefix("/ipns/") {
        return match (evil, content.records.get(name)) {
            (Evil::EndlessCar | Evil::RepeatRoot, _) => {
                open_stream(&mut out, "application/vnd.ipfs.ipns-record")?;
                let junk = vec![0x42u8; 64 << 10];
                loop {
                    out.write_all(&junk)?;
                }
            }
            (_, Some(r)) => respond(&mut out, "200 OK", r),
            (_, None) => respond(&mut out, "404 Not Found", b""),
        };
    }
    let Some(cid) = path
        .strip_prefix("/ipfs/")
        .and_then(|c| ipkg::content::cid::parse(c).ok())
    else {
        return respond(&mut out, "400 Bad Request", b"");
    };
    let Some(data) = content.blocks.get(&cid.hash().to_bytes()) else {
        return respond(&mut out, "404 Not Found", b"");
    };
    if !query.contains("format=car") {
        return respond(&mut out, "200 OK", data);
    }
    open_stream(&mut out, "application/vnd.ipld.car; version=1")?;
    let mut car = CarWriter::new(&mut out, &[cid])?;
    match evil {
        Evil::EndlessCar => {
            // Valid blocks nobody asked for, forever.
            let mut n = 0u64;
            loop {
                let mut block = vec![0u8; 32 << 10];
                block[..8].copy_from_slice(&n.to_le_bytes());
                n += 1;
                car.write_block(&cid_of(1, Codec::Raw, &block), &block)?;
            }
        }
        Evil::RepeatRoot => loop {
            car.write_block(&cid, data)?;
        },
        _ => {
            // The honest sub-DAG, in order (a trickle never gets far).
            let mut stack = vec![cid];
            while let Some(c) = stack.pop() {
                if let Some(d) = content.blocks.get(&c.hash().to_bytes()) {
                    car.write_block(&c, d)?;
                    let mut links = ipkg::content::links_of(&c, d).unwrap_or_default();
                    links.reverse();
                    stack.extend(links);
                }
            }
            car.finish()?;
            Ok(())
        }
    }
}

/// A loopback port nothing listens on: connections are refused.
fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------
// A publisher and clients.

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

struct Publisher {
    env: TestEnv,
    ipns: String,
}

impl Publisher {
    /// Key `alice`, registry `main`, `hello 1.0.0` published.
    fn new() -> Publisher {
        let env = TestEnv::new();
        env.ipkg(["key", "gen", "alice"]).success();
        let out = env.ipkg(["registry", "init", "main", "--key", "alice"]);
        let ipns = out
            .success()
            .stdout_trimmed()
            .trim_start_matches("/ipns/")
            .to_owned();
        let p = Publisher { env, ipns };
        p.publish("1.0.0");
        p
    }

    /// Publish `hello VERSION` (a copy of 1.1.0 for versions the examples
    /// do not have).
    fn publish(&self, version: &str) {
        let mut dir = examples().join("hello").join(version);
        if !dir.exists() {
            let src = examples().join("hello/1.1.0");
            dir = self.env.path(format!("hello-{version}"));
            std::fs::create_dir_all(dir.join("bin")).unwrap();
            let manifest = std::fs::read_to_string(src.join("ipkg.toml"))
                .unwrap()
                .replace("version = \"1.1.0\"", &format!("version = \"{version}\""));
            std::fs::write(dir.join("ipkg.toml"), manifest).unwrap();
            std::fs::copy(src.join("bin/hello"), dir.join("bin/hello")).unwrap();
        }
        self.env
            .ipkg(["publish", path_str(&dir), "--registry", "main"])
            .success();
    }

    fn record(&self) -> Vec<u8> {
        std::fs::read(self.env.prefix.join(".ipkg/registries/main/ipns-record")).unwrap()
    }

    /// Every block of the registry (index, documents, packages).
    fn blocks(&self) -> Vec<(Cid, Vec<u8>)> {
        let car = self.env.path("reg.car");
        let _ = std::fs::remove_file(&car);
        self.env
            .ipkg(["registry", "export", "main", "-o", path_str(&car)])
            .success();
        blocks_of_car(&car)
    }

    /// An honest gateway serving the registry and its current record.
    fn honest(&self) -> FakeGateway {
        let gw = FakeGateway::start(self.blocks(), Mode::Good);
        gw.set_record(&self.ipns, self.record());
        gw
    }
}

fn client_config(env: &TestEnv, gateways: &[String]) {
    let list: Vec<String> = gateways.iter().map(|g| format!("{g:?}")).collect();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [{}]\ntimeout = \"{}s\"\nfetch-timeout = \"{}s\"\nmin-rate = \"1KiB/s\"\nretries = 0\n",
        list.join(", "),
        TIMEOUT.as_secs(),
        FETCH_TIMEOUT.as_secs(),
    ));
}

fn client(gateways: &[String]) -> TestEnv {
    let mut env = TestEnv::new();
    env.set_env("IPKG_NO_DEFAULT_SOURCES", "1");
    client_config(&env, gateways);
    env
}

/// Run `ipkg ARGS` and assert it ends within [`bound`].
fn timed(env: &TestEnv, args: &[&str]) -> (support::Output, Duration) {
    let t = Instant::now();
    let out = env.ipkg(args);
    let took = t.elapsed();
    assert!(
        took < bound(),
        "`ipkg {}` took {took:?}, more than {:?}\n{}",
        args.join(" "),
        bound(),
        out.describe()
    );
    (out, took)
}

// ---------------------------------------------------------------------------
// Content: each adversary first, the honest gateway second.

/// Install by `/ipns/KEY/hello` (subscribe, fetch the index, fetch the
/// package) with `evil` first: succeeds through the honest gateway, within
/// the bound, and names the adversary.
fn install_despite(evil: Evil) {
    let publisher = Publisher::new();
    let honest = publisher.honest();
    let blocks = publisher.blocks();
    let adversary = Adversary::start(evil, &blocks, &[(&publisher.ipns, publisher.record())]);
    let env = client(&[adversary.url(), honest.url()]);
    let (out, _) = timed(
        &env,
        &["install", &format!("/ipns/{}/hello", publisher.ipns)],
    );
    out.success();
    assert!(env.prefix.join("hello").exists(), "{}", out.describe());
    assert!(
        std::fs::read_dir(&env.bin).map(|d| d.count()).unwrap_or(0) > 0,
        "no command linked\n{}",
        out.describe()
    );
    assert!(
        adversary.sent() < MAX_ADVERSARY_BYTES,
        "{evil:?}: the adversary pushed {} bytes\n{}",
        adversary.sent(),
        out.describe()
    );
    if evil != Evil::EndlessCar && evil != Evil::RepeatRoot {
        // Dead and trickling gateways are named (they lose every race or
        // time out); the endless ones may never be asked for a CAR if the
        // honest gateway wins the race for the first block.
        assert!(
            out.stderr.contains(&adversary.url()),
            "{evil:?}: adversary not named\n{}",
            out.describe()
        );
    }
}

#[test]
fn an_endless_car_of_unrequested_blocks_is_cut() {
    install_despite(Evil::EndlessCar);
}

#[test]
fn a_repeated_root_block_is_cut() {
    install_despite(Evil::RepeatRoot);
}

#[test]
fn a_trickling_gateway_is_given_up() {
    install_despite(Evil::Trickle);
}

#[test]
fn a_gateway_that_never_answers_is_given_up() {
    install_despite(Evil::Hang);
}

/// The endless CARs are asked for directly (one gateway only, so no race
/// hides them) for a cold multi-block tree: the CAR is cut at its budget,
/// promptly, the gateway is dropped with a message that says why, and the
/// adversary's bytes are bounded.
#[test]
fn an_endless_car_alone_is_cut_at_its_budget() {
    let publisher = TestEnv::new();
    let src = publisher.path("src");
    support::gen_tree(7, &src, &support::TreeSpec::mixed());
    let out = publisher.ipkg(["add", "-q", path_str(&src)]);
    let cid = out.success().stdout_lines().last().unwrap().to_string();
    let car = publisher.path("x.car");
    publisher
        .ipkg(["car", "export", &cid, "-o", path_str(&car)])
        .success();
    let blocks = blocks_of_car(&car);
    let honest = FakeGateway::start(blocks.clone(), Mode::Good);
    for evil in [Evil::EndlessCar, Evil::RepeatRoot] {
        let adversary = Adversary::start(evil, &blocks, &[]);
        let env = client(&[adversary.url()]);
        let (out, _) = timed(&env, &["get", &cid, "-o", path_str(&env.path("out"))]);
        out.failure();
        assert!(
            out.stderr.contains("larger than its DAG"),
            "{evil:?}\n{}",
            out.describe()
        );
        let sent = adversary.sent();
        assert!(
            sent < MAX_ADVERSARY_BYTES,
            "{evil:?}: pushed {sent} bytes\n{}",
            out.describe()
        );
        // With the honest gateway after it, the same get succeeds.
        client_config(&env, &[adversary.url(), honest.url()]);
        let (out, _) = timed(&env, &["get", &cid, "-o", path_str(&env.path("out"))]);
        out.success();
        support::assert_same_tree(&src, &env.path("out"), support::Compare::DEFAULT_ADD);
    }
}

/// A dead first gateway, both kinds (a refused port, one that never
/// answers), then the honest one: the install works and the dead one is
/// asked once, not once per DAG.
#[test]
fn a_dead_first_gateway_is_asked_once() {
    let publisher = Publisher::new();
    let honest = publisher.honest();
    let hang = Adversary::start(Evil::Hang, &[], &[]);
    for dead in [refused_url(), hang.url()] {
        let env = client(&[dead.clone(), honest.url()]);
        let (out, _) = timed(
            &env,
            &["install", &format!("/ipns/{}/hello", publisher.ipns)],
        );
        out.success();
        assert!(env.prefix.join("hello").exists(), "{}", out.describe());
        let mentions = out.stderr.matches(&dead).count();
        assert!(
            (1..=3).contains(&mentions),
            "{dead} named {mentions} times\n{}",
            out.describe()
        );
    }
}

// ---------------------------------------------------------------------------
// The IPNS record endpoint.

/// `update` with a trickling or endless record source first, then the
/// honest one: the new index is found, within the bound.
#[test]
fn update_despite_a_trickling_or_endless_record_source() {
    let publisher = Publisher::new();
    for evil in [Evil::Trickle, Evil::EndlessCar, Evil::Hang] {
        let honest = publisher.honest();
        let env = client(&[honest.url()]);
        env.ipkg(["registry", "add", "alice", &publisher.ipns])
            .success();
        let adversary = Adversary::start(
            evil,
            &publisher.blocks(),
            &[(&publisher.ipns, publisher.record())],
        );
        client_config(&env, &[adversary.url(), honest.url()]);
        let (out, _) = timed(&env, &["update", "--strict"]);
        out.success();
        assert!(
            out.stderr.contains("Fresh") && out.stderr.contains("confirmed by"),
            "{evil:?}\n{}",
            out.describe()
        );
        assert!(
            adversary.sent() < MAX_ADVERSARY_BYTES,
            "{evil:?}: pushed {} bytes",
            adversary.sent()
        );
    }
}

// ---------------------------------------------------------------------------
// Freshness.

fn assert_unconfirmed(env: &TestEnv, why: &str) {
    let out = env.ipkg(["update"]);
    out.success();
    assert!(
        out.stderr.contains("Unconfirmed `alice` sequence 2")
            && out.stderr.contains("no source confirmed it")
            && out.stderr.contains("last confirmed")
            && !out.stderr.contains("Fresh"),
        "{why}: update claimed freshness\n{}",
        out.describe()
    );
    let strict = env.ipkg(["update", "--strict"]);
    strict.failure();
    assert!(
        strict
            .stderr
            .contains("no source confirmed the index of `alice`"),
        "{why}\n{}",
        strict.describe()
    );
}

/// The record withheld, an older record replayed, every source down:
/// `update` keeps the index but does not call it fresh, and `--strict`
/// fails.
#[test]
fn update_does_not_claim_freshness_it_did_not_get() {
    let publisher = Publisher::new();
    let old_record = publisher.record();
    publisher.publish("1.1.0");
    let honest = publisher.honest();
    let env = client(&[honest.url()]);
    env.ipkg(["registry", "add", "alice", &publisher.ipns])
        .success();
    let out = env.ipkg(["update", "--strict"]);
    assert!(
        out.success().stderr.contains("Fresh `alice` sequence 2"),
        "{}",
        out.describe()
    );

    // Withheld: blocks but no record.
    let withholding = FakeGateway::start(publisher.blocks(), Mode::Good);
    client_config(&env, &[withholding.url()]);
    assert_unconfirmed(&env, "record withheld");

    // Replayed: the sequence-1 record.
    let replaying = FakeGateway::start(publisher.blocks(), Mode::Good);
    replaying.set_record(&publisher.ipns, old_record);
    client_config(&env, &[replaying.url()]);
    assert_unconfirmed(&env, "old record replayed");
    let out = env.ipkg(["update"]);
    assert!(out.stderr.contains("rollback"), "{}", out.describe());

    // Every source down.
    client_config(&env, &[refused_url()]);
    assert_unconfirmed(&env, "all sources down");

    // Back to the honest gateway: confirmed again.
    client_config(&env, &[honest.url()]);
    let out = env.ipkg(["update", "--strict"]);
    assert!(
        out.success().stderr.contains("Fresh `alice` sequence 2"),
        "{}",
        out.describe()
    );
}

/// A validly signed record (sequence 9) pointing at an index that is
/// refused (the older sequence-1 index: a rollback) does not replace the
/// cached record: the honest record is used in the same run, and a later
/// honest record (sequence 3) is accepted, not refused as a rollback
/// against 9.
#[test]
fn a_record_whose_index_is_refused_is_not_cached() {
    let publisher = Publisher::new();
    let reg = publisher
        .env
        .prefix
        .join(".ipkg/registries/main/registry.toml");
    let old_root = std::fs::read_to_string(&reg)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("root = ")
                .map(|r| r.trim_matches('"').to_owned())
        })
        .unwrap();
    let old_blocks = publisher.blocks();
    publisher.publish("1.1.0");
    let honest = publisher.honest();
    let env = client(&[honest.url()]);
    env.ipkg(["registry", "add", "alice", &publisher.ipns])
        .success();

    let keys = ipkg::ops::publish::keystore::KeyStore::at(publisher.env.config.join("ipkg/keys"));
    let key = keys.load("alice").expect("the publisher's key");
    let evil_record = ipkg::names::ipns::Record::create(
        &key,
        &format!("/ipfs/{old_root}"),
        9,
        Duration::from_secs(3600),
        Duration::from_secs(60),
    )
    .unwrap();
    let mut all = old_blocks;
    all.extend(publisher.blocks());
    let evil = FakeGateway::start(all, Mode::Good);
    evil.set_record(&publisher.ipns, evil_record.to_bytes());

    // The evil record first: refused, the honest one used, confirmed.
    client_config(&env, &[evil.url(), honest.url()]);
    let out = env.ipkg(["update", "--strict"]);
    out.success();
    assert!(
        out.stderr.contains("rollback") && out.stderr.contains("Fresh `alice` sequence 2"),
        "{}",
        out.describe()
    );
    let cached = std::fs::read(
        env.prefix
            .join(format!(".ipkg/state/ipns/{}.ipns-record", publisher.ipns)),
    )
    .expect("the cached record");
    let cached =
        ipkg::names::ipns::verify(&publisher.ipns, &cached, std::time::SystemTime::now()).unwrap();
    assert_eq!(cached.sequence, 2, "the refused record replaced the cache");

    // The evil record alone: refused, nothing confirmed, the cache unchanged.
    client_config(&env, &[evil.url()]);
    let out = env.ipkg(["update", "--strict"]);
    out.failure();
    assert!(out.stderr.contains("rollback"), "{}", out.describe());

    // The next honest record, sequence 3, is accepted.
    publisher.publish("1.2.0");
    let honest = publisher.honest();
    client_config(&env, &[honest.url()]);
    let out = env.ipkg(["update", "--strict"]);
    out.success();
    assert!(
        out.stderr.contains("sequence 2 -> 3") && out.stdout.contains("hello 1.2.0"),
        "{}",
        out.describe()
    );
}

//! Lazy mounts and lazy runs (`ipkg mount`, `ipkg run --lazy`) over real FUSE.
//!
//! The client's only source is a gateway on loopback: either `ipkg serve` of
//! the publisher's store, or an adversary written here that can lie about
//! one block or stop answering. Everything read through a mount must equal
//! the tree that was added, byte for byte; a lie is `EIO` for the file that
//! contains it and nothing else.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::serve::serve;
use support::tree::write_random_file;
use support::{Compare, TestEnv, TreeSpec, assert_same_tree, gen_tree, path_str};

/// Whether FUSE can be used here at all.
fn fuse_usable() -> bool {
    Path::new("/dev/fuse").exists() && (unsafe { libc::geteuid() } == 0 || which("fusermount3"))
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

macro_rules! need_fuse {
    () => {
        if !fuse_usable() {
            support::skip(
                "fuse",
                "FUSE is not usable here (/dev/fuse, or fusermount3 for a user): .ci/run installs fuse3",
            );
            return;
        }
    };
}

/// ipkg's FUSE mounts in this mount namespace, by mount point.
fn ipkg_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            // `fuse` for a direct mount (root), `fuse.ipkg` through fusermount3.
            let mut f = right.split_whitespace();
            let (fstype, source) = (f.next()?, f.next()?);
            if !(fstype == "fuse" || fstype == "fuse.ipkg") || !source.starts_with("ipkg:") {
                return None;
            }
            Some(PathBuf::from(left.split_whitespace().nth(4)?))
        })
        .collect()
}

fn wait_for_mount(mp: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let abs = std::fs::canonicalize(mp).unwrap();
    while !ipkg_mounts().contains(&abs) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("ipkg mount exited with {status} before mounting: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{} was never mounted",
            mp.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `ipkg mount`: killed and its mount detached if the test ends
/// (or panics) before [`unmount`], so no mount outlives the test.
struct MountGuard {
    child: Option<Child>,
    mp: PathBuf,
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            for (tool, args) in [("umount", &["-l"][..]), ("fusermount3", &["-u", "-z"][..])] {
                let _ = std::process::Command::new(tool)
                    .args(args)
                    .arg(&self.mp)
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// `ipkg mount TARGET MP` in the background, waited for.
fn mount(env: &TestEnv, target: &str, mp: &Path) -> MountGuard {
    std::fs::create_dir_all(mp).unwrap();
    let child = env
        .ipkg_command(["mount", target, path_str(mp)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ipkg mount");
    let mut guard = MountGuard {
        child: Some(child),
        mp: mp.to_path_buf(),
    };
    if let Some(child) = guard.child.as_mut() {
        wait_for_mount(mp, child);
    }
    guard
}

fn unmount(env: &TestEnv, mp: &Path, mut guard: MountGuard) {
    let mut child = guard.child.take().expect("a running mount");
    env.ipkg(["unmount", path_str(mp)]).success();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "ipkg mount ended with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("ipkg mount did not end after unmount: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!ipkg_mounts().contains(&std::fs::canonicalize(mp).unwrap()));
}

fn client_of(url: &str) -> TestEnv {
    let client = TestEnv::new();
    client.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{url}\"]\ntimeout = \"2s\"\nretries = 0\n"
    ));
    client
}

#[test]
fn a_mounted_tree_reads_byte_identical_to_the_installed_one() {
    need_fuse!();
    let publisher = TestEnv::new();
    let src = publisher.path("src");
    gen_tree(3, &src, &TreeSpec::mixed());
    // A HAMT-sharded directory, and files of several blocks (1 MiB chunks).
    gen_tree(4, &src.join("sharded"), &TreeSpec::sharded());
    write_random_file(&src.join("big.bin"), 5, 5 * (1 << 20) + 12_345);
    write_random_file(&src.join("empty"), 6, 0);
    let cid = publisher.ipkg(["add", "-q", "--hidden", "--preserve-mode", path_str(&src)]);
    let cid = cid.success().stdout_lines().last().unwrap().to_string();
    let server = serve(&publisher, &[]);

    let client = client_of(&server.url);
    let mp = client.path("mnt");
    let child = mount(&client, &cid, &mp);
    assert_same_tree(&src, &mp, Compare::EXACT);
    // A read in the middle of a multi-block file, across a block boundary.
    let mut f = std::fs::File::open(mp.join("big.bin")).unwrap();
    let mut buf = vec![0u8; 300_000];
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start((3 << 20) - 100_000))
        .unwrap();
    f.read_exact(&mut buf).unwrap();
    let want = std::fs::read(src.join("big.bin")).unwrap();
    assert_eq!(buf, want[(3 << 20) - 100_000..(3 << 20) + 200_000]);
    // An open file keeps a detached mount served until it is closed.
    drop(f);
    unmount(&client, &mp, child);

    // What `get` writes (the eager path) is the same tree as the mount.
    let out = client.path("out");
    client.ipkg(["get", &cid, "-o", path_str(&out)]).success();
    assert_same_tree(&src, &out, Compare::EXACT);
}

/// How the adversary gateway behaves now.
const HONEST: u8 = 0;
const LIE: u8 = 1;
const DEAD: u8 = 2;

/// A trustless gateway that serves single raw blocks (`?format=raw`) from
/// memory and refuses CARs; told to, it flips a byte of one block, or stops
/// answering (it accepts and never replies).
struct Adversary {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    served: Arc<Mutex<Vec<String>>>,
}

impl Adversary {
    fn start(blocks: HashMap<String, Vec<u8>>, liar_for: String) -> Adversary {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(HONEST));
        let served = Arc::new(Mutex::new(Vec::new()));
        let blocks = Arc::new(blocks);
        let (m, s) = (mode.clone(), served.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, s, blocks, liar) = (m.clone(), s.clone(), blocks.clone(), liar_for.clone());
                std::thread::spawn(move || answer(conn, &m, &s, &blocks, &liar));
            }
        });
        Adversary { addr, mode, served }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn answer(
    conn: TcpStream,
    mode: &AtomicU8,
    served: &Mutex<Vec<String>>,
    blocks: &HashMap<String, Vec<u8>>,
    liar_for: &str,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        if mode.load(Ordering::SeqCst) == DEAD {
            std::thread::sleep(Duration::from_secs(600));
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let cid = path
            .trim_start_matches("/ipfs/")
            .split(['?', '/'])
            .next()
            .unwrap_or("")
            .to_owned();
        let body = (path.contains("format=raw"))
            .then(|| blocks.get(&cid).cloned())
            .flatten();
        let Some(mut body) = body else {
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
            continue;
        };
        if cid == liar_for && mode.load(Ordering::SeqCst) == LIE {
            body[0] ^= 1;
        }
        served.lock().unwrap().push(cid);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.ipld.raw\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&body).is_err() {
            return;
        }
    }
}

/// The blocks of a DAG in `env`'s store, by CID string, via `car export`.
fn blocks_of(env: &TestEnv, cid: &str) -> HashMap<String, Vec<u8>> {
    let car = env.path("all.car");
    env.ipkg(["car", "export", cid, "-o", path_str(&car)])
        .success();
    support::gateway::blocks_of_car(&car)
        .into_iter()
        .map(|(c, d)| (c.to_string(), d))
        .collect()
}

/// The CID of a file inside a DAG, from `ipkg add` of that file alone
/// (same settings: the same CID).
fn cid_of_file(env: &TestEnv, path: &Path) -> String {
    let out = env.ipkg(["add", "-q", "-n", path_str(path)]);
    out.success().stdout_lines().last().unwrap().to_string()
}

#[test]
fn a_lie_is_eio_for_its_file_only_and_a_dead_gateway_fails_reads_cleanly() {
    need_fuse!();
    let publisher = TestEnv::new();
    let src = publisher.path("src");
    std::fs::create_dir_all(&src).unwrap();
    // Three single-block files (one raw leaf each) and a multi-block one.
    write_random_file(&src.join("a.bin"), 1, 200_000);
    write_random_file(&src.join("b.bin"), 2, 300_000);
    write_random_file(&src.join("c.bin"), 3, 3 * (1 << 20));
    let root = publisher.ipkg(["add", "-q", path_str(&src)]);
    let root = root.success().stdout_lines().last().unwrap().to_string();
    let blocks = blocks_of(&publisher, &root);
    let a = cid_of_file(&publisher, &src.join("a.bin"));
    assert!(blocks.contains_key(&a), "a.bin is one block of the DAG");
    let gw = Adversary::start(blocks, a.clone());

    let client = client_of(&gw.url());
    let mp = client.path("mnt");
    gw.mode.store(LIE, Ordering::SeqCst);
    let child = mount(&client, &root, &mp);
    let err = std::fs::read(mp.join("a.bin")).expect_err("a lied-about block must not read");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        gw.served.lock().unwrap().contains(&a),
        "the adversary was asked for the block it lies about"
    );
    assert_eq!(
        std::fs::read(mp.join("b.bin")).unwrap(),
        std::fs::read(src.join("b.bin")).unwrap(),
        "the other files read fine"
    );
    unmount(&client, &mp, child);

    // Nothing wrong was cached: honest again, the same file reads right.
    gw.mode.store(HONEST, Ordering::SeqCst);
    let child = mount(&client, &root, &mp);
    assert_eq!(
        std::fs::read(mp.join("a.bin")).unwrap(),
        std::fs::read(src.join("a.bin")).unwrap()
    );
    unmount(&client, &mp, child);

    // The gateway dies: what was fetched reads from the store, the rest
    // fails within the fetch deadline instead of hanging.
    gw.mode.store(DEAD, Ordering::SeqCst);
    let child = mount(&client, &root, &mp);
    assert_eq!(
        std::fs::read(mp.join("b.bin")).unwrap(),
        std::fs::read(src.join("b.bin")).unwrap()
    );
    let started = Instant::now();
    let err = std::fs::read(mp.join("c.bin")).expect_err("c.bin was never fetched");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a read of an unreachable block is bounded by the deadlines, took {:?}",
        started.elapsed()
    );
    unmount(&client, &mp, child);
}

/// A package whose command prints its arguments and a data file, then
/// exits with the code given as its first argument (or sleeps).
fn lazy_package(env: &TestEnv) -> PathBuf {
    let dir = env.path("pkg");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("share")).unwrap();
    std::fs::write(
        dir.join("ipkg.toml"),
        "[package]\nname = \"lazyhello\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n\n[commands]\nlazyhello = \"bin/lazyhello\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bin/lazyhello"),
        "#!/bin/sh\nhere=$(dirname \"$0\")\nif [ \"$1\" = sleep ]; then sleep 30; fi\ncat \"$here/../share/greeting\"\necho \"args: $*\"\nexit \"${1:-0}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("bin/lazyhello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(dir.join("share/greeting"), "hello from a lazy mount\n").unwrap();
    // Filler nobody reads: a lazy run must not fetch it.
    write_random_file(&dir.join("share/unused.bin"), 9, 4 << 20);
    dir
}

#[test]
fn run_lazy_fetches_what_it_reads_and_passes_the_exit_code() {
    need_fuse!();
    let publisher = TestEnv::new();
    let pkg = lazy_package(&publisher);
    let cid = publisher.ipkg(["pack", path_str(&pkg)]);
    let cid = cid.success().stdout_lines().last().unwrap().to_string();
    let server = serve(&publisher, &[]);

    let client = client_of(&server.url);
    let out = client.ipkg(["run", "--lazy", "--allow-unsigned", &cid, "--", "3", "x"]);
    assert_eq!(out.status.code(), Some(3), "{}", out.describe());
    let stdout = out.stdout.clone();
    assert!(stdout.contains("hello from a lazy mount"), "{stdout}");
    assert!(stdout.contains("args: 3 x"), "{stdout}");
    // The 4 MiB nobody read was not fetched: the store stays small.
    let stored = dir_size(&client.prefix.join(".ipkg/blocks"));
    assert!(stored < 1 << 20, "a lazy run fetched {stored} bytes");
    // Nothing was installed and no mount is left.
    assert!(!client.prefix.join("lazyhello").exists());
    assert!(ipkg_mounts().iter().all(|m| !m.starts_with(&client.prefix)));
    // The access profile was kept for the next run.
    let profile = client.prefix.join(".ipkg/profiles").join(&cid);
    assert!(
        profile.is_file(),
        "no access profile at {}",
        profile.display()
    );
    let again = client.ipkg(["run", "--lazy", "--allow-unsigned", &cid, "--", "0"]);
    again.success();
}

#[test]
fn a_killed_lazy_run_leaves_no_mount_after_the_next_command() {
    need_fuse!();
    let publisher = TestEnv::new();
    let pkg = lazy_package(&publisher);
    let cid = publisher.ipkg(["pack", path_str(&pkg)]);
    let cid = cid.success().stdout_lines().last().unwrap().to_string();
    let server = serve(&publisher, &[]);

    let client = client_of(&server.url);
    let mut child = client
        .ipkg_command(["run", "--lazy", "--allow-unsigned", &cid, "--", "sleep"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lazy = client.prefix.join(".ipkg/lazy");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ipkg_mounts().iter().any(|m| m.starts_with(&lazy)) {
        assert!(Instant::now() < deadline, "the lazy run never mounted");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Any next command clears what the killed one left.
    client.ipkg(["list"]).success();
    let left: Vec<_> = ipkg_mounts()
        .into_iter()
        .filter(|m| m.starts_with(&lazy))
        .collect();
    assert!(left.is_empty(), "mounts left behind: {left:?}");
    // The orphaned program (sleep 30) is killed by the test's end anyway.
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

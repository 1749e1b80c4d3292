//! A real Kubo (`ipfs`) node for tests: a repo in a temporary directory and,
//! when asked, an offline daemon on loopback.
//!
//! Every repo is made with `ipfs init --profile=test` and then locked down:
//! no telemetry, no AutoConf, no bootstrap peers, no DNSLink on the gateway,
//! API, gateway and swarm on `127.0.0.1` port 0 (the kernel picks a free
//! port; Kubo writes the real addresses to `$IPFS_PATH/api` and
//! `$IPFS_PATH/gateway`). The daemon always runs with `--offline`. `ipfs`
//! runs with a cleared environment (so `IPFS_HTTP_ROUTERS` and friends from
//! the developer's shell never apply), `IPFS_TELEMETRY=off` and a private
//! `HOME`. The repo is removed and the daemon killed when the [`Kubo`] drops.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Output, http, run, temp_dir};

/// The Kubo version CI builds and the tests are written against.
pub const KUBO_VERSION: &str = "0.42.0";

/// How long a daemon may take to answer its API.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Whether `ipfs` is on `PATH`. When it is not, this records a skip (key
/// `ipfs`, see [`skip`](super::skip())) and returns false so the test can
/// return early; under CI (`CI` set), where Kubo is always installed, the
/// skip fails the test.
///
/// ```ignore
/// if !kubo_available() { return; }
/// ```
#[track_caller]
pub fn kubo_available() -> bool {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    let version = VERSION.get_or_init(|| {
        let out = Command::new("ipfs")
            .args(["version", "--number"])
            .env("IPFS_TELEMETRY", "off")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    match version {
        Some(v) => {
            if v != KUBO_VERSION {
                static WARNED: OnceLock<()> = OnceLock::new();
                WARNED.get_or_init(|| {
                    eprintln!(
                        "warning: ipfs is version {v}, tests are written against {KUBO_VERSION}"
                    )
                });
            }
            true
        }
        None => {
            super::skip(
                "ipfs",
                format!("ipfs (Kubo) is not on PATH; .ci/run installs Kubo {KUBO_VERSION}"),
            );
            false
        }
    }
}

/// A Kubo repo in a temporary directory, optionally with a running offline daemon.
pub struct Kubo {
    // Field order matters only for clarity: `Drop` kills the daemon before the
    // fields (and with them the directory) go.
    dir: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
    daemon: Option<Daemon>,
}

struct Daemon {
    child: Child,
    api: SocketAddr,
    gateway: SocketAddr,
}

impl Kubo {
    /// A fresh repo with Kubo's default import settings (the `unixfs-v0-2015`
    /// behaviour), no daemon. `ipfs add`, `dag import/export`, `key` and the
    /// like run in-process against the repo.
    pub fn init() -> Kubo {
        Kubo::init_with_profiles(&[])
    }

    /// A fresh repo with extra config profiles applied at init, e.g.
    /// `&["unixfs-v1-2025"]` (which sets `Import.CidVersion=1`,
    /// `UnixFSRawLeaves=true`, `UnixFSChunker=size-1048576`,
    /// `UnixFSFileMaxLinks=1024`, `UnixFSHAMTDirectorySizeEstimation=block`, …).
    pub fn init_with_profiles(profiles: &[&str]) -> Kubo {
        let dir = temp_dir("ipkg-kubo-");
        let repo = dir.path().join("repo");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("creating the Kubo test HOME");
        let kubo = Kubo {
            dir,
            repo,
            home,
            daemon: None,
        };
        let mut profile = String::from("test");
        for p in profiles {
            profile.push(',');
            profile.push_str(p);
        }
        kubo.ipfs(["init", "--empty-repo", &format!("--profile={profile}")])
            .success();
        kubo.lock_down_config();
        kubo
    }

    /// A fresh repo (default import settings) with an offline daemon running.
    pub fn start_daemon() -> Kubo {
        let mut kubo = Kubo::init();
        kubo.start();
        kubo
    }

    /// Edit the config file directly: one process start instead of six
    /// `ipfs config` calls. The keys are the ones `ipfs config` takes.
    fn lock_down_config(&self) {
        let path = self.repo.join("config");
        let text = std::fs::read_to_string(&path).expect("reading the Kubo config");
        let mut config: serde_json::Value =
            serde_json::from_str(&text).expect("Kubo config is JSON");
        let set = |config: &mut serde_json::Value, keys: &[&str], value: serde_json::Value| {
            let mut v = config;
            for k in &keys[..keys.len() - 1] {
                let obj = v
                    .as_object_mut()
                    .unwrap_or_else(|| panic!("Kubo config: parent of {keys:?} is an object"));
                v = obj
                    .entry(k.to_string())
                    .or_insert_with(|| serde_json::json!({}));
                if v.is_null() {
                    *v = serde_json::json!({});
                }
            }
            v.as_object_mut()
                .unwrap_or_else(|| panic!("Kubo config: parent of {keys:?} is an object"))
                .insert(keys[keys.len() - 1].to_string(), value);
        };
        use serde_json::json;
        set(
            &mut config,
            &["Plugins", "Plugins", "telemetry", "Disabled"],
            json!(true),
        );
        set(&mut config, &["AutoConf", "Enabled"], json!(false));
        set(&mut config, &["Bootstrap"], json!([]));
        set(&mut config, &["Gateway", "NoDNSLink"], json!(true));
        set(
            &mut config,
            &["Addresses", "API"],
            json!("/ip4/127.0.0.1/tcp/0"),
        );
        set(
            &mut config,
            &["Addresses", "Gateway"],
            json!("/ip4/127.0.0.1/tcp/0"),
        );
        set(
            &mut config,
            &["Addresses", "Swarm"],
            json!(["/ip4/127.0.0.1/tcp/0"]),
        );
        set(&mut config, &["Addresses", "Announce"], json!([]));
        set(&mut config, &["Addresses", "NoAnnounce"], json!([]));
        let text = serde_json::to_string_pretty(&config).expect("serializing the Kubo config");
        std::fs::write(&path, text).expect("writing the Kubo config");
    }

    /// `$IPFS_PATH`.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// A scratch directory next to the repo, removed with it.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The `ipfs` command for this repo, with a cleared environment.
    pub fn ipfs_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ipfs");
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("IPFS_PATH", &self.repo)
            .env("IPFS_TELEMETRY", "off")
            .env("TMPDIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Run `ipfs ARGS…` against this repo (through the daemon's API when one
    /// is running, as the `ipfs` CLI does).
    pub fn ipfs<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.ipfs_command(args), None)
    }

    /// Run `ipfs ARGS…` with `input` on stdin.
    pub fn ipfs_stdin<I, S>(&self, args: I, input: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.ipfs_command(args), Some(input))
    }

    /// Start `ipfs daemon --offline` and wait until its RPC API answers
    /// `/api/v0/id`. Panics (with the daemon's output) if it does not within
    /// 90 s.
    pub fn start(&mut self) {
        self.start_with(&["daemon", "--offline"], &[]);
    }

    /// Start an online daemon in a private network: `swarm_key` (the text of
    /// a `swarm.key` file) is written to the repo and `LIBP2P_FORCE_PNET=1`
    /// set, so it talks only to nodes with the same key. With `Bootstrap=[]`
    /// and swarm on 127.0.0.1 it meets only the peers a test connects it to
    /// ([`Kubo::connect`]).
    pub fn start_private(&mut self, swarm_key: &str) {
        std::fs::write(self.repo.join("swarm.key"), swarm_key).expect("writing swarm.key");
        self.start_with(&["daemon"], &[("LIBP2P_FORCE_PNET", "1")]);
    }

    /// A fresh private-network swarm key.
    pub fn swarm_key() -> String {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("random bytes");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n")
    }

    /// This node's loopback swarm address with its peer ID
    /// (`/ip4/127.0.0.1/tcp/PORT/p2p/12D3…`).
    pub fn swarm_addr(&self) -> String {
        let out = self.ipfs(["id", "-f", "<addrs>"]);
        out.success()
            .stdout
            .lines()
            .map(str::trim)
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .unwrap_or_else(|| panic!("no loopback TCP address in `ipfs id`: {}", out.stdout))
            .to_owned()
    }

    /// `ipfs swarm connect` to `other` (both must be running).
    pub fn connect(&self, other: &Kubo) {
        let addr = other.swarm_addr();
        self.ipfs(["swarm", "connect", &addr]).success();
    }

    fn start_with(&mut self, args: &[&str], env: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "the Kubo daemon is already running");
        let log_out = self.dir.path().join("daemon.stdout");
        let log_err = self.dir.path().join("daemon.stderr");
        let mut cmd = self.ipfs_command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::fs::File::create(&log_out).expect("creating the daemon log"))
            .stderr(std::fs::File::create(&log_err).expect("creating the daemon log"));
        kill_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("starting `ipfs daemon --offline`");

        let logs = || {
            format!(
                "--- daemon stdout ---\n{}\n--- daemon stderr ---\n{}",
                std::fs::read_to_string(&log_out).unwrap_or_default(),
                std::fs::read_to_string(&log_err).unwrap_or_default()
            )
        };
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        let ready = loop {
            if let Some(status) = child.try_wait().expect("polling the Kubo daemon") {
                panic!(
                    "`ipfs daemon --offline` exited early ({status})\n{}",
                    logs()
                );
            }
            if let Some(ready) = self.ready_addresses() {
                break ready;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`ipfs daemon --offline` did not answer within {DAEMON_START_TIMEOUT:?}\n{}",
                    logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.daemon = Some(Daemon {
            child,
            api: ready.0,
            gateway: ready.1,
        });
    }

    /// The API and gateway addresses once the API answers, else `None`.
    fn ready_addresses(&self) -> Option<(SocketAddr, SocketAddr)> {
        let api = std::fs::read_to_string(self.repo.join("api")).ok()?;
        let api = multiaddr_to_socket(api.trim())?;
        let gateway = std::fs::read_to_string(self.repo.join("gateway")).ok()?;
        let gateway = gateway
            .trim()
            .strip_prefix("http://")?
            .trim_end_matches('/')
            .parse()
            .ok()?;
        let resp = http::post(api, "/api/v0/id").ok()?;
        (resp.status == 200).then_some((api, gateway))
    }

    /// The daemon's RPC API address. Panics if no daemon runs.
    pub fn api_addr(&self) -> SocketAddr {
        self.running().api
    }

    /// `/ip4/127.0.0.1/tcp/PORT` for the RPC API, as ipkg's `--api` would take it.
    pub fn api_multiaddr(&self) -> String {
        let a = self.api_addr();
        format!("/ip4/{}/tcp/{}", a.ip(), a.port())
    }

    /// The daemon's gateway address. Panics if no daemon runs.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.running().gateway
    }

    fn running(&self) -> &Daemon {
        self.daemon
            .as_ref()
            .expect("no Kubo daemon is running: call Kubo::start_daemon() or kubo.start()")
    }

    /// Stop the daemon (if any) and wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.child.kill();
            let _ = d.child.wait();
            // A killed daemon leaves its API file behind; the CLI would then
            // try to reach a dead API instead of opening the repo.
            let _ = std::fs::remove_file(self.repo.join("api"));
            let _ = std::fs::remove_file(self.repo.join("gateway"));
        }
    }

    /// `ipfs add -r -Q ARGS… PATH`: the root CID Kubo gives `path`.
    pub fn add(&self, path: &Path, args: &[&str]) -> String {
        let mut all: Vec<&OsStr> = vec!["add".as_ref(), "-r".as_ref(), "-Q".as_ref()];
        all.extend(args.iter().map(|a| OsStr::new(*a)));
        all.push(path.as_os_str());
        let out = self.ipfs(all);
        out.success();
        out.stdout_trimmed().to_string()
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/ip4/A.B.C.D/tcp/PORT` → `A.B.C.D:PORT`.
pub fn multiaddr_to_socket(ma: &str) -> Option<SocketAddr> {
    let parts: Vec<&str> = ma.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["ip4", ip, "tcp", port] => format!("{ip}:{port}").parse().ok(),
        ["ip6", ip, "tcp", port] => format!("[{ip}]:{port}").parse().ok(),
        _ => None,
    }
}

/// Ask the kernel to kill the daemon if the thread that started it dies, so an
/// aborted test run (Ctrl-C, a panic while unwinding is disabled) leaves no
/// daemon behind. Note: "thread", not process, so a `Kubo` must not be
/// started on a thread that ends before the test does.
fn kill_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

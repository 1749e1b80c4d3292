//! Plan without downloading, a visible download, and space that comes back
//! (issue 15, items 2 and 4), against a publisher's `ipkg serve` on
//! loopback: `--dry-run` fetches no package block; an interactive install
//! (tmux) shows a progress bar with a total, a percentage and an ETA while a
//! trickling gateway is still sending; after `remove`, `gc` frees the
//! package's bytes while the registry stays subscribed.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::serve::serve;
use support::{TestEnv, path_str};

/// Package `big` 1.0.0: a program and `kib` KiB of incompressible data.
fn big_package(env: &TestEnv, kib: usize) -> std::path::PathBuf {
    let root = env.path("big");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(
        root.join("ipkg.toml"),
        "[package]\nname = \"big\"\nversion = \"1.0.0\"\ndescription = \"Big data\"\ntargets = [\"any\"]\n[commands]\nbig = \"bin/big\"\n",
    )
    .unwrap();
    let bin = root.join("bin/big");
    std::fs::write(&bin, "#!/bin/sh\necho big\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..kib * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    // Files of 16 KiB: many blocks, so progress moves block by block.
    std::fs::create_dir_all(root.join("data")).unwrap();
    for (i, chunk) in data.chunks(16 * 1024).enumerate() {
        std::fs::write(root.join(format!("data/{i:03}.bin")), chunk).unwrap();
    }
    root
}

/// A publisher with registry `main` holding `big`; returns it and the key.
fn publisher(kib: usize) -> (TestEnv, String) {
    let env = TestEnv::new();
    env.ipkg(["key", "gen", "alice"]).success();
    let out = env.ipkg(["registry", "init", "main", "--key", "alice"]);
    let ipns = out
        .success()
        .stdout_trimmed()
        .trim_start_matches("/ipns/")
        .to_owned();
    let dir = big_package(&env, kib);
    env.ipkg(["publish", path_str(&dir), "--registry", "main"])
        .success();
    (env, ipns)
}

/// A client whose only source is `gateway`, subscribed to `ipns` as `alice`.
fn client(gateway: &str, ipns: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{gateway}\"]\ntimeout = \"5s\"\nretries = 0\n"
    ));
    env.ipkg(["registry", "add", "alice", ipns]).success();
    env
}

/// Files in the store (one per block).
fn store_blocks(env: &TestEnv) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { walk(&p) } else { 1 }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&env.prefix.join(".ipkg/blocks"))
}

#[test]
fn dry_run_fetches_no_package_block_and_gc_frees_a_removed_package_while_subscribed() {
    let (publisher, ipns) = publisher(256);
    let server = serve(&publisher, &[]);
    let env = client(&server.url, &ipns);
    let before = store_blocks(&env);
    let out = env.ipkg(["install", "--dry-run", "big"]);
    // The size comes from the package's root node (UnixFS link sizes).
    assert!(
        out.success()
            .stdout
            .contains("would-install big 1.0.0 from `alice`"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("257.46 KiB to download)"),
        "{}",
        out.describe()
    );
    assert_eq!(store_blocks(&env), before, "{}", out.describe());
    assert!(env.ipkg(["list"]).success().stdout.trim().is_empty());

    // Install, remove, gc: the package's bytes come back though `alice`
    // stays subscribed; what the subscription never fetched is one line.
    let out = env.ipkg(["install", "big"]);
    assert!(
        out.success().stderr.contains("Fetching big 1.0.0 (bafy"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains(", 257.46 KiB)"), "{}", out.describe());
    assert!(store_blocks(&env) > before);
    env.ipkg(["remove", "big"]).success();
    let out = env.ipkg(["gc"]);
    out.success();
    assert!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("warning"))
            .count()
            <= 1,
        "{}",
        out.describe()
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.ipkg(["gc", "--dry-run", "--json"]).success().stdout).unwrap();
    assert_eq!(v["blocks_removed"], 0, "{v}");
    // Only the index and its statements are left.
    assert!(store_blocks(&env) <= before + 1, "{}", out.describe());
    assert_eq!(
        std::fs::read_dir(env.prefix.join(".ipkg/files"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert!(
        env.ipkg(["registry", "list"])
            .success()
            .stdout
            .contains("alice subscribed")
    );
    // And it installs again from the network.
    env.ipkg(["install", "big"]).success();
}

/// A gateway in front of `upstream` that trickles its answers: `rate` bytes
/// a second. An adversary of the patient kind.
fn trickling_proxy(upstream: std::net::SocketAddr, rate: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(upstream) else {
                    return;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let chunk = (rate / 20).max(1);
                let mut buf = vec![0u8; chunk];
                loop {
                    match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn an_interactive_install_shows_the_download_while_it_runs() {
    let have_tmux = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_tmux {
        assert!(!support::in_ci(), "tmux is needed for this test under CI");
        return;
    }
    let (publisher, ipns) = publisher(768);
    let server = serve(&publisher, &[]);
    // 768 KiB at 256 KiB/s: about three seconds of download.
    let slow = trickling_proxy(server.addr, 256 * 1024);
    let env = client(&slow, &ipns);
    let socket = env.root().join("tmux.sock");
    let line = [
        "env".to_owned(),
        "-i".into(),
        format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
        format!("HOME={}", env.home.display()),
        format!("IPKG_PREFIX={}", env.prefix.display()),
        format!("IPKG_BIN_DIR={}", env.bin.display()),
        format!("XDG_CONFIG_HOME={}", env.config.display()),
        "IPKG_NO_DEFAULT_SOURCES=1".into(),
        "TERM=xterm-256color".into(),
        "NO_COLOR=1".into(),
        support::ipkg_bin().display().to_string(),
        "install".into(),
        "big".into(),
    ];
    let script = format!(
        "{}; echo EXIT=$?; sleep 60",
        line.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let tmux = |a: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(a)
            .output()
            .expect("running tmux")
    };
    let started = tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ]);
    assert!(started.status.success(), "{started:?}");
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Every frame of the bar seen while the install still ran.
    let mut bars: Vec<String> = Vec::new();
    let last = loop {
        let s = screen();
        if !s.contains("EXIT=")
            && let Some(bar) = s
                .lines()
                .find(|l| l.contains("Downloading") && l.contains("ETA"))
        {
            bars.push(bar.to_owned());
        }
        if s.contains("EXIT=") {
            break s;
        }
        assert!(Instant::now() < deadline, "waiting for the install:\n{s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    tmux(&["kill-server"]);
    // A frame part-way: some bytes in, not all.
    let bar = bars
        .iter()
        .find(|b| !b.contains(" 0%") && !b.contains("100%"))
        .unwrap_or_else(|| panic!("no progress bar part-way through:\n{bars:?}\n{last}"));
    // Bytes, total, percentage, rate and ETA, under the status column.
    assert!(bar.contains("/771.64 KiB"), "{bar}");
    assert!(bar.contains('%') && bar.contains("/s"), "{bar}");
    assert!(bar.starts_with(" Downloading"), "{bar}");
    assert!(last.contains("EXIT=0"), "{last}");
    assert!(last.contains("Installed big 1.0.0"), "{last}");
}

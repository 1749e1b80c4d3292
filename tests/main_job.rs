//! The README's main-job command, `bash examples/demo.sh`, run as a test: a
//! maintainer bundles Debian's monero into `xmr`, publishes two versions and
//! serves them with `ipkg serve` on 127.0.0.1; a user with only the
//! `/ipns/k51…` name and the gateway address installs `xmr` by name, runs
//! it, upgrades, switches back by CID, removes it, and gets it again from the
//! command-not-found hook in a bash under tmux.
//!
//! The script uses this build (`IPKG`), `IPKG_NO_DEFAULT_SOURCES=1` and
//! loopback only. Needs monero, tmux and a C compiler (in .ci/run); without
//! them the test is skipped, except under CI.

mod support;

use std::path::Path;
use std::process::Command;

use support::{in_ci, ipkg_bin, temp_dir};

#[test]
fn the_demo_installs_xmr_by_name_through_ipns() {
    let missing: Vec<&str> = [
        ("monerod", "/usr/bin/monerod"),
        ("tmux", "/usr/bin/tmux"),
        ("cc", "/usr/bin/cc"),
    ]
    .into_iter()
    .filter(|(_, p)| !Path::new(p).exists())
    .map(|(n, _)| n)
    .collect();
    if !missing.is_empty() {
        assert!(
            !in_ci(),
            "missing under CI: {missing:?}; .ci/run must install them"
        );
        eprintln!("skipped: {missing:?} not installed");
        return;
    }
    let tmp = temp_dir("ipkg-main-job-");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("examples/demo.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("IPKG", ipkg_bin())
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .env("TMPDIR", tmp.path())
        .env("HOME", tmp.path())
        .output()
        .expect("running examples/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "demo.sh failed ({}):\n{all}",
        out.status
    );

    let host = Command::new("/usr/bin/monerod")
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&host.stdout).trim().to_owned();
    // Once after install, after upgrade, after switch, and from the hook.
    assert!(stdout.matches(version.as_str()).count() >= 4, "{all}");
    for expected in [
        "registry name: /ipns/k51",
        "gateway: http://127.0.0.1:",
        "Added registry `monero`",
        "Installed xmr 0.18.0+",
        "Upgraded xmr 0.18.0+",
        "Switched xmr 0.18.0+",
        "Removed xmr",
        "`xmr` is not installed. Install `xmr`",
        "exit=0",
        "ok: xmr bundled",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
    // Only loopback: every URL the script printed is 127.0.0.1.
    for url in all
        .split_whitespace()
        .filter(|w| w.contains("http://") || w.contains("https://"))
    {
        assert!(
            url.contains("http://127.0.0.1:"),
            "a non-loopback address: {url}"
        );
    }
    // The script cleaned up: `ipkg serve` is gone (its port is closed) and
    // no work dir is left in TMPDIR.
    let gateway = all
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .expect("the gateway address in the output");
    let addr: std::net::SocketAddr = gateway.parse().expect("a socket address");
    assert!(
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_err(),
        "`ipkg serve` still listens on {addr} after the demo"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "demo.sh left {left:?} behind");
}

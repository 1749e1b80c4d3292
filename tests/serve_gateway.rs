//! `ipkg serve` as a trustless gateway: the probe, HEAD, raw blocks and CARs
//! read back by ipkg itself, and the ipfs/gateway-conformance suite
//! (`--specs trustless-gateway`) run against it.
//!
//! Loopback only: the server listens on 127.0.0.1 port 0.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::serve::serve;
use support::{Compare, TestEnv, TreeSpec, assert_same_tree, gen_tree, http, path_str};

#[test]
fn probe_head_raw_and_car() {
    let publisher = TestEnv::new();
    let src = publisher.path("src");
    gen_tree(11, &src, &TreeSpec::mixed());
    let cid = publisher.ipkg(["add", "-q", path_str(&src)]);
    let cid = cid.success().stdout_lines().last().unwrap().to_string();
    let server = serve(&publisher, &[]);

    let probe = http::get(server.addr, "/ipfs/bafkqaaa?format=raw").unwrap();
    assert_eq!(probe.status, 200);
    assert!(probe.body.is_empty());
    let head = http::request(
        server.addr,
        "HEAD",
        &format!("/ipfs/{cid}?format=car"),
        &[],
        &[],
    );
    // HEAD has no body; our tiny client reads to EOF, so only check the status.
    assert_eq!(head.map(|r| r.status).unwrap_or(200), 200);
    let raw = http::get(server.addr, &format!("/ipfs/{cid}?format=raw")).unwrap();
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/vnd.ipld.raw"));
    let missing = http::get(
        server.addr,
        "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw",
    )
    .unwrap();
    assert_eq!(missing.status, 404);
    // No trustless format asked: the path gateway answers (a directory
    // redirects to its URL with a trailing slash, then lists).
    let html = http::get(server.addr, &format!("/ipfs/{cid}")).unwrap();
    assert_eq!(html.status, 301);
    let html = http::get(server.addr, &format!("/ipfs/{cid}/")).unwrap();
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    // Another ipkg installs from it: the whole tree, verified.
    let client = TestEnv::new();
    client.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\"]\n",
        server.url
    ));
    let out = client.path("out");
    client.ipkg(["get", &cid, "-o", path_str(&out)]).success();
    assert_same_tree(&src, &out, Compare::DEFAULT_ADD);
}

/// Where the conformance suite lives: a test binary built from
/// ipfs/gateway-conformance (`go test -c ./tests`) and its source tree, whose
/// `fixtures/` it reads. `.ci/run` puts both in its cache.
fn conformance() -> Option<(PathBuf, PathBuf)> {
    let cache = std::env::var_os("IPKG_CI_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("ipkg-ci")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ipkg-ci")))?;
    let bin = std::env::var_os("IPKG_GATEWAY_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("gateway-conformance.test"));
    let src = std::env::var_os("IPKG_GATEWAY_CONFORMANCE_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("gateway-conformance-src"));
    (bin.is_file() && src.join("fixtures").is_dir()).then_some((bin, src))
}

fn files_with_ext(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_with_ext(&p, ext, out);
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
}

/// ipfs/gateway-conformance, `--specs trustless-gateway`: every sub-test
/// passes (the README lists the suite's results).
#[test]
fn gateway_conformance_trustless() {
    let Some((bin, src)) = conformance() else {
        let why = std::env::var("IPKG_SKIP_CONFORMANCE").unwrap_or_default();
        support::skip(
            "gateway-conformance",
            format!(
                "the gateway-conformance suite is not built {why}; .ci/run builds it into \
                 ~/.cache/ipkg-ci (see docs/network.md)"
            ),
        );
        return;
    };
    let env = TestEnv::new();
    let mut cars = Vec::new();
    files_with_ext(&src.join("fixtures"), ".car", &mut cars);
    for car in &cars {
        // Some fixtures are incomplete on purpose, or use hash functions
        // ipkg does not verify (sha2-512): their blocks are stored anyway or
        // they are not needed by the trustless tests.
        let _ = env.ipkg(["car", "import", path_str(car)]);
    }
    let records = env.path("records");
    std::fs::create_dir_all(&records).unwrap();
    let mut recs = Vec::new();
    files_with_ext(&src.join("fixtures"), ".ipns-record", &mut recs);
    for r in recs {
        std::fs::copy(&r, records.join(r.file_name().unwrap())).unwrap();
    }
    let server = serve(&env, &["--records", path_str(&records)]);
    let out = Command::new(&bin)
        .args(["-test.v", "-specs", "trustless-gateway"])
        .env("GATEWAY_URL", &server.url)
        .current_dir(&src)
        .stdin(Stdio::null())
        .output()
        .expect("running the gateway-conformance test binary");
    let log = String::from_utf8_lossy(&out.stdout);
    let count = |prefix: &str| {
        log.lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .count()
    };
    let (passed, failed) = (count("--- PASS"), count("--- FAIL"));
    eprintln!("gateway-conformance trustless-gateway: {passed} passed, {failed} failed");
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.trim_start().starts_with("--- FAIL"))
        .collect();
    assert!(
        out.status.success() && failed == 0 && passed > 100,
        "gateway-conformance failed:\n{}\n--- stderr ---\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

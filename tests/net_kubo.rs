//! ipkg with real Kubo nodes: publish into node A (`publish --to kubo`),
//! install on a client whose only source is node B, which reaches A only
//! over loopback in a private swarm (content travels by bitswap, the name by
//! Kubo's LAN DHT); install through A's gateway with no daemon on the
//! client; installed packages pinned in Kubo under `ipkg/<name>@<version>`
//! and unpinned on remove.
//!
//! Loopback only: both nodes use `--profile=test` (swarm, API and gateway on
//! 127.0.0.1, no bootstrap, no mDNS) and a private swarm key
//! (`LIBP2P_FORCE_PNET=1`), so they talk to each other and nobody else.

mod support;

use std::path::{Path, PathBuf};

use support::{Kubo, TestEnv, kubo_available, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

/// A publisher whose Kubo is `kubo`, with `hello 1.0.0` published into it.
fn publish_into(kubo: &Kubo) -> (TestEnv, String) {
    let env = TestEnv::new();
    env.write_config(&format!(
        "kubo-api = \"{}\"\ngateways = []\n",
        kubo.api_multiaddr()
    ));
    env.ipkg(["key", "gen", "alice"]).success();
    let out = env.ipkg(["registry", "init", "main", "--key", "alice"]);
    let ipns = out
        .success()
        .stdout_trimmed()
        .trim_start_matches("/ipns/")
        .to_owned();
    let dir = examples().join("hello/1.0.0");
    let out = env.ipkg([
        "publish",
        path_str(&dir),
        "--registry",
        "main",
        "--to",
        "kubo",
    ]);
    assert!(
        out.success().stderr.contains("Pushed"),
        "{}",
        out.describe()
    );
    (env, ipns)
}

fn pins(kubo: &Kubo) -> String {
    kubo.ipfs(["pin", "ls", "--type=recursive", "--names"])
        .success()
        .stdout
        .clone()
}

#[test]
fn publish_on_a_install_on_b_over_bitswap() {
    if !kubo_available() {
        return;
    }
    let key = Kubo::swarm_key();
    let mut a = Kubo::init();
    a.start_private(&key);
    let mut b = Kubo::init();
    b.start_private(&key);
    b.connect(&a);

    let (_publisher, ipns) = publish_into(&a);
    assert!(pins(&a).contains("ipkg/registry/main"), "{}", pins(&a));

    let client = TestEnv::new();
    client.write_config(&format!(
        "kubo-api = \"{}\"\ngateways = []\ntimeout = \"20s\"\n",
        b.api_multiaddr()
    ));
    let out = client.ipkg(["registry", "add", "alice", &ipns]);
    assert!(
        out.success().stderr.contains("routing/get"),
        "{}",
        out.describe()
    );
    let out = client.ipkg(["install", "hello"]);
    out.success();
    assert!(client.prefix.join("hello").exists(), "{}", out.describe());
    // The blocks reached B by bitswap, from A.
    let stat = b.ipfs(["bitswap", "stat", "--enc=json"]);
    let stat: serde_json::Value = serde_json::from_str(stat.success().stdout_trimmed()).unwrap();
    assert!(stat["BlocksReceived"].as_u64().unwrap_or(0) > 0, "{stat}");
    // Installed means seeded: B pins it under a recognisable name.
    assert!(pins(&b).contains("ipkg/hello@1.0.0"), "{}", pins(&b));
    client.ipkg(["remove", "hello"]).success();
    assert!(!pins(&b).contains("ipkg/hello@1.0.0"), "{}", pins(&b));
}

#[test]
fn install_through_a_kubo_gateway_without_a_daemon() {
    if !kubo_available() {
        return;
    }
    let a = Kubo::start_daemon();
    let (_publisher, ipns) = publish_into(&a);
    let client = TestEnv::new();
    client.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"http://{}\"]\n",
        a.gateway_addr()
    ));
    client.ipkg(["registry", "add", "alice", &ipns]).success();
    let out = client.ipkg(["install", "hello"]);
    out.success();
    assert!(client.prefix.join("hello").exists(), "{}", out.describe());
}

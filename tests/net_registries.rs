//! Registries by name over the network: a publisher's `ipkg serve` serves
//! its registry (blocks and IPNS record); a client subscribes
//! (`ipkg registry add`), installs by name, updates, and refuses rollbacks.
//!
//! Loopback only: `ipkg serve` and the fake gateways listen on 127.0.0.1,
//! and every client config names only them (`kubo-api = "off"`).

mod support;

use std::path::{Path, PathBuf};

use support::gateway::{FakeGateway, Mode};
use support::serve::serve;
use support::{TestEnv, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

/// A publisher with key `alice`, registry `main`, and `hello 1.0.0`
/// published. Returns the env and the registry's IPNS name.
fn publisher() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.ipkg(["key", "gen", "alice"]).success();
    let out = env.ipkg(["registry", "init", "main", "--key", "alice"]);
    let ipns = out
        .success()
        .stdout_trimmed()
        .trim_start_matches("/ipns/")
        .to_owned();
    publish(&env, "1.0.0");
    (env, ipns)
}

fn publish(env: &TestEnv, version: &str) {
    let dir = examples().join("hello").join(version);
    env.ipkg(["publish", path_str(&dir), "--registry", "main"])
        .success();
}

fn record_of(env: &TestEnv) -> Vec<u8> {
    std::fs::read(env.prefix.join(".ipkg/registries/main/ipns-record")).unwrap()
}

fn client(gateways: &[&str]) -> TestEnv {
    let env = TestEnv::new();
    let list: Vec<String> = gateways.iter().map(|g| format!("{g:?}")).collect();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [{}]\ntimeout = \"2s\"\nretries = 0\n",
        list.join(", ")
    ));
    env
}

#[test]
fn subscribe_install_update() {
    let (publisher, ipns) = publisher();
    let server = serve(&publisher, &[]);
    let env = client(&[&server.url]);

    let out = env.ipkg(["registry", "add", "alice", &ipns]);
    out.success();
    assert!(
        out.stdout.contains("alice: hello 1.0.0"),
        "{}",
        out.describe()
    );
    let list = env.ipkg(["registry", "list"]);
    assert!(
        list.success()
            .stdout
            .contains(&format!("alice subscribed /ipns/{ipns}")),
        "{}",
        list.describe()
    );

    // Install by bare name and by ALIAS/name.
    let out = env.ipkg(["install", "hello"]);
    out.success();
    assert!(env.prefix.join("hello").exists(), "{}", out.describe());

    // A new release: `ipkg update` shows it.
    publish(&publisher, "1.1.0");
    let out = env.ipkg(["update"]);
    out.success();
    assert!(
        out.stdout.contains("alice: hello 1.1.0"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("sequence 1 -> 2"), "{}", out.describe());
    // The command-not-found index includes the subscribed registry.
    assert!(
        out.stderr.contains("Indexed 1 command from 1 registry"),
        "{}",
        out.describe()
    );
    // Nothing new: fresh.
    let out = env.ipkg(["update"]);
    assert!(out.success().stderr.contains("Fresh"), "{}", out.describe());

    // Removing the subscription forgets it.
    env.ipkg(["registry", "remove", "alice"]).success();
    let list = env.ipkg(["registry", "list"]);
    assert!(!list.success().stdout.contains("alice"));
}

/// A gateway that serves an older IPNS record (a replay of sequence 1 after
/// sequence 2 was seen) is refused and named; the next source is used.
/// With only that gateway left, the update fails and the index stays.
#[test]
fn an_older_record_is_refused_as_a_rollback() {
    let (publisher, ipns) = publisher();
    let old_record = record_of(&publisher);
    let server = serve(&publisher, &[]);
    // The replaying gateway has every block the publisher has.
    let car = publisher.path("reg.car");
    publisher
        .ipkg(["registry", "export", "main", "-o", path_str(&car)])
        .success();
    let replay = FakeGateway::start(support::gateway::blocks_of_car(&car), Mode::Good);
    replay.set_record(&ipns, old_record);

    let env = client(&[&server.url]);
    env.ipkg(["registry", "add", "alice", &ipns]).success();
    publish(&publisher, "1.1.0");
    env.ipkg(["update"]).success();

    // Now the replaying gateway first, then the honest one.
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\", \"{}\"]\ntimeout = \"2s\"\n",
        replay.url(),
        server.url
    ));
    let out = env.ipkg(["update"]);
    out.success();
    assert!(
        out.stderr.contains(&replay.url()) && out.stderr.contains("rollback"),
        "{}",
        out.describe()
    );

    // Only the replaying gateway: refused, and the subscription keeps 2.
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\"]\ntimeout = \"2s\"\n",
        replay.url()
    ));
    let out = env.ipkg(["update"]);
    // The cached record (sequence 2) is what resolution falls back to.
    let list = env.ipkg(["registry", "list"]);
    assert!(
        list.stdout.contains("sequence=2"),
        "{}\n{}",
        out.describe(),
        list.describe()
    );
    assert!(out.stderr.contains("rollback"), "{}", out.describe());
}

/// The same package name in two subscribed registries: a bare name is an
/// error naming both; `ALIAS/name` picks one.
#[test]
fn a_name_in_two_registries_is_ambiguous() {
    let (p1, k1) = publisher();
    let (p2, k2) = publisher();
    let s1 = serve(&p1, &[]);
    let s2 = serve(&p2, &[]);
    let env = client(&[&s1.url, &s2.url]);
    env.ipkg(["registry", "add", "one", &k1]).success();
    env.ipkg(["registry", "add", "two", &k2]).success();
    let out = env.ipkg(["install", "hello"]);
    out.failure();
    assert!(
        out.stderr.contains("one") && out.stderr.contains("two"),
        "{}",
        out.describe()
    );
    env.ipkg(["install", "two/hello"]).success();
}

/// Installing `/ipns/k51…/hello` needs no `registry add`: the registry is
/// subscribed (untrusted) on first use.
#[test]
fn install_by_key_path() {
    let (publisher, ipns) = publisher();
    let server = serve(&publisher, &[]);
    let env = client(&[&server.url]);
    let out = env.ipkg(["install", &format!("/ipns/{ipns}/hello")]);
    out.success();
    let list = env.ipkg(["registry", "list"]);
    assert!(
        list.success().stdout.contains("untrusted"),
        "{}",
        list.describe()
    );
    // Untrusted registries are not searched for bare names.
    let out = env.ipkg(["install", "hello@1.0.0", "--dry-run"]);
    out.failure();
}

/// Delegated routing: `publish --to routers` PUTs the record; a client
/// whose only name source is the router resolves through it (blocks from
/// the publisher's `ipkg serve`).
#[test]
fn delegated_routing_put_and_get() {
    let (publisher, ipns) = publisher();
    let router = FakeGateway::start(Vec::new(), Mode::Good);
    publisher.write_config(&format!(
        "kubo-api = \"off\"\nrouters = [\"{}\"]\n",
        router.url()
    ));
    publish(&publisher, "1.1.0");
    let out = publisher.ipkg([
        "publish",
        "--registry",
        "main",
        "--to",
        "routers",
        path_str(&examples().join("hello/1.1.0")),
    ]);
    assert!(
        out.success()
            .stderr
            .contains("IPNS record to delegated routing"),
        "{}",
        out.describe()
    );
    assert!(router.record(&ipns).is_some());

    // Blocks only (no IPNS records) from this gateway: names come from the router.
    let car = publisher.path("reg.car");
    publisher
        .ipkg(["registry", "export", "main", "-o", path_str(&car)])
        .success();
    let blocks = FakeGateway::start(support::gateway::blocks_of_car(&car), Mode::Good);
    let env = TestEnv::new();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\"]\nrouters = [\"{}\"]\n",
        blocks.url(),
        router.url()
    ));
    let out = env.ipkg(["registry", "add", "alice", &ipns]);
    assert!(
        out.success().stderr.contains("delegated routing"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("hello 1.1.0"), "{}", out.describe());
}

/// A validly signed IPNS record with a *higher* sequence that points back
/// at an older index (a buggy or compromised publisher, a replayed root): the
/// index's own sequence went down, so the update is refused as a rollback
/// and the subscription keeps the newer index.
#[test]
fn a_rolled_back_index_is_refused() {
    use std::time::Duration;
    let (publisher, ipns) = publisher();
    let reg = publisher.prefix.join(".ipkg/registries/main/registry.toml");
    let old_root = std::fs::read_to_string(&reg)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("root = ")
                .map(|r| r.trim_matches('"').to_owned())
        })
        .unwrap();
    publish(&publisher, "1.1.0");
    let server = serve(&publisher, &[]);
    let env = client(&[&server.url]);
    env.ipkg(["registry", "add", "alice", &ipns]).success();

    // Sign a record with sequence 9 pointing at the sequence-1 index.
    let keys = ipkg::ops::publish::keystore::KeyStore::at(publisher.config.join("ipkg/keys"));
    let key = keys.load("alice").expect("the publisher's key");
    let rec = ipkg::names::ipns::Record::create(
        &key,
        &format!("/ipfs/{old_root}"),
        9,
        Duration::from_secs(3600),
        Duration::from_secs(60),
    )
    .unwrap();
    let car = publisher.path("reg.car");
    publisher
        .ipkg(["registry", "export", "main", "-o", path_str(&car)])
        .success();
    let evil = FakeGateway::start(support::gateway::blocks_of_car(&car), Mode::Good);
    evil.set_record(&ipns, rec.to_bytes());
    // The old root block is not in the export of the new index: add it.
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\", \"{}\"]\ntimeout = \"2s\"\n",
        evil.url(),
        server.url
    ));
    let out = env.ipkg(["update"]);
    out.failure();
    assert!(out.stderr.contains("rollback"), "{}", out.describe());
    let list = env.ipkg(["registry", "list"]);
    assert!(list.stdout.contains("sequence=2"), "{}", list.describe());
}

//! Registries by DNSLink domain, resolved by a real DNS server (dnsmasq on
//! 127.0.0.1): install by `example.org/hello`, the domain → key binding
//! pinned on first use, chains of DNSLink domains.
//!
//! Loopback only: dnsmasq listens on 127.0.0.1 with no upstream servers;
//! `example.org` and friends never leave this machine.

mod support;

use std::path::{Path, PathBuf};

use support::dns::{Dnsmasq, dnsmasq_available};
use support::serve::serve;
use support::{TestEnv, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

fn new_publisher() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.ipkg(["key", "gen", "alice"]).success();
    let out = env.ipkg(["registry", "init", "main", "--key", "alice"]);
    let ipns = out
        .success()
        .stdout_trimmed()
        .trim_start_matches("/ipns/")
        .to_owned();
    let dir = examples().join("hello/1.0.0");
    env.ipkg(["publish", path_str(&dir), "--registry", "main"])
        .success();
    (env, ipns)
}

fn client(gateway: &str, dns: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{gateway}\"]\ndns-servers = [\"{dns}\"]\ntimeout = \"2s\"\n"
    ));
    env
}

#[test]
fn install_by_dnslink_domain() {
    if !dnsmasq_available() {
        return;
    }
    let (publisher, ipns) = new_publisher();
    let server = serve(&publisher, &[]);
    let link = format!("dnslink=/ipns/{ipns}");
    // `apps.example.org` points at `example.org`, which names the key.
    let dns = Dnsmasq::start(&[
        ("_dnslink.example.org", &link),
        ("_dnslink.apps.example.org", "dnslink=/ipns/example.org"),
        (
            "_dnslink.loop.example.org",
            "dnslink=/ipns/loop.example.org",
        ),
    ]);
    let env = client(&server.url, &dns.server());
    let out = env.ipkg(["install", "example.org/hello"]);
    out.success();
    assert!(env.prefix.join("hello").exists(), "{}", out.describe());

    let out = env.ipkg(["registry", "add", "apps", "apps.example.org"]);
    out.success();
    let list = env.ipkg(["registry", "list"]);
    assert!(
        list.success().stdout.contains(&format!(
            "apps subscribed /ipns/{ipns} dnslink=apps.example.org"
        )),
        "{}",
        list.describe()
    );
    // A DNSLink that points at itself ends at the recursion limit.
    let out = env.ipkg(["registry", "add", "loop", "loop.example.org"]);
    assert!(
        out.failure().stderr.contains("DNSLink hops"),
        "{}",
        out.describe()
    );
    // No record at all.
    let out = env.ipkg(["registry", "add", "none", "none.example.org"]);
    assert!(
        out.failure().stderr.contains("none.example.org"),
        "{}",
        out.describe()
    );
}

/// The domain → key binding is pinned when the registry is added: a DNSLink
/// that later names another key is refused.
#[test]
fn a_dnslink_that_changes_key_is_refused() {
    if !dnsmasq_available() {
        return;
    }
    let (publisher, ipns) = new_publisher();
    let (other, other_ipns) = new_publisher();
    let server = serve(&publisher, &[]);
    let _other_server = serve(&other, &[]);
    let dns = Dnsmasq::start(&[("_dnslink.example.org", &format!("dnslink=/ipns/{ipns}"))]);
    let env = client(&server.url, &dns.server());
    env.ipkg(["registry", "add", "ex", "example.org"]).success();
    drop(dns);
    let dns = Dnsmasq::start(&[(
        "_dnslink.example.org",
        &format!("dnslink=/ipns/{other_ipns}"),
    )]);
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\"]\ndns-servers = [\"{}\"]\ntimeout = \"2s\"\n",
        server.url,
        dns.server()
    ));
    let out = env.ipkg(["update"]);
    out.failure();
    assert!(
        out.stderr.contains("pinned") && out.stderr.contains(&other_ipns),
        "{}",
        out.describe()
    );
}

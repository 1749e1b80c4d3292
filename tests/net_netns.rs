//! Across a real network boundary: a publisher host and a client host, each
//! in its own network namespace, joined by a veth pair. The publisher runs
//! `ipkg serve` and a DNS server (dnsmasq) for its domain; the client
//! installs `example.org/hello` knowing only the DNS server's address.
//!
//! Traffic stays inside the pair: the namespaces have no other interface
//! and no default route, and their addresses are from 192.0.2.0/24
//! (TEST-NET-1, documentation only). Needs root (`ip netns`): skipped with
//! a printed reason outside CI, a failure under CI.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::dns::Dnsmasq;
use support::netns::NetPair;
use support::{TestEnv, path_str, run};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

#[test]
fn install_by_dnslink_across_namespaces() {
    let Some(net) = NetPair::create("dl") else {
        return;
    };
    let publisher = TestEnv::new();
    publisher.ipkg(["key", "gen", "alice"]).success();
    let out = publisher.ipkg(["registry", "init", "main", "--key", "alice"]);
    let ipns = out
        .success()
        .stdout_trimmed()
        .trim_start_matches("/ipns/")
        .to_owned();
    let dir = examples().join("hello/1.0.0");
    publisher
        .ipkg(["publish", path_str(&dir), "--registry", "main"])
        .success();

    // The publisher host: a gateway and a name server on 192.0.2.1.
    let listen = format!("{}:8080", net.a_addr);
    let serve_cmd = publisher.ipkg_command(["serve", "--listen", &listen]);
    let mut server = NetPair::exec(&net.a, &serve_cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting ipkg serve in the publisher namespace");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("http://{listen}"));
    let _dns = Dnsmasq::start_on(
        Some(&net.a),
        net.a_addr,
        5353,
        &[("_dnslink.example.org", &format!("dnslink=/ipns/{ipns}"))],
    );

    // The client host knows only the name server and the gateway.
    let client = TestEnv::new();
    client.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"http://{listen}\"]\ndns-servers = [\"{}:5353\"]\ntimeout = \"5s\"\n",
        net.a_addr
    ));
    let install = client.ipkg_command(["install", "example.org/hello"]);
    let out = run(NetPair::exec(&net.b, &install), None);
    let _ = server.kill();
    let _ = server.wait();
    out.success();
    assert!(client.prefix.join("hello").exists(), "{}", out.describe());
}

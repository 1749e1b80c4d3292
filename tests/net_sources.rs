//! Network sources: content fetched from trustless gateways and Kubo's RPC,
//! every block verified, and gateways that lie, break off, hang or fail
//! skipped with a message naming them.
//!
//! All traffic is on loopback: the gateways are test servers
//! (`support::gateway`) or real Kubo nodes started by the test.

mod support;

use support::gateway::{FakeGateway, Mode, blocks_of_car};
use support::{
    Compare, Kubo, TestEnv, TreeSpec, assert_same_tree, gen_tree, kubo_available, path_str,
};

/// A publisher's tree added to its own store and exported as a CAR: the
/// blocks a gateway serves. Returns (root CID, blocks in DAG order).
fn content(env: &TestEnv, seed: u64) -> (String, Vec<(ipkg::content::Cid, Vec<u8>)>) {
    let src = env.path("src");
    gen_tree(seed, &src, &TreeSpec::mixed());
    let out = env.ipkg(["add", "-q", path_str(&src)]);
    let cid = out.success().stdout_lines().last().unwrap().to_string();
    let car = env.path("x.car");
    env.ipkg(["car", "export", &cid, "-o", path_str(&car)])
        .success();
    (cid, blocks_of_car(&car))
}

fn client(gateways: &[String]) -> TestEnv {
    let env = TestEnv::new();
    let list: Vec<String> = gateways.iter().map(|g| format!("{g:?}")).collect();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [{}]\ntimeout = \"1s\"\nretries = 1\n",
        list.join(", ")
    ));
    env
}

#[test]
fn fetches_from_a_good_gateway_with_one_car() {
    let publisher = TestEnv::new();
    let (cid, blocks) = content(&publisher, 1);
    let gw = FakeGateway::start(blocks, Mode::Good);
    let env = client(&[gw.url()]);
    let out = env.path("out");
    env.ipkg(["get", &cid, "-o", path_str(&out)]).success();
    assert_same_tree(&publisher.path("src"), &out, Compare::DEFAULT_ADD);
    // One raw root block, then one CAR for the rest.
    assert!(gw.hits.load(std::sync::atomic::Ordering::Relaxed) <= 3);
    // A second get is served from the store: no request.
    let before = gw.hits.load(std::sync::atomic::Ordering::Relaxed);
    env.ipkg(["get", &cid, "-o", path_str(&env.path("out2"))])
        .success();
    assert_eq!(gw.hits.load(std::sync::atomic::Ordering::Relaxed), before);
}

/// Each kind of bad gateway comes first; the good one after it is used and
/// the user is told which gateway failed and why.
#[test]
fn bad_gateways_are_skipped_and_named() {
    let publisher = TestEnv::new();
    let (cid, blocks) = content(&publisher, 2);
    let good = FakeGateway::start(blocks.clone(), Mode::Good);
    for (mode, why) in [
        (Mode::FlipByte, "does not match"),
        (Mode::Hang, "timed out"),
        (Mode::NotFound, "does not have"),
        (Mode::ServerError, "HTTP 500"),
    ] {
        let bad = FakeGateway::start(blocks.clone(), mode);
        let env = client(&[bad.url(), good.url()]);
        let out = env.path("out");
        let res = env.ipkg(["get", &cid, "-o", path_str(&out)]);
        res.success();
        // Either it was asked and named with the reason, or it lost the
        // race for the first block (`ops::fetch`) and was asked nothing else.
        let asked = bad.hits.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            (res.stderr.contains(&bad.url()) && res.stderr.contains(why)) || asked <= 1,
            "{mode:?}: asked {asked} times\n{}",
            res.describe()
        );
        assert_same_tree(&publisher.path("src"), &out, Compare::DEFAULT_ADD);
    }
}

/// A CAR that breaks off is not fatal: the blocks it did deliver stay, and
/// the rest come block by block (here from the next gateway, since this one
/// has no single blocks either).
#[test]
fn a_truncated_car_falls_back_to_single_blocks() {
    let publisher = TestEnv::new();
    let (cid, blocks) = content(&publisher, 3);
    let truncating = FakeGateway::start(blocks.clone(), Mode::TruncateCar);
    let good = FakeGateway::start(blocks, Mode::Good);
    let env = client(&[truncating.url(), good.url()]);
    let out = env.path("out");
    let res = env.ipkg(["get", &cid, "-o", path_str(&out)]);
    res.success();
    // Named, or it lost the race for the first block and was not asked again.
    let asked = truncating.hits.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        res.stderr.contains(&truncating.url()) || asked <= 1,
        "asked {asked} times\n{}",
        res.describe()
    );
    assert_same_tree(&publisher.path("src"), &out, Compare::DEFAULT_ADD);
}

/// With no good source left: a clear error listing every source, exit code
/// 1, and nothing written.
#[test]
fn no_good_source_is_a_clear_error() {
    let publisher = TestEnv::new();
    let (cid, blocks) = content(&publisher, 4);
    let liar = FakeGateway::start(blocks.clone(), Mode::FlipByte);
    let broken = FakeGateway::start(blocks, Mode::ServerError);
    let env = client(&[liar.url(), broken.url()]);
    let out = env.path("out");
    let res = env.ipkg(["get", &cid, "-o", path_str(&out)]);
    res.failure();
    assert!(
        res.stderr.contains(&format!("cannot fetch `{cid}`")),
        "{}",
        res.describe()
    );
    assert!(
        res.stderr.contains(&liar.url()) && res.stderr.contains(&broken.url()),
        "{}",
        res.describe()
    );
    assert!(!out.exists());
}

/// A gateway that lies once is not asked again in the same operation, even
/// for other blocks.
#[test]
fn a_lying_gateway_is_dropped_for_the_operation() {
    let publisher = TestEnv::new();
    let (cid, blocks) = content(&publisher, 5);
    let liar = FakeGateway::start(blocks.clone(), Mode::FlipByte);
    let env = client(&[liar.url()]);
    let res = env.ipkg(["get", &cid, "-o", path_str(&env.path("out"))]);
    res.failure();
    // The first answer (the root block) was bad; nothing more was asked.
    assert_eq!(
        liar.hits.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "{}",
        res.describe()
    );
}

/// Kubo's RPC API as a source: `--api` names it, blocks come from
/// `dag/export`, verified.
#[test]
fn fetches_from_kubo_rpc() {
    if !kubo_available() {
        return;
    }
    let publisher = TestEnv::new();
    let (cid, _) = content(&publisher, 6);
    let kubo = Kubo::start_daemon();
    let car = publisher.path("x.car");
    kubo.ipfs(["dag", "import", path_str(&car)]).success();
    let env = client(&[]);
    let out = env.path("out");
    env.ipkg([
        "--api",
        &kubo.api_multiaddr(),
        "get",
        &cid,
        "-o",
        path_str(&out),
    ])
    .success();
    assert_same_tree(&publisher.path("src"), &out, Compare::DEFAULT_ADD);

    // Found as Kubo's clients find it: `$IPFS_PATH/api`.
    let mut env = TestEnv::new();
    env.write_config("gateways = []\n");
    env.set_env("IPFS_PATH", kubo.repo());
    let out = env.path("out");
    env.ipkg(["get", &cid, "-o", path_str(&out)]).success();
    assert_same_tree(&publisher.path("src"), &out, Compare::DEFAULT_ADD);
}

/// Kubo's own gateway is a trustless gateway too.
#[test]
fn fetches_from_kubo_gateway() {
    if !kubo_available() {
        return;
    }
    let publisher = TestEnv::new();
    let (cid, _) = content(&publisher, 7);
    let kubo = Kubo::start_daemon();
    kubo.ipfs(["dag", "import", path_str(&publisher.path("x.car"))])
        .success();
    let env = client(&[format!("http://{}", kubo.gateway_addr())]);
    let out = env.path("out");
    env.ipkg(["get", &cid, "-o", path_str(&out)]).success();
    assert_same_tree(&publisher.path("src"), &out, Compare::DEFAULT_ADD);
}

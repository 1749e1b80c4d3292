//! Kubo compatibility: `ipkg add` gives the CIDs Kubo 0.42 gives, CAR files
//! move between the two in both directions, and `ipkg get` gives back the
//! exact tree.
//!
//! Each `tree_*` test generates one random tree (see `support::tree`; the seed
//! is in the test's name) and checks, for both import profiles:
//!
//! - `ipkg add -q --profile unixfs-v0-2015 DIR` = `ipfs add -r -Q DIR` in a repo
//!   with Kubo's default import settings;
//! - `ipkg add -q --profile unixfs-v1-2025 DIR` = `ipfs add -r -Q DIR` in a repo
//!   made with `ipfs init --profile=test,unixfs-v1-2025`;
//! - with `--hidden --preserve-mode` too, and then `ipkg get` of that CID
//!   reproduces the tree exactly (bytes, symlinks, empty dirs, exec bits).
//!
//! Kubo 0.42 behaviours these tests pin down (checked by hand against
//! `ipfs add`):
//! - `--cid-version=1` turns raw leaves on unless `--raw-leaves` is given
//!   explicitly (a repo with Kubo's default, unset, import config);
//! - `--preserve-mode` turns raw leaves off when they were not asked for, and
//!   is an error ("raw-leaves can't be used with UnixFS metadata") when they
//!   were, by flag or by config: so under the v1-2025 config (raw leaves on)
//!   Kubo needs `--preserve-mode --raw-leaves=false`, and the tests pass the
//!   same flags to ipkg;
//! - hidden names are skipped without `--hidden`; symlinks are stored as
//!   UnixFS symlinks, never followed; `ipfs get` applies stored modes.
//!
//! The Kubo side hashes with `-n` (nothing written, much faster) except with
//! `--preserve-mode` on a directory, where Kubo 0.42's `-n` prints the CID and
//! then exits 1 trying to read back the root it did not store.
//!
//! Needs `ipfs` on PATH: without it the tests print `skipped: ipfs not on PATH`
//! and pass, except under CI (`CI` set), where they fail.

mod support;

use std::path::{Path, PathBuf};

use support::tree::{Rng, V0_CHUNK, V0_LINKS};
use support::{
    Compare, Kubo, TestEnv, TreeSpec, assert_same_tree, gen_tree, http, kubo_available, path_str,
};

const V0: &str = "unixfs-v0-2015";
const V1: &str = "unixfs-v1-2025";

/// Two Kubo repos, one per profile.
struct Kubos {
    v0: Kubo,
    v1: Kubo,
}

impl Kubos {
    fn new() -> Kubos {
        Kubos {
            v0: Kubo::init(),
            v1: Kubo::init_with_profiles(&[V1]),
        }
    }

    fn for_profile(&self, profile: &str) -> &Kubo {
        match profile {
            V0 => &self.v0,
            V1 => &self.v1,
            other => panic!("no Kubo repo for profile {other}"),
        }
    }
}

/// `ipkg add -q ARGS… DIR`, which must print exactly one CID.
fn ipkg_add(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["add", "-q"];
    all.extend_from_slice(args);
    all.push(path_str(dir));
    let out = env.ipkg(&all);
    out.success();
    let lines = out.stdout_lines();
    assert_eq!(
        lines.len(),
        1,
        "`{}` should print one CID, got:\n{}",
        out.command,
        out.describe()
    );
    lines[0].to_string()
}

/// Assert `ipkg add -q IPKG_ARGS DIR` = `ipfs add -r -Q KUBO_ARGS DIR`.
#[track_caller]
fn assert_same_cid(
    env: &TestEnv,
    kubo: &Kubo,
    dir: &Path,
    ipkg_args: &[&str],
    kubo_args: &[&str],
) -> String {
    let mut args = kubo_args.to_vec();
    let kubo_n_fails = kubo_args.contains(&"--preserve-mode") && dir.is_dir();
    if !kubo_n_fails && !args.contains(&"-n") {
        args.push("-n");
    }
    let want = kubo.add(dir, &args);
    let got = ipkg_add(env, dir, ipkg_args);
    assert_eq!(
        got,
        want,
        "CID mismatch for {}\n  ipkg add -q {}\n  ipfs add -r -Q {}",
        dir.display(),
        ipkg_args.join(" "),
        kubo_args.join(" "),
    );
    got
}

/// `ipkg get CID -o NAME` (in the scratch dir) reproduces `dir` per `cmp`.
#[track_caller]
fn assert_get_gives_back(
    env: &TestEnv,
    cid: &str,
    dir: &Path,
    name: impl AsRef<Path>,
    cmp: Compare,
) {
    let out = env.path(name);
    env.ipkg(["get", cid, "-o", path_str(&out)]).success();
    assert_same_tree(dir, &out, cmp);
}

/// Generate the tree for `seed` under the env's scratch dir.
fn tree(env: &TestEnv, seed: u64, spec: &TreeSpec) -> PathBuf {
    let dir = env.path(format!("{}-{seed}", spec.name));
    let stats = gen_tree(seed, &dir, spec);
    eprintln!("tree {} seed {seed}: {stats:?}", spec.name);
    dir
}

/// The flags that keep everything (hidden names and modes). Under v1-2025
/// raw leaves must be turned off explicitly for `--preserve-mode` (see the
/// module doc).
fn full_flags(profile: &str) -> &'static [&'static str] {
    match profile {
        V1 => &["--hidden", "--preserve-mode", "--raw-leaves=false"],
        _ => &["--hidden", "--preserve-mode"],
    }
}

/// The per-tree checks described in the module doc.
fn check_tree(seed: u64, spec: TreeSpec) {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let dir = tree(&env, seed, &spec);
    for profile in [V0, V1] {
        let kubo = kubos.for_profile(profile);
        let cid = assert_same_cid(&env, kubo, &dir, &["--profile", profile], &[]);
        // What a default add keeps comes back.
        assert_get_gives_back(
            &env,
            &cid,
            &dir,
            format!("get-{profile}"),
            Compare::DEFAULT_ADD,
        );

        // Everything, modes included, comes back exactly.
        let full = full_flags(profile);
        let mut ipkg_args = vec!["--profile", profile];
        ipkg_args.extend(full);
        let cid = assert_same_cid(&env, kubo, &dir, &ipkg_args, full);
        assert_get_gives_back(
            &env,
            &cid,
            &dir,
            format!("get-{profile}-full"),
            Compare::EXACT,
        );
    }
}

#[test]
fn tree_mixed_1() {
    check_tree(1, TreeSpec::mixed());
}

#[test]
fn tree_mixed_2() {
    check_tree(2, TreeSpec::mixed());
}

#[test]
fn tree_mixed_3() {
    check_tree(3, TreeSpec::mixed());
}

#[test]
fn tree_chunk_boundaries_4() {
    check_tree(4, TreeSpec::chunk_boundaries());
}

#[test]
fn tree_deep_5() {
    check_tree(5, TreeSpec::deep());
}

#[test]
fn tree_empty_6() {
    check_tree(6, TreeSpec::empty());
}

#[test]
fn tree_hidden_heavy_7() {
    check_tree(7, TreeSpec::hidden_heavy());
}

#[test]
fn tree_sharded_8() {
    check_tree(8, TreeSpec::sharded());
}

#[test]
fn tree_v0_hamt_boundary_at_9() {
    check_tree(9, TreeSpec::v0_hamt_boundary(false));
}

#[test]
fn tree_v0_hamt_boundary_over_10() {
    check_tree(10, TreeSpec::v0_hamt_boundary(true));
}

#[test]
fn tree_v1_hamt_boundary_at_11() {
    check_tree(11, TreeSpec::v1_hamt_boundary(false));
}

#[test]
fn tree_v1_hamt_boundary_over_12() {
    check_tree(12, TreeSpec::v1_hamt_boundary(true));
}

/// The ~45 MB file one byte past 174 × 256 KiB, the first v0 file with two
/// levels of links. Hashed with `--only-hash` on both sides (nothing stored),
/// then added for real once to check `ipkg get`.
#[test]
fn tree_big_13() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let dir = tree(&env, 13, &TreeSpec::big());
    for profile in [V0, V1] {
        assert_same_cid(
            &env,
            kubos.for_profile(profile),
            &dir,
            &["-n", "--profile", profile],
            &["-n"],
        );
    }
    let cid = assert_same_cid(
        &env,
        &kubos.v0,
        &dir,
        &["--profile", V0, "--preserve-mode"],
        &["--preserve-mode"],
    );
    assert_get_gives_back(&env, &cid, &dir, "get", Compare::EXACT);
}

/// Each override flag means what Kubo's flag of the same name means, on top of
/// either profile.
#[test]
fn overrides_match_kubo_flags() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let dir = tree(&env, 14, &TreeSpec::mixed());
    let chunked = tree(&env, 15, &TreeSpec::chunk_boundaries());
    let cases: &[(&Path, &[&str])] = &[
        (&dir, &["--cid-version=1"]),
        (&dir, &["--cid-version=0"]),
        (&dir, &["--raw-leaves"]),
        (&dir, &["--raw-leaves=false"]),
        (&dir, &["--cid-version=1", "--raw-leaves=false"]),
        (&dir, &["--hidden"]),
        (&dir, &["--preserve-mode"]),
        (&dir, &["--hidden", "--preserve-mode", "--cid-version=1"]),
        (&chunked, &["--chunker=size-65536"]),
        (&chunked, &["--chunker=size-1048576"]),
        (&chunked, &["--chunker=size-262144", "--raw-leaves"]),
    ];
    for profile in [V0, V1] {
        let kubo = kubos.for_profile(profile);
        for (dir, flags) in cases {
            if profile == V1 && flags.contains(&"--cid-version=0") {
                // CIDv0 with raw leaves from the v1 config is a mix Kubo
                // accepts but no one should use; not part of the contract.
                continue;
            }
            let mut flags = flags.to_vec();
            if profile == V1 && flags.contains(&"--preserve-mode") {
                flags.push("--raw-leaves=false");
            }
            let mut ipkg_args = vec!["--profile", profile];
            ipkg_args.extend(ipkg_flags(&flags));
            assert_same_cid(&env, kubo, dir, &ipkg_args, &flags);
        }
    }
}

/// ipkg spells `--cid-version N` and `--chunker size-N` with a space as well;
/// use both spellings across the cases.
fn ipkg_flags<'a>(flags: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for f in flags {
        match f.split_once('=') {
            Some((k @ ("--cid-version" | "--chunker"), v)) => {
                out.push(k);
                out.push(v);
            }
            _ => out.push(f),
        }
    }
    out
}

/// Small chunks reach the link-count boundaries cheaply: 174 and 1024 links
/// per node, and a third level for v0 (174 × 174 chunks).
#[test]
fn link_count_boundaries_with_small_chunks() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let dir = tree(&env, 16, &TreeSpec::small_chunk_boundaries(256));
    for profile in [V0, V1] {
        let cid = assert_same_cid(
            &env,
            kubos.for_profile(profile),
            &dir,
            &["--profile", profile, "--chunker", "size-256"],
            &["--chunker=size-256"],
        );
        assert_get_gives_back(
            &env,
            &cid,
            &dir,
            format!("get-{profile}"),
            Compare::DEFAULT_ADD,
        );
    }
}

/// A single file (not a directory) gets the same CID too.
#[test]
fn single_files_match_kubo() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let mut rng = Rng::new(17);
    for size in [0, 1, V0_CHUNK + 1, V0_LINKS * 1024 + 1] {
        let file = env.path(format!("file-{size}"));
        support::tree::write_random_file(&file, rng.next_u64(), size);
        for profile in [V0, V1] {
            assert_same_cid(
                &env,
                kubos.for_profile(profile),
                &file,
                &["--profile", profile, "--chunker", "size-1024"],
                &["--chunker=size-1024"],
            );
        }
    }
}

/// Without `-q`, `ipkg add` prints Kubo's `added <CID> <path>` line for every
/// file and directory (order aside); `-r` is accepted and changes nothing.
#[test]
fn added_lines_match_kubo() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let dir = tree(&env, 21, &TreeSpec::mixed());
    let sorted = |o: &support::Output| {
        let mut lines: Vec<String> = o.stdout_lines().into_iter().map(String::from).collect();
        lines.sort_unstable();
        lines
    };
    for profile in [V0, V1] {
        let want = kubos
            .for_profile(profile)
            .ipfs(["add", "-r", "-n", path_str(&dir)]);
        want.success();
        for r in [&["-r"][..], &[]] {
            let mut args = vec!["add", "--profile", profile];
            args.extend(r);
            args.push(path_str(&dir));
            let got = env.ipkg(&args);
            got.success();
            assert_eq!(
                sorted(&got),
                sorted(&want),
                "`{}` and `{}` list different entries",
                got.command,
                want.command
            );
        }
    }
}

/// With `-q` and several paths, `ipkg add` prints the root of each, in order.
#[test]
fn quiet_add_prints_each_root_in_order() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    let a = tree(&env, 22, &TreeSpec::deep());
    let b = env.path("single-file");
    std::fs::write(&b, b"one file among directories\n").expect("writing a file");
    let c = tree(&env, 23, &TreeSpec::empty());
    for profile in [V0, V1] {
        let kubo = kubos.for_profile(profile);
        let roots = env.ipkg([
            "add",
            "-q",
            "--profile",
            profile,
            path_str(&a),
            path_str(&b),
            path_str(&c),
        ]);
        roots.success();
        assert_eq!(
            roots.stdout_lines(),
            vec![
                kubo.add(&a, &["-n"]),
                kubo.add(&b, &["-n"]),
                kubo.add(&c, &["-n"])
            ],
            "`{}` should print each root in order",
            roots.command
        );
    }
}

/// `ipkg car export` → `ipfs dag import` → `ipfs get`, and `ipfs dag export`
/// → `ipkg car import` → `ipkg get`, both give the tree back: once under
/// v1-2025 with `--hidden` (raw leaves, CIDv1; no modes stored), once under
/// v0-2015 with `--hidden --preserve-mode` (dag-pb leaves, CIDv0, modes), where
/// the copy must match exactly, executable bits included.
fn check_car_interop(seed: u64, spec: TreeSpec) {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let dir = tree(&env, seed, &spec);
    let kubos = Kubos::new();
    let cases: [(&str, &[&str], Compare); 2] = [
        (
            V1,
            &["--hidden"],
            Compare {
                hidden: true,
                exec_bits: false,
            },
        ),
        (V0, &["--hidden", "--preserve-mode"], Compare::EXACT),
    ];
    for (profile, flags, cmp) in cases {
        // ipkg → Kubo, into a repo that has never seen the tree.
        let mut ipkg_args = vec!["--profile", profile];
        ipkg_args.extend(flags);
        let cid = ipkg_add(&env, &dir, &ipkg_args);
        let car = env.path(format!("ipkg-{profile}.car"));
        env.ipkg(["car", "export", &cid, "-o", path_str(&car)])
            .success();
        let fresh = Kubo::init();
        fresh
            .ipfs(["dag", "import", "--stats", path_str(&car)])
            .success();
        fresh.ipfs(["ls", &cid]).success();
        let out = env.path(format!("kubo-get-{profile}"));
        fresh.ipfs(["get", &cid, "-o", path_str(&out)]).success();
        assert_same_tree(&dir, &out, cmp);

        // Kubo → ipkg, into a prefix that has never seen the tree.
        let kubo_cid = kubos.for_profile(profile).add(&dir, flags);
        assert_eq!(
            kubo_cid, cid,
            "ipkg and Kubo disagree on the CID ({profile})"
        );
        let exported = kubos
            .for_profile(profile)
            .ipfs(["dag", "export", &kubo_cid]);
        exported.success();
        let env2 = TestEnv::new();
        let kcar = env2.path("kubo.car");
        std::fs::write(&kcar, &exported.stdout_raw).expect("writing kubo.car");
        let imported = env2.ipkg(["car", "import", path_str(&kcar)]);
        imported.success();
        assert_eq!(
            imported.stdout_lines(),
            vec![kubo_cid.as_str()],
            "`ipkg car import` should print the CAR's root"
        );
        let out2 = env2.path("ipkg-get");
        env2.ipkg(["get", &kubo_cid, "-o", path_str(&out2)])
            .success();
        assert_same_tree(&dir, &out2, cmp);
    }
}

#[test]
fn car_interop_mixed() {
    check_car_interop(18, TreeSpec::mixed());
}

#[test]
fn car_interop_chunk_boundaries() {
    check_car_interop(19, TreeSpec::chunk_boundaries());
}

#[test]
fn car_interop_sharded() {
    check_car_interop(20, TreeSpec::sharded());
}

// ---------------------------------------------------------------------------
// The harness itself: these pass without any ipkg implementation.

#[test]
fn harness_gen_tree_is_deterministic() {
    let env = TestEnv::new();
    let a = env.path("a");
    let b = env.path("b");
    let sa = gen_tree(42, &a, &TreeSpec::mixed());
    let sb = gen_tree(42, &b, &TreeSpec::mixed());
    assert_eq!(format!("{sa:?}"), format!("{sb:?}"));
    assert!(sa.files > 0 && sa.dirs > 1 && sa.symlinks > 0, "{sa:?}");
    assert_same_tree(&a, &b, Compare::EXACT);
    let c = env.path("c");
    gen_tree(43, &c, &TreeSpec::mixed());
    let differs = std::panic::catch_unwind(|| assert_same_tree(&a, &c, Compare::EXACT));
    assert!(differs.is_err(), "seeds 42 and 43 gave the same tree");
}

#[test]
fn harness_symlinks_stay_inside_the_tree() {
    let env = TestEnv::new();
    for seed in 0..20 {
        let root = env.path(format!("t{seed}"));
        gen_tree(seed, &root, &TreeSpec::mixed());
        let canon_root = root.canonicalize().expect("canonicalize root");
        walk(&root, &mut |p| {
            let md = std::fs::symlink_metadata(p).expect("stat");
            if md.file_type().is_symlink() {
                let target = std::fs::read_link(p).expect("readlink");
                assert!(target.is_relative(), "{} -> absolute", p.display());
                let resolved = p
                    .parent()
                    .expect("has parent")
                    .join(&target)
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{} dangles: {e}", p.display()));
                assert!(resolved.starts_with(&canon_root), "{} escapes", p.display());
            }
        });
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("dir entry").path();
        f(&p);
        if std::fs::symlink_metadata(&p).expect("stat").is_dir() {
            walk(&p, f);
        }
    }
}

#[test]
fn harness_kubo_offline_daemon_answers_on_loopback() {
    if !kubo_available() {
        return;
    }
    let kubo = Kubo::start_daemon();
    let api = kubo.api_addr();
    assert!(api.ip().is_loopback(), "API on {api}");
    let resp = http::post(api, "/api/v0/id").expect("POST /api/v0/id");
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let id: serde_json::Value = serde_json::from_slice(&resp.body).expect("id is JSON");
    assert!(id["ID"].as_str().is_some_and(|s| !s.is_empty()), "{id}");
    // The CLI goes through the daemon, and the gateway serves what was added.
    let cid = kubo
        .ipfs_stdin(
            ["add", "-Q", "--cid-version=1"],
            b"hello from the harness\n",
        )
        .success()
        .stdout_trimmed()
        .to_string();
    let gw = kubo.gateway_addr();
    assert!(gw.ip().is_loopback(), "gateway on {gw}");
    let resp = http::get(gw, &format!("/ipfs/{cid}")).expect("GET from the gateway");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"hello from the harness\n");
    let repo = kubo.repo().to_path_buf();
    drop(kubo);
    assert!(!repo.exists(), "the Kubo repo should be removed on drop");
    assert!(
        std::net::TcpStream::connect(api).is_err(),
        "the daemon should be dead after drop"
    );
}

#[test]
fn harness_kubo_profiles_configure_import() {
    if !kubo_available() {
        return;
    }
    let v1 = Kubo::init_with_profiles(&[V1]);
    let show = v1.ipfs(["config", "show"]);
    show.success();
    let config: serde_json::Value = serde_json::from_str(&show.stdout).expect("config is JSON");
    let import = &config["Import"];
    assert_eq!(import["CidVersion"], 1, "{import}");
    assert_eq!(import["UnixFSRawLeaves"], true, "{import}");
    assert_eq!(import["UnixFSChunker"], "size-1048576", "{import}");
    assert_eq!(import["UnixFSFileMaxLinks"], 1024, "{import}");
    assert_eq!(
        import["UnixFSHAMTDirectorySizeEstimation"], "block",
        "{import}"
    );
    assert_eq!(
        import["UnixFSHAMTDirectorySizeThreshold"], "256KiB",
        "{import}"
    );
    assert_eq!(config["Plugins"]["Plugins"]["telemetry"]["Disabled"], true);
    assert_eq!(config["AutoConf"]["Enabled"], false);
    assert_eq!(config["Bootstrap"], serde_json::json!([]));
    assert_eq!(config["Gateway"]["NoDNSLink"], true);

    // Known vectors: the empty directory and "hello world\n" under each profile.
    let v0 = Kubo::init();
    let env = TestEnv::new();
    let empty = env.path("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert_eq!(
        v0.add(&empty, &[]),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    assert_eq!(
        v1.add(&empty, &[]),
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    );
}

/// Kubo's two HAMT estimates put the boundary trees where their docs say: at
/// the threshold the root stays a plain directory, one byte over it becomes a
/// HAMT shard. If Kubo ever changes this, the boundary trees stop testing
/// the boundary, and this test says so.
#[test]
fn harness_hamt_boundary_trees_straddle_the_threshold() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let kubos = Kubos::new();
    for (profile, spec_at, spec_over) in [
        (
            V0,
            TreeSpec::v0_hamt_boundary(false),
            TreeSpec::v0_hamt_boundary(true),
        ),
        (
            V1,
            TreeSpec::v1_hamt_boundary(false),
            TreeSpec::v1_hamt_boundary(true),
        ),
    ] {
        let kubo = kubos.for_profile(profile);
        for (spec, sharded) in [(spec_at, false), (spec_over, true)] {
            let dir = tree(&env, 1, &spec);
            let cid = kubo.add(&dir, &["-n"]);
            let kind = unixfs_type(kubo, &dir, &cid);
            assert_eq!(
                kind == "HAMTShard",
                sharded,
                "{} under {profile}: root is {kind}",
                spec.name
            );
        }
    }
}

/// The UnixFS type of a root, via `ipfs files stat` after a real add.
fn unixfs_type(kubo: &Kubo, dir: &Path, cid: &str) -> String {
    // `-n` stored nothing; add for real so the node can be inspected.
    let stored = kubo.add(dir, &[]);
    assert_eq!(stored, cid);
    let out = kubo.ipfs(["dag", "get", cid]);
    out.success();
    let node: serde_json::Value = serde_json::from_str(&out.stdout).expect("dag get is JSON");
    // dag-json gives Data as {"/": {"bytes": base64}}; the UnixFS Type is the
    // first field (tag 0x08), so byte 1 is the type.
    let data = node["Data"]["/"]["bytes"].as_str().expect("Data bytes");
    let bytes = base64_decode(data);
    match bytes.get(1) {
        Some(1) => "Directory".into(),
        Some(5) => "HAMTShard".into(),
        other => format!("type {other:?}"),
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => panic!("bad base64 {c}"),
        }
    };
    let s: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

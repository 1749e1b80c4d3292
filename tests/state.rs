//! Local state under stress: publishes at once, damaged state files, hostile
//! text on a terminal, limits that agree between `publish` and `install`.
//!
//! Every check runs the real `ipkg` binary against a temporary prefix.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{TestEnv, path_str};

/// A package directory `NAME-VERSION` under the env's work dir.
/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn package(env: &TestEnv, name: &str, version: &str, description: &str) -> PathBuf {
    let dir = env.work.join(format!("{name}-{version}"));
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(
        dir.join("ipkg.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = {}\ntargets = [\"any\"]\n\n[commands]\n{name} = \"bin/{name}\"\n",
            toml_str(description)
        ),
    )
    .unwrap();
    let bin = dir.join("bin").join(name);
    fs::write(&bin, format!("#!/bin/sh\necho \"{name} {version}\"\n")).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A publisher with key `main` and registry `main`.
fn publisher() -> TestEnv {
    let env = TestEnv::new();
    env.ipkg(["key", "gen", "main"]).success();
    env.ipkg(["registry", "init", "main", "--key", "main"])
        .success();
    env
}

fn publish(env: &TestEnv, dir: &Path) -> support::Output {
    env.ipkg(["publish", "--registry", "main", path_str(dir)])
}

/// The versions of `name` the local registry offers (`ipkg info` of a
/// package that is not installed).
fn offered(env: &TestEnv, name: &str) -> BTreeSet<String> {
    let out = env.ipkg(["info", name, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.success().stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["releases"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().split(' ').next().unwrap().to_owned())
        .collect()
}

/// Every signed registry index in the env's store, by sequence.
pub fn signed_indexes(prefix: &Path) -> BTreeMap<u64, BTreeSet<String>> {
    let mut out: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![prefix.join(".ipkg/blocks")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = fs::read(&p)
                && let Ok(root) = ipkg::trust::index::SignedIndex::decode(&bytes)
            {
                out.entry(root.root().sequence)
                    .or_default()
                    .insert(root.cid().to_string());
            }
        }
    }
    out
}

#[track_caller]
fn assert_no_fork(prefix: &Path) {
    for (seq, cids) in signed_indexes(prefix) {
        assert_eq!(cids.len(), 1, "sequence {seq} was signed for {cids:?}");
    }
}

fn sequence(env: &TestEnv) -> u64 {
    let out = env.ipkg(["registry", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.success().stdout).unwrap();
    v[0]["sequence"].as_u64().unwrap()
}

/// Regression: two `publish` runs at once both said "Signed index
/// (sequence N)" and one release was lost (10 of 10 tries).
#[test]
fn two_publishes_at_once_lose_nothing() {
    let env = publisher();
    let mut expected = BTreeSet::new();
    for round in 0..20 {
        let a = package(&env, "hello", &format!("1.{round}.0"), "hi");
        let b = package(&env, "hello", &format!("1.{round}.1"), "hi");
        expected.insert(format!("1.{round}.0"));
        expected.insert(format!("1.{round}.1"));
        let mut children: Vec<_> = [a, b]
            .iter()
            .map(|d| {
                env.ipkg_command(["publish", "--registry", "main", path_str(d)])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children.iter_mut() {
            let st = c.wait().unwrap();
            assert!(st.success(), "round {round}: a publish failed");
        }
    }
    assert_eq!(offered(&env, "hello"), expected);
    assert_eq!(sequence(&env), 40);
    assert_no_fork(&env.prefix);
    env.ipkg(["registry", "verify", "main"]).success();
}

/// Regression: a `registry.toml` cut short read as "nothing published yet",
/// and the next publish dropped every earlier release.
#[test]
fn a_registry_file_cut_short_is_an_error_and_repair_rebuilds_it() {
    let env = publisher();
    publish(&env, &package(&env, "hello", "1.0.0", "hi")).success();
    publish(&env, &package(&env, "hello", "1.1.0", "hi")).success();
    let file = env.prefix.join(".ipkg/registries/main/registry.toml");
    let text = fs::read(&file).unwrap();
    fs::write(&file, &text[..text.len() / 2]).unwrap();

    let out = publish(&env, &package(&env, "hello", "1.2.0", "hi"));
    out.failure();
    assert!(
        out.stderr.contains("registry.toml") && out.stderr.contains("ipkg registry repair main"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("config file"), "{}", out.describe());

    let out = env.ipkg(["registry", "repair", "main"]);
    assert!(
        out.success().stderr.contains("index sequence 2"),
        "{}",
        out.describe()
    );
    assert_eq!(
        fs::read_dir(env.prefix.join(".ipkg/quarantine"))
            .unwrap()
            .count(),
        1
    );
    publish(&env, &package(&env, "hello", "1.2.0", "hi")).success();
    assert_eq!(sequence(&env), 3);
    assert_eq!(
        offered(&env, "hello"),
        ["1.0.0", "1.1.0", "1.2.0"].map(String::from).into()
    );

    // Garbage in its place: `doctor` repairs it too.
    fs::write(&file, "\u{0}\u{1}garbage[[").unwrap();
    let out = env.ipkg(["registry", "list"]);
    out.failure();
    assert!(out.stderr.contains("registry.toml"), "{}", out.describe());
    let out = env.ipkg(["doctor"]);
    assert!(
        out.stdout.contains("fixed  registry main"),
        "{}",
        out.describe()
    );
    assert_eq!(sequence(&env), 3);
    assert_no_fork(&env.prefix);
}

/// An installer with `hello` and `other` installed from a local registry.
fn installer() -> TestEnv {
    let env = publisher();
    publish(&env, &package(&env, "hello", "1.0.0", "hi")).success();
    publish(&env, &package(&env, "hello", "1.1.0", "hi")).success();
    publish(&env, &package(&env, "other", "2.0.0", "other")).success();
    env.ipkg(["install", "hello@=1.0.0"]).success();
    // An exact install pins `=1.0.0`, which `upgrade` honours: move on by
    // asking for 1.1.0 exactly (both versions stay on disk).
    env.ipkg(["install", "hello@1.1.0"]).success();
    env.ipkg(["install", "other"]).success();
    env
}

fn runs(env: &TestEnv, cmd: &str) -> Option<String> {
    let out = std::process::Command::new(env.bin.join(cmd))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// After `doctor`, everything is installed and whole again.
#[track_caller]
fn assert_whole(env: &TestEnv) {
    let out = env.ipkg(["list"]);
    out.success();
    assert!(
        out.stdout.contains("hello 1.1.0") && out.stdout.contains("other 2.0.0"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("damaged"), "{}", out.describe());
    env.ipkg(["verify"]).success();
    let out = env.ipkg(["doctor", "--no-fix"]);
    assert!(!out.stdout.contains("FAIL"), "{}", out.describe());
    assert_eq!(runs(env, "hello").as_deref(), Some("hello 1.1.0"));
    assert_eq!(runs(env, "other").as_deref(), Some("other 2.0.0"));
}

/// Regression: one damaged receipt made `list`, `install` and `doctor` fail
/// for every package and called itself a "config file".
#[test]
fn a_damaged_receipt_is_named_readers_recover_and_doctor_rebuilds_it() {
    let env = installer();
    let receipt = env.prefix.join(".ipkg/state/packages/hello.json");
    fs::write(&receipt, "{\"name\": \"hello\", \"curr").unwrap();

    // Readers see the state after recovery, and say one receipt is damaged.
    let out = env.ipkg(["list"]);
    out.success();
    assert!(
        out.stdout.contains("hello 1.1.0") && out.stdout.contains("other 2.0.0"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("hello.json") && out.stderr.contains("ipkg doctor"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("config file"), "{}", out.describe());
    let out = env.ipkg(["info", "hello"]);
    assert!(out.success().stdout.contains("1.1.0"), "{}", out.describe());
    // A change to that package is refused, naming the file.
    let out = env.ipkg(["switch", "hello", "1.0.0"]);
    out.failure();
    assert!(
        out.stderr.contains("receipt of package `hello`") && out.stderr.contains("hello.json"),
        "{}",
        out.describe()
    );
    // Other packages still install and remove.
    publish(&env, &package(&env, "third", "0.1.0", "t")).success();
    env.ipkg(["install", "third"]).success();
    env.ipkg(["remove", "third"]).success();

    let out = env.ipkg(["doctor"]);
    assert!(
        out.stdout.contains("fixed  receipt hello"),
        "{}",
        out.describe()
    );
    let quarantined: Vec<_> = fs::read_dir(env.prefix.join(".ipkg/quarantine"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        quarantined.iter().any(|n| n.ends_with("-hello.json")),
        "{quarantined:?}"
    );
    assert_whole(&env);
    // The rebuilt receipt kept the other version on disk: switch works.
    env.ipkg(["switch", "hello", "1.0.0"]).success();
    assert_eq!(runs(&env, "hello").as_deref(), Some("hello 1.0.0"));
}

/// Regression: a garbage journal blocked everything with no hint.
#[test]
fn a_garbage_journal_is_named_and_doctor_quarantines_it() {
    let env = installer();
    let journal = env.prefix.join(".ipkg/journal/tx.json");
    fs::create_dir_all(journal.parent().unwrap()).unwrap();
    fs::write(&journal, "garbage").unwrap();
    let out = env.ipkg(["remove", "other"]);
    out.failure();
    assert!(
        out.stderr.contains("tx.json") && out.stderr.contains("ipkg doctor"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["doctor"]);
    assert!(out.stdout.contains("fixed  journal"), "{}", out.describe());
    assert!(!journal.exists());
    assert_whole(&env);
}

/// A damaged pin file: `gc` refuses (it could drop what the pin kept);
/// `doctor` quarantines it and pins again what is installed.
#[test]
fn a_damaged_pin_file_is_named_and_doctor_pins_again() {
    let env = installer();
    let pins = env.prefix.join(".ipkg/pins");
    let hello_pin = fs::read_dir(&pins)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| fs::read_to_string(p).is_ok_and(|t| t.contains("installed/hello@1.1.0")))
        .unwrap();
    fs::write(&hello_pin, b"\xff\xfe\x00garbage").unwrap();
    let out = env.ipkg(["gc"]);
    out.failure();
    assert!(
        out.stderr
            .contains(hello_pin.file_name().unwrap().to_str().unwrap()),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["doctor"]);
    assert!(out.stdout.contains("fixed  pins"), "{}", out.describe());
    assert!(
        fs::read_to_string(&hello_pin)
            .unwrap()
            .contains("installed/hello@1.1.0"),
        "{}",
        out.describe()
    );
    env.ipkg(["gc"]).success();
    assert_whole(&env);
    // The registry's blocks were pinned again too.
    env.ipkg(["registry", "verify", "main"]).success();
}

/// A damaged config or key file: an error naming the file and what to do;
/// a key others can read gets a warning.
#[test]
fn a_damaged_config_or_key_file_is_named() {
    let env = installer();
    env.write_config("prefix = [unclosed");
    let out = env.ipkg(["list"]);
    out.failure();
    assert!(
        out.stderr.contains("config.toml") && out.stderr.contains("hint:"),
        "{}",
        out.describe()
    );
    env.write_config("");

    let key = env.config.join("ipkg/keys/main.key");
    assert!(key.exists(), "{}", key.display());
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let out = publish(&env, &package(&env, "hello", "1.2.0", "hi"));
    out.success();
    assert!(
        out.stderr.contains("main.key") && out.stderr.contains("readable by other users"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["doctor"]);
    assert!(out.stdout.contains("warn  keys"), "{}", out.describe());

    let good = fs::read(&key).unwrap();
    fs::write(&key, b"garbage").unwrap();
    let out = publish(&env, &package(&env, "hello", "1.3.0", "hi"));
    out.failure();
    assert!(
        out.stderr.contains("main.key") && out.stderr.contains("ipkg key import"),
        "{}",
        out.describe()
    );
    fs::write(&key, good).unwrap();
    assert_whole(&env);
}

/// Regression: `doctor` called a tampered package "whole". Temporary files
/// a killed ipkg left behind are removed.
#[test]
fn doctor_finds_a_tampered_file_and_cleans_temporary_files() {
    let env = installer();
    let tree = fs::read_link(env.prefix.join("other")).unwrap();
    let file = env.prefix.join(tree).join("bin/other");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    // A hard link into the shared file store: write a new file in its place.
    fs::remove_file(&file).unwrap();
    fs::write(&file, "#!/bin/sh\necho evil\n").unwrap();
    let out = env.ipkg(["doctor", "--no-fix"]);
    out.failure();
    assert!(
        out.stdout.contains("FAIL  package other")
            && out.stdout.contains("bin/other")
            && out.stdout.contains("ipkg install --reinstall other"),
        "{}",
        out.describe()
    );
    env.ipkg(["install", "--reinstall", "other"]).success();

    let stale = [
        env.prefix.join(".ipkg/state/packages/.tmp-abc123"),
        env.prefix.join(".ipkg/.tmp-link-hello"),
        env.prefix.join(".ipkg/pins/.tmp-old"),
    ];
    for p in &stale {
        fs::write(p, "half").unwrap();
    }
    let status = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&stale[2])
        .status()
        .unwrap();
    assert!(status.success());
    let fresh_shared = env.prefix.join(".ipkg/pins/.tmp-fresh");
    fs::write(&fresh_shared, "a publish writing now").unwrap();
    let out = env.ipkg(["doctor"]);
    assert!(
        out.stdout.contains("fixed  temporary files: removed 3"),
        "{}",
        out.describe()
    );
    for p in &stale {
        assert!(!p.exists(), "{}", p.display());
    }
    assert!(fresh_shared.exists());
    assert_whole(&env);
}

/// Descriptions and file names from packages reach the terminal escaped.
#[test]
fn control_characters_are_escaped_in_output() {
    let env = publisher();
    let dir = package(
        &env,
        "evil",
        "1.0.0",
        "nice\u{1b}]0;owned\u{7}\u{1b}[2J\rtool",
    );
    publish(&env, &dir).success();
    let out = env.ipkg(["info", "evil"]);
    out.success();
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\r'), "{:?}", out.stdout);
    assert!(
        out.stdout.contains("nice\\x1b]0;owned\\x07\\x1b[2J\\rtool"),
        "{:?}",
        out.stdout
    );
    // A file name with an escape sequence, found by `verify`.
    env.ipkg(["install", "evil"]).success();
    let tree = env
        .prefix
        .join(fs::read_link(env.prefix.join("evil")).unwrap());
    let mut perms = fs::metadata(&tree).unwrap().permissions();
    perms.set_mode(0o755);
    fs::set_permissions(&tree, perms).unwrap();
    fs::write(tree.join("x\u{1b}[31mred"), "extra").unwrap();
    let out = env.ipkg(["verify"]);
    out.failure();
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
    assert!(out.stdout.contains("x\\x1b[31mred"), "{}", out.describe());
}

/// Regression: a 50 MB manifest was published into a registry nobody could
/// install from. `pack` and `publish` refuse what `install` would.
#[test]
fn a_manifest_over_the_limit_is_refused_at_pack_and_publish() {
    let env = publisher();
    let dir = package(&env, "big", "1.0.0", "big");
    let mut text = fs::read_to_string(dir.join("ipkg.toml")).unwrap();
    text.push_str(&format!("# {}\n", "x".repeat(2 << 20)));
    fs::write(dir.join("ipkg.toml"), text).unwrap();
    for args in [
        vec!["pack", path_str(&dir)],
        vec!["publish", "--registry", "main", path_str(&dir)],
    ] {
        let out = env.ipkg(args);
        out.failure();
        assert!(
            out.stderr.contains("ipkg.toml") && out.stderr.contains("at most 1048576 bytes"),
            "{}",
            out.describe()
        );
    }
    assert_eq!(sequence(&env), 0);
}

/// Regression: a 5,000-level DAG took 50 s of CPU before its depth was
/// checked. Synthesised into a CAR; the walk refuses it at level 33.
#[test]
fn a_deep_dag_is_refused_quickly() {
    use ipkg::content::cid::cid_of;
    use ipkg::content::dagpb::{PbLink, PbNode};
    use ipkg::content::unixfs::{Data, DataType};
    use ipkg::content::{Codec, car::CarWriter};

    let env = TestEnv::new();
    let dir_data = Data::new(DataType::Directory).encode();
    let mut blocks = Vec::new();
    let empty = PbNode {
        links: Vec::new(),
        data: Some(dir_data.clone()),
    }
    .encode();
    let mut cid = cid_of(1, Codec::DagPb, &empty);
    blocks.push((cid, empty));
    for _ in 0..5_000 {
        let node = PbNode {
            links: vec![PbLink::new(cid, "d", 0)],
            data: Some(dir_data.clone()),
        }
        .encode();
        cid = cid_of(1, Codec::DagPb, &node);
        blocks.push((cid, node));
    }
    let car = env.work.join("deep.car");
    let mut w = CarWriter::new(fs::File::create(&car).unwrap(), &[cid]).unwrap();
    for (c, b) in blocks.iter().rev() {
        w.write_block(c, b).unwrap();
    }
    w.finish().unwrap();
    env.ipkg(["car", "import", path_str(&car)]).success();
    let start = Instant::now();
    let out = env.ipkg(["install", "--allow-unsigned", &cid.to_string()]);
    let took = start.elapsed();
    out.failure();
    assert!(
        out.stderr.contains("levels deep; the limit is 32"),
        "{}",
        out.describe()
    );
    // Not a timing assertion of performance, a bound far above the refusal
    // (milliseconds) and far below the old walk (50 s).
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// A damaged subscription file: named, with what to do; `doctor` moves it
/// aside, packages installed from that registry stay installed, and the
/// registry can be added again.
#[test]
fn a_damaged_subscription_file_is_named_and_quarantined() {
    let publisher = publisher();
    publish(&publisher, &package(&publisher, "hello", "1.0.0", "hi")).success();
    let ipns = {
        let out = publisher.ipkg(["registry", "list", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out.success().stdout).unwrap();
        v[0]["ipns"].as_str().unwrap().to_owned()
    };
    let server = support::serve::serve(&publisher, &[]);
    let env = TestEnv::new();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\"]\ntimeout = \"2s\"\nretries = 0\n",
        server.url
    ));
    env.ipkg(["registry", "add", "alice", &ipns]).success();
    env.ipkg(["install", "hello"]).success();
    let file = env.prefix.join(".ipkg/state/registries/alice.toml");
    assert!(file.exists(), "{}", file.display());
    fs::write(&file, "ipns = \"k51").unwrap();

    let out = env.ipkg(["registry", "list"]);
    out.failure();
    assert!(
        out.stderr.contains("alice.toml") && out.stderr.contains("ipkg registry add alice"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("config file"), "{}", out.describe());
    let out = env.ipkg(["doctor"]);
    assert!(
        out.stdout.contains("warn  subscription alice"),
        "{}",
        out.describe()
    );
    assert!(!file.exists());
    env.ipkg(["registry", "add", "alice", &ipns]).success();
    let out = env.ipkg(["list"]);
    assert!(
        out.success().stdout.contains("hello 1.0.0"),
        "{}",
        out.describe()
    );
    env.ipkg(["verify"]).success();
}

//! Crash safety and concurrency of installed state.
//!
//! ipkg is killed with SIGKILL at every step of install, upgrade, switch and
//! remove (through the test-only `IPKG_TEST_CRASH_AT` hook) and at random
//! moments; after each kill the program must run as the old or the new
//! version, and after the next ipkg command `ipkg verify` must be clean and
//! agree with what runs. Then 8 processes install, switch and remove at once.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::tree::Rng;
use support::{TestEnv, path_str};

const STEPS: [&str; 7] = [
    "journal", "links", "flip", "relink", "receipt", "pins", "trees",
];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

/// A registry with hello 1.0.0 and 1.1.0 published.
fn setup() -> TestEnv {
    let env = TestEnv::new();
    env.ipkg(["key", "gen", "main"]).success();
    env.ipkg(["registry", "init", "main", "--key", "main"])
        .success();
    for v in ["1.0.0", "1.1.0"] {
        let dir = examples().join("hello").join(v);
        env.ipkg(["publish", "--registry", "main", path_str(&dir)])
            .success();
    }
    env
}

/// The version the installed `hello` command reports, or `None` when there is
/// no working `hello`.
fn running_version(env: &TestEnv) -> Option<String> {
    let out = Command::new(env.bin.join("hello"))
        .arg("x")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let v = s.trim().rsplit_once("(hello ")?.1.trim_end_matches(')');
    Some(v.to_owned())
}

/// The version `ipkg list` says is current, or `None`.
fn listed_version(env: &TestEnv) -> Option<String> {
    let out = env.ipkg(["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.success().stdout).unwrap();
    v.as_array()?
        .iter()
        .find(|p| p["name"] == "hello")
        .map(|p| p["version"].as_str().unwrap_or_default().to_owned())
}

/// After a kill: the program runs as `old` or `new`; the next ipkg command
/// finishes or undoes the transaction; then everything agrees.
#[track_caller]
fn check_after_kill(env: &TestEnv, old: Option<&str>, new: Option<&str>, what: &str) {
    let running = running_version(env);
    assert!(
        running.as_deref() == old || running.as_deref() == new,
        "{what}: after the kill `hello` runs as {running:?}, expected {old:?} or {new:?}"
    );
    // The next command that takes the lock repairs; verify is one.
    let out = env.ipkg(["verify"]);
    assert!(
        out.status.success(),
        "{what}: verify after recovery\n{}",
        out.describe()
    );
    let listed = listed_version(env);
    let running = running_version(env);
    assert_eq!(
        listed, running,
        "{what}: ipkg list and the running program disagree"
    );
    assert!(
        listed.as_deref() == old || listed.as_deref() == new,
        "{what}: recovered to {listed:?}, expected {old:?} or {new:?}"
    );
    let out = env.ipkg(["doctor", "--no-fix"]);
    assert!(
        !out.stdout.contains("FAIL"),
        "{what}: doctor finds problems\n{}",
        out.describe()
    );
    // Nothing half-done is left in the journal.
    assert!(!env.prefix.join(".ipkg/journal/tx.json").exists(), "{what}");
}

fn killed(out: &support::Output) -> bool {
    out.status.signal() == Some(9)
}

#[test]
fn sigkill_at_every_step_leaves_old_or_new() {
    /// (name, preparation, the command to kill, version before, version after)
    type Case = (
        &'static str,
        fn(&TestEnv),
        &'static [&'static str],
        Option<&'static str>,
        Option<&'static str>,
    );
    let ops: [Case; 4] = [
        (
            "install",
            |_| {},
            &["install", "hello@=1.0.0"],
            None,
            Some("1.0.0"),
        ),
        (
            "upgrade",
            // `install hello@=1.0.0` would pin `=1.0.0`, which `upgrade`
            // honours: get 1.0.0 current with no requirement by a switch.
            |env| {
                env.ipkg(["install", "hello"]).success();
                env.ipkg(["switch", "hello", "1.0.0"]).success();
            },
            &["upgrade", "hello"],
            Some("1.0.0"),
            Some("1.1.0"),
        ),
        (
            "switch",
            |env| {
                env.ipkg(["install", "hello"]).success();
            },
            &["switch", "hello", "1.0.0"],
            Some("1.1.0"),
            Some("1.0.0"),
        ),
        (
            "remove",
            |env| {
                env.ipkg(["install", "hello"]).success();
            },
            &["remove", "hello"],
            Some("1.1.0"),
            None,
        ),
    ];
    for (name, prep, args, old, new) in ops {
        for step in STEPS {
            let mut env = setup();
            prep(&env);
            env.set_env("IPKG_TEST_CRASH_AT", step);
            let out = env.ipkg(args.iter().copied());
            assert!(
                killed(&out),
                "{name} at {step}: expected SIGKILL\n{}",
                out.describe()
            );
            // Later commands run without the crash hook.
            let env = without_crash_hook(env);
            check_after_kill(&env, old, new, &format!("{name} killed after `{step}`"));
        }
    }
}

/// The same environment with the crash hook cleared.
fn without_crash_hook(mut env: TestEnv) -> TestEnv {
    env.set_env("IPKG_TEST_CRASH_AT", "");
    env
}

#[test]
fn random_kills_during_switches() {
    let env = setup();
    env.ipkg(["install", "hello@=1.0.0"]).success();
    env.ipkg(["upgrade"]).success();
    let mut rng = Rng::new(0x5eed);
    let mut kills = 0;
    for i in 0..40 {
        let to = if i % 2 == 0 { "1.0.0" } else { "1.1.0" };
        let mut child = env
            .ipkg_command(["switch", "hello", to])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(8000)));
        let _ = child.kill();
        if child.wait().is_ok_and(|st| st.signal() == Some(9)) {
            kills += 1;
        }
        // Right after the kill, before any repair, a version runs.
        let running = running_version(&env);
        assert!(
            matches!(running.as_deref(), Some("1.0.0") | Some("1.1.0")),
            "kill {i}: `hello` runs as {running:?}"
        );
    }
    eprintln!("{kills} of 40 switches were killed while running");
    check_after_kill(&env, Some("1.0.0"), Some("1.1.0"), "after random kills");
}

#[test]
fn eight_processes_at_once_end_consistent() {
    let env = setup();
    let ops: [&[&str]; 6] = [
        &["install", "hello@=1.0.0"],
        &["upgrade", "hello"],
        &["switch", "hello", "1.0.0"],
        &["switch", "hello", "1.1.0"],
        &["remove", "hello"],
        &["rollback", "hello"],
    ];
    let env = &env;
    std::thread::scope(|s| {
        for t in 0..8u64 {
            s.spawn(move || {
                let mut rng = Rng::new(t + 1);
                for _ in 0..6 {
                    let args = *rng.pick(&ops);
                    let out = env.ipkg(args.iter().copied());
                    // Failing is fine (switching what another process just
                    // removed); crashing or an undocumented code is not.
                    let code = out.status.code();
                    assert!(
                        matches!(code, Some(0..=6)),
                        "{args:?} ended with {:?}\n{}",
                        out.status,
                        out.describe()
                    );
                    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
                }
            });
        }
    });
    let listed = listed_version(env);
    assert_eq!(
        listed,
        running_version(env),
        "ipkg list and the running program disagree"
    );
    env.ipkg(["verify"]).success();
    let out = env.ipkg(["doctor", "--no-fix"]);
    assert!(!out.stdout.contains("FAIL"), "{}", out.describe());
}

/// Every signed registry index in a prefix's store, by sequence.
fn signed_indexes(prefix: &Path) -> std::collections::BTreeMap<u64, Vec<String>> {
    let mut out: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    let mut stack = vec![prefix.join(".ipkg/blocks")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && let Ok(root) = ipkg::trust::index::SignedIndex::decode(&bytes)
            {
                let cids = out.entry(root.root().sequence).or_default();
                if !cids.contains(&root.cid().to_string()) {
                    cids.push(root.cid().to_string());
                }
            }
        }
    }
    out
}

/// `hello` at `version`: the example's 1.1.0 tree with another version.
fn hello_at(env: &TestEnv, version: &str) -> PathBuf {
    let src = examples().join("hello/1.1.0");
    let dir = env.work.join(format!("hello-{version}"));
    let status = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = dir.join("ipkg.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("version = \"1.1.0\"", &format!("version = \"{version}\"")),
    )
    .unwrap();
    dir
}

/// Regression: a `publish` killed between its two writes made the next one
/// sign the same sequence again for other content, and subscribers refused
/// the registry as a fork. Killed after each write step: the registry is the
/// old one or the new one, a subscriber accepts the next index, no release
/// is lost and no sequence names two indexes.
#[test]
fn sigkill_at_every_publish_step_leaves_old_or_new() {
    for step in ipkg::ops::publish::STEPS {
        let mut env = TestEnv::new();
        env.ipkg(["key", "gen", "main"]).success();
        let ipns = env
            .ipkg(["registry", "init", "main", "--key", "main"])
            .success()
            .stdout_trimmed()
            .trim_start_matches("/ipns/")
            .to_owned();
        let v1 = examples().join("hello/1.0.0");
        env.ipkg(["publish", "--registry", "main", path_str(&v1)])
            .success();
        let server = support::serve::serve(&env, &[]);
        let client = TestEnv::new();
        client.write_config(&format!(
            "kubo-api = \"off\"\ngateways = [\"{}\"]\ntimeout = \"2s\"\nretries = 0\n",
            server.url
        ));
        client.ipkg(["registry", "add", "alice", &ipns]).success();

        env.set_env("IPKG_TEST_CRASH_AT", step);
        let v2 = examples().join("hello/1.1.0");
        let out = env.ipkg(["publish", "--registry", "main", path_str(&v2)]);
        assert!(
            killed(&out),
            "publish at {step}: expected SIGKILL\n{}",
            out.describe()
        );
        let env = without_crash_hook(env);
        // Before any repair, a subscriber sees the old index or the new.
        let out = client.ipkg(["update"]);
        assert!(out.status.success(), "{step}: {}", out.describe());

        // The next command finishes or undoes the publish.
        env.ipkg(["registry", "verify", "main"]).success();
        let list = env.ipkg(["registry", "list"]);
        let seq = list.success().stdout.clone();
        assert!(
            seq.contains("sequence=1") || seq.contains("sequence=2"),
            "{step}: {seq}"
        );
        // Publishing again loses nothing; the subscriber follows.
        env.ipkg(["publish", "--registry", "main", path_str(&v2)])
            .success();
        let v3 = hello_at(&env, "1.2.0");
        env.ipkg(["publish", "--registry", "main", path_str(&v3)])
            .success();
        let out = client.ipkg(["update"]);
        assert!(out.status.success(), "{step}: {}", out.describe());
        let out = client.ipkg(["info", "hello", "--json"]);
        let releases = out.success().stdout.clone();
        for v in ["1.0.0", "1.1.0", "1.2.0"] {
            assert!(releases.contains(v), "{step}: {v} lost\n{releases}");
        }
        for (seq, cids) in signed_indexes(&env.prefix) {
            assert_eq!(cids.len(), 1, "{step}: sequence {seq} signed for {cids:?}");
        }
        drop(server);
    }
}

//! Versions the user controls (issue 15, item 1): `NAME@X.Y.Z` is exact and
//! may go back, `--reinstall` repairs in place, yanked releases install only
//! when named exactly, `hold`/`unhold`, and `upgrade` honours the
//! install-time requirement and every dependent's, saying what it left
//! behind and why. `outdated` reads only the cached indexes.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::{TestEnv, path_str};

/// A registry `main` owned by a key `main`, in the test's prefix.
fn with_registry() -> TestEnv {
    let env = TestEnv::new();
    env.ipkg(["key", "gen", "main"]).success();
    env.ipkg(["registry", "init", "main", "--key", "main"])
        .success();
    env
}

fn publish(env: &TestEnv, dir: &Path) {
    env.ipkg(["publish", "--registry", "main", path_str(dir)])
        .success();
}

/// A package `name` at `version` with one command printing both, depending
/// on `deps` (`(name, requirement)`).
fn pkg(env: &TestEnv, name: &str, version: &str, deps: &[(&str, &str)]) -> PathBuf {
    let root = env.path(format!("{name}-{version}"));
    let mut toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"The {name} tool\"\ntargets = [\"any\"]\n[commands]\n{name} = \"bin/{name}\"\n"
    );
    if !deps.is_empty() {
        toml.push_str("[dependencies]\n");
        for (d, req) in deps {
            toml.push_str(&format!("{d} = \"{req}\"\n"));
        }
    }
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("ipkg.toml"), toml).unwrap();
    let bin = root.join("bin").join(name);
    std::fs::write(&bin, format!("#!/bin/sh\necho {name} {version}\n")).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// What the installed command prints.
fn says(env: &TestEnv, cmd: &str) -> String {
    let out = std::process::Command::new(env.bin.join(cmd))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Blocks in the store (files under `.ipkg/blocks`).
fn store_blocks(env: &TestEnv) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { walk(&p) } else { 1 }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&env.prefix.join(".ipkg/blocks"))
}

/// What a user reads, with the test's temporary directory replaced.
fn shown(env: &TestEnv, out: &support::Output) -> String {
    let root = env.root().display().to_string();
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        out.stdout,
        out.stderr
    )
    .replace(&root, "[TMP]")
}

#[test]
fn an_exact_version_is_exact_and_may_go_back() {
    let env = with_registry();
    publish(&env, &pkg(&env, "tool", "1.0.0", &[]));
    publish(&env, &pkg(&env, "tool", "1.1.0", &[]));

    // `@1.0.0` is exactly 1.0.0, not `^1.0.0`.
    let out = env.ipkg(["install", "tool@1.0.0"]);
    assert!(
        out.success().stdout.contains("installed tool 1.0.0"),
        "{}",
        out.describe()
    );
    assert_eq!(says(&env, "tool"), "tool 1.0.0");
    // `@^1.0.0` is a requirement: the newest match.
    let out = env.ipkg(["install", "tool@^1.0.0"]);
    assert!(
        out.success()
            .stdout
            .contains("upgraded tool 1.1.0 (from 1.0.0)"),
        "{}",
        out.describe()
    );
    // Back to 1.0.0 by naming it: consent to go back, from what is on disk
    // (no block fetched or written).
    let before = store_blocks(&env);
    let out = env.ipkg(["install", "tool@1.0.0"]);
    assert!(
        out.success().stdout.contains("switched tool 1.0.0"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("Fetching"), "{}", out.describe());
    assert_eq!(store_blocks(&env), before);
    assert_eq!(says(&env, "tool"), "tool 1.0.0");
    // `@~1.1` and `@>=1.1` are requirements too.
    env.ipkg(["install", "tool@~1.1"]).success();
    assert_eq!(says(&env, "tool"), "tool 1.1.0");
    env.ipkg(["install", "tool@=1.0.0"]).success();
    env.ipkg(["install", "tool@>=1.1"]).success();
    assert_eq!(says(&env, "tool"), "tool 1.1.0");
    // An older version not on disk is fetched and made current.
    env.ipkg(["remove", "tool"]).success();
    env.ipkg(["install", "tool"]).success();
    let out = env.ipkg(["install", "tool@1.0.0"]);
    assert!(
        out.success()
            .stdout
            .contains("switched tool 1.0.0 (from 1.1.0)"),
        "{}",
        out.describe()
    );
    assert_eq!(says(&env, "tool"), "tool 1.0.0");
    // A version that does not exist names the ones that do.
    let out = env.ipkg(["install", "tool@1.0.7"]);
    assert_eq!(out.failure().status.code(), Some(3), "{}", out.describe());
    assert!(out.stderr.contains("1.1.0 (any)"), "{}", out.describe());
}

#[test]
fn upgrade_honours_the_install_requirement_and_holds() {
    let env = with_registry();
    publish(&env, &pkg(&env, "tool", "1.0.0", &[]));
    publish(&env, &pkg(&env, "tool", "1.1.0", &[]));
    publish(&env, &pkg(&env, "tool", "2.0.0", &[]));
    env.ipkg(["install", "tool@^1"]).success();
    assert_eq!(says(&env, "tool"), "tool 1.1.0");
    env.ipkg(["switch", "tool", "1.0.0"]).success();
    // upgrade moves within `^1` and says what it left behind and why.
    let out = env.ipkg(["upgrade"]);
    insta::assert_snapshot!("upgrade_within_requirement", shown(&env, &out));
    assert_eq!(says(&env, "tool"), "tool 1.1.0");
    let out = env.ipkg(["upgrade", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.success().stdout).unwrap();
    assert_eq!(v[0]["action"], "kept");
    assert_eq!(
        v[0]["reason"],
        "2.0.0 is available; it was installed as `tool@^1`"
    );

    // `outdated` reads the cached index only (the gateway given is closed).
    let out = env.ipkg(["outdated", "--gateway", "http://127.0.0.1:9"]);
    assert_eq!(
        out.success().stdout_trimmed(),
        "tool 1.1.0 -> 2.0.0 from main (installed as tool@^1)"
    );

    // A plain install lifts the requirement; a hold keeps it where it is.
    env.ipkg(["hold", "tool"]).success();
    let out = env.ipkg(["upgrade"]);
    assert!(
        out.success().stdout.contains("held tool 1.1.0"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains("Held tool 1.1.0 (2.0.0 is available; held (`ipkg unhold tool`))"),
        "{}",
        out.describe()
    );
    // An install that would move it is refused, with a hint that works.
    let out = env.ipkg(["install", "tool"]);
    assert_eq!(out.failure().status.code(), Some(6), "{}", out.describe());
    assert!(
        out.stderr
            .contains("hint: let it move with `ipkg unhold tool`"),
        "{}",
        out.describe()
    );
    env.ipkg(["unhold", "tool"]).success();
    // Still within `^1` until a plain install lifts the requirement.
    let out = env.ipkg(["upgrade"]);
    assert!(out.success().stdout.contains("kept tool 1.1.0"));
    env.ipkg(["install", "tool"]).success();
    let out = env.ipkg(["install", "tool@1.0.0"]);
    out.success();
    env.ipkg(["install", "tool"]).success();
    assert_eq!(says(&env, "tool"), "tool 2.0.0");
    env.ipkg(["install", "tool@1.1.0"]).success();
    env.ipkg(["install", "tool@*"]).success();
    let out = env.ipkg(["switch", "tool", "1.1.0"]);
    out.success();
    let out = env.ipkg(["upgrade"]);
    assert!(
        out.success()
            .stdout
            .contains("upgraded tool 2.0.0 (from 1.1.0)"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["outdated"]);
    assert!(out.success().stdout.trim().is_empty(), "{}", out.describe());
    let out = env.ipkg(["hold", "nosuch"]);
    assert_eq!(out.failure().status.code(), Some(3), "{}", out.describe());
}

#[test]
fn upgrade_keeps_a_dependency_within_what_dependents_need() {
    let env = with_registry();
    publish(&env, &pkg(&env, "libthing", "1.0.0", &[]));
    publish(&env, &pkg(&env, "app", "1.0.0", &[("libthing", "^1")]));
    env.ipkg(["install", "app"]).success();
    publish(&env, &pkg(&env, "libthing", "1.2.0", &[]));
    publish(&env, &pkg(&env, "libthing", "2.0.0", &[]));
    let out = env.ipkg(["upgrade"]);
    insta::assert_snapshot!("upgrade_with_a_dependent", shown(&env, &out));
    assert_eq!(says(&env, "libthing"), "libthing 1.2.0");
    let out = env.ipkg(["upgrade", "libthing"]);
    assert!(
        out.success()
            .stdout
            .contains("kept libthing 1.2.0 from `main`"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout
            .contains("(2.0.0 is available; `app` 1.0.0 needs ^1)"),
        "{}",
        out.describe()
    );
}

#[test]
fn reinstall_repairs_the_current_version_and_does_not_upgrade() {
    let env = with_registry();
    publish(&env, &pkg(&env, "tool", "1.0.0", &[]));
    env.ipkg(["install", "tool"]).success();
    publish(&env, &pkg(&env, "tool", "1.1.0", &[]));
    // Tamper with the installed program.
    let real = std::fs::canonicalize(env.prefix.join("tool/bin/tool")).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&real, "#!/bin/sh\necho tampered\n").unwrap();
    let out = env.ipkg(["verify", "tool"]);
    assert_eq!(out.failure().status.code(), Some(4), "{}", out.describe());
    // The hint `verify` gives is the command that repairs.
    assert!(
        out.stderr.contains("ipkg install --reinstall"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["install", "--reinstall", "tool"]);
    assert!(
        out.success().stdout.contains("reinstalled tool 1.0.0"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("Reinstalled tool 1.0.0"),
        "{}",
        out.describe()
    );
    env.ipkg(["verify"]).success();
    assert_eq!(says(&env, "tool"), "tool 1.0.0");
    // Rollback is not confused by the repair: nothing to go back to.
    let out = env.ipkg(["rollback", "tool"]);
    assert_eq!(out.failure().status.code(), Some(2), "{}", out.describe());
}

#[test]
fn a_yanked_release_installs_only_when_named_exactly() {
    let env = with_registry();
    publish(&env, &pkg(&env, "tool", "1.0.0", &[]));
    publish(&env, &pkg(&env, "tool", "1.1.0", &[]));
    env.ipkg([
        "publish",
        "--registry",
        "main",
        "--yank",
        "1.1.0",
        "--package",
        "tool",
    ])
    .success();
    // A requirement never chooses it.
    let out = env.ipkg(["install", "tool"]);
    assert!(
        out.success().stdout.contains("installed tool 1.0.0"),
        "{}",
        out.describe()
    );
    // Named exactly, it installs with a warning.
    let out = env.ipkg(["install", "tool@1.1.0"]);
    assert!(
        out.success().stdout.contains("upgraded tool 1.1.0"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains("warning: `tool@1.1.0` is yanked from `main`"),
        "{}",
        out.describe()
    );
    assert_eq!(says(&env, "tool"), "tool 1.1.0");
}

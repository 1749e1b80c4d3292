//! Finding things (issue 15, item 3): `search` and `registry show` from the
//! indexes on disk (offline: the publisher's server is gone), did-you-mean
//! for package names, and the first-run message, each hint followed by
//! running what it says.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::path::{Path, PathBuf};

use support::serve::serve;
use support::{TestEnv, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
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
fn first_run_search_show_and_did_you_mean() {
    // A publisher with `hello` 1.0.0 and 1.1.0 (1.1.0 yanked).
    let publisher = TestEnv::new();
    publisher.ipkg(["key", "gen", "alice"]).success();
    let out = publisher.ipkg(["registry", "init", "main", "--key", "alice"]);
    let ipns = out
        .success()
        .stdout_trimmed()
        .trim_start_matches("/ipns/")
        .to_owned();
    for v in ["1.0.0", "1.1.0"] {
        let dir = examples().join("hello").join(v);
        publisher
            .ipkg(["publish", path_str(&dir), "--registry", "main"])
            .success();
    }
    publisher
        .ipkg([
            "publish",
            "--registry",
            "main",
            "--yank",
            "1.1.0",
            "--package",
            "hello",
        ])
        .success();
    let server = serve(&publisher, &[]);

    // A fresh machine: the error says what to do.
    let env = TestEnv::new();
    env.write_config(&format!(
        "kubo-api = \"off\"\ngateways = [\"{}\"]\ntimeout = \"2s\"\nretries = 0\n",
        server.url
    ));
    let out = env.ipkg(["install", "hello"]);
    assert_eq!(out.failure().status.code(), Some(3), "{}", out.describe());
    insta::assert_snapshot!("first_run_install", shown(&env, &out));
    let out = env.ipkg(["search"]);
    assert!(
        out.success()
            .stderr
            .contains("no registries yet; add one with `ipkg registry add NAME k51…`"),
        "{}",
        out.describe()
    );
    // Doing what the hint says works.
    env.ipkg(["registry", "add", "alice", &ipns]).success();

    // Offline from here: the indexes on disk answer.
    drop(server);
    let out = env.ipkg(["search"]);
    assert_eq!(
        out.success().stdout_trimmed(),
        "alice/hello 1.0.0 - Greets its first argument"
    );
    assert_eq!(
        env.ipkg(["search", "GREETS"]).success().stdout_trimmed(),
        "alice/hello 1.0.0 - Greets its first argument"
    );
    let out = env.ipkg(["search", "nothing-like-it"]);
    assert!(out.success().stdout.is_empty());
    assert!(
        out.stderr.contains("no package matches"),
        "{}",
        out.describe()
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.ipkg(["search", "--json", "hel"]).success().stdout).unwrap();
    assert_eq!(v[0]["name"], "hello");
    assert_eq!(v[0]["commands"], serde_json::json!(["hello"]));

    let out = env.ipkg(["registry", "show", "alice"]);
    let text = out.success().stdout.replace(&ipns, "[KEY]");
    insta::assert_snapshot!("registry_show", text);
    let v: serde_json::Value = serde_json::from_str(
        &env.ipkg(["registry", "show", "alice", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["sequence"], 3);
    assert_eq!(v["kind"], "subscribed");
    // The publisher's own registry shows the same.
    let v: serde_json::Value = serde_json::from_str(
        &publisher
            .ipkg(["registry", "show", "main", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["kind"], "published");
    assert_eq!(v["packages"][0]["releases"][1], "1.1.0 (any) yanked");
    let out = env.ipkg(["registry", "show", "nosuch"]);
    assert_eq!(out.failure().status.code(), Some(3), "{}", out.describe());

    // A typo: did you mean; the suggestion is a name that installs.
    let out = env.ipkg(["install", "helo"]);
    assert_eq!(out.failure().status.code(), Some(3), "{}", out.describe());
    assert!(
        out.stderr.contains("hint: did you mean `hello`?"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["install", "zzzzzz"]);
    assert!(
        out.failure()
            .stderr
            .contains("hint: look for it with `ipkg search TERM`"),
        "{}",
        out.describe()
    );
    env.ipkg(["search", "zzzzzz"]).success();
    // `which` of a command nobody provides talks about commands.
    let out = env.ipkg(["which", "ls"]);
    assert_eq!(out.failure().status.code(), Some(3), "{}", out.describe());
    assert!(
        out.stderr
            .contains("no installed package provides this command"),
        "{}",
        out.describe()
    );
}

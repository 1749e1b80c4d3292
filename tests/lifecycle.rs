//! The install lifecycle against the real binary: install, run, switch,
//! rollback, upgrade, remove, gc, verify, doctor, and every name form.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{TestEnv, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

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

/// Run an installed command through its link in the bin dir.
fn run_cmd(env: &TestEnv, cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(env.bin.join(cmd))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"))
}

fn hello_says(env: &TestEnv) -> String {
    let out = run_cmd(env, "hello", &["you"]);
    assert!(out.status.success(), "hello failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A package directory written from (path, contents, executable) triples.
fn write_pkg(root: &Path, files: &[(&str, &str, bool)]) -> PathBuf {
    for (path, contents, exec) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        let mode = if *exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    root.to_path_buf()
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn the_whole_cycle_on_hello() {
    let env = with_registry();
    let hello = examples().join("hello");
    publish(&env, &hello.join("1.0.0"));

    // Install by name.
    let out = env.ipkg(["install", "hello"]);
    out.success();
    assert!(
        out.stdout.contains("installed hello 1.0.0"),
        "{}",
        out.describe()
    );
    assert_eq!(hello_says(&env), "Hello, you! (hello 1.0.0)");
    assert!(env.prefix.join("hello").is_symlink());
    // `ipkg run` of an installed package runs its command.
    let out = env.ipkg(["run", "hello", "--", "runner"]);
    assert_eq!(
        out.success().stdout_trimmed(),
        "Hello, runner! (hello 1.0.0)"
    );

    // A second release, then upgrade.
    publish(&env, &hello.join("1.1.0"));
    let out = env.ipkg(["upgrade"]);
    assert!(
        out.success()
            .stdout
            .contains("upgraded hello 1.1.0 (from 1.0.0)")
    );
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));
    // Nothing newer: upgrade changes nothing.
    assert!(
        env.ipkg(["upgrade"])
            .success()
            .stdout
            .contains("unchanged hello 1.1.0")
    );

    // Switch both ways; going back is allowed because it is explicit.
    env.ipkg(["switch", "hello", "1.0.0"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.0.0)"));
    env.ipkg(["switch", "hello", "1.1.0"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));
    // `switch CID`: the name comes from the package's manifest.
    let v110 = env.ipkg(["info", "hello", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&v110.success().stdout).unwrap();
    let cid_110 = v["cid"].as_str().unwrap().to_owned();
    env.ipkg(["switch", "hello", "1.0.0"]).success();
    env.ipkg(["switch", &cid_110]).success();
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));
    // Rollback goes to the version before the last change.
    env.ipkg(["rollback", "hello"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.0.0)"));
    // Upgrade never goes backwards, and brings 1.1.0 back.
    env.ipkg(["upgrade", "hello"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));
    // `install NAME@X.Y.Z` is exact: naming an older version is consent to
    // go back to it (issue 15; it used to be refused).
    env.ipkg(["install", "hello@=1.0.0"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.0.0)"));
    env.ipkg(["install", "hello@1.1.0"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));

    // list, info and history, as text and JSON.
    let list = env.ipkg(["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list.success().stdout).unwrap();
    assert_eq!(v[0]["name"], "hello");
    assert_eq!(v[0]["version"], "1.1.0");
    assert_eq!(v[0]["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    let info = env.ipkg(["info", "hello", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&info.success().stdout).unwrap();
    assert_eq!(v["registry"], "main");
    assert_eq!(v["description"], "Greets its first argument");
    let hist = env.ipkg(["history", "hello", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&hist.success().stdout).unwrap();
    let actions: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "install", "upgrade", "switch", "switch", "switch", "switch", "rollback", "upgrade",
            "switch", "switch"
        ]
    );
    let which = env.ipkg(["which", "hello"]);
    assert!(which.success().stdout.starts_with("hello hello 1.1.0"));
    env.ipkg(["verify"]).success();

    // Two versions share the unchanged `ipkg.toml`? No: it names the version.
    // They do share nothing else here; dedup is measured on bigger trees.

    // Remove: commands, link, receipt and roots gone; gc frees the files.
    env.ipkg(["remove", "hello"]).success();
    assert!(!env.bin.join("hello").exists() && env.bin.join("hello").symlink_metadata().is_err());
    assert!(env.prefix.join("hello").symlink_metadata().is_err());
    let pins = env.ipkg(["pin", "ls"]);
    assert!(
        !pins.success().stdout.contains("installed/"),
        "{}",
        pins.stdout
    );
    env.ipkg(["gc"]).success();
    assert_eq!(count_entries(&env.prefix.join(".ipkg/pkgs")), 0);
    assert_eq!(count_entries(&env.prefix.join(".ipkg/files")), 0);
    // Not installed: info shows what the registry offers.
    let out = env.ipkg(["info", "hello"]);
    assert!(
        out.success()
            .stdout
            .contains("releases:    1.0.0 (any), 1.1.0 (any)"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["info", "nosuch"]);
    assert_eq!(out.failure().status.code(), Some(3));
}

#[test]
fn every_local_name_form_installs() {
    let env = with_registry();
    let hello = examples().join("hello");
    publish(&env, &hello.join("1.0.0"));
    publish(&env, &hello.join("1.1.0"));

    // A version requirement picks the highest match.
    env.ipkg(["install", "main/hello@^1.0, <1.1"]).success();
    assert!(hello_says(&env).ends_with("(hello 1.0.0)"));
    env.ipkg(["remove", "hello"]).success();

    // By the registry's key.
    let key = env.ipkg(["key", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_str(&key.success().stdout).unwrap();
    let k51 = keys[0]["ipns"]
        .as_str()
        .unwrap()
        .trim_start_matches("/ipns/")
        .to_owned();
    env.ipkg(["install", &format!("/ipns/{k51}/hello")])
        .success();
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));
    let info = env.ipkg(["info", "hello", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&info.success().stdout).unwrap();
    let release = v["release"].as_str().unwrap().to_owned();
    let package = v["cid"].as_str().unwrap().to_owned();
    env.ipkg(["remove", "hello"]).success();

    // By release statement CID and by package CID: vouched for by the index.
    env.ipkg(["install", &format!("/ipfs/{release}")]).success();
    assert!(hello_says(&env).ends_with("(hello 1.1.0)"));
    env.ipkg(["remove", "hello"]).success();
    env.ipkg(["install", &package]).success();
    env.ipkg(["remove", "hello"]).success();

    // Unknown names and registries.
    let out = env.ipkg(["install", "nosuch"]);
    assert_eq!(out.failure().status.code(), Some(3));
    assert!(
        out.stderr.contains("no package named `nosuch`"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["install", "other/hello"]);
    assert_eq!(out.failure().status.code(), Some(3));
    let out = env.ipkg(["install", "hello@^9"]);
    assert_eq!(out.failure().status.code(), Some(3));
    assert!(out.stderr.contains("1.0.0 (any)"), "{}", out.describe());
}

#[test]
fn a_name_in_two_registries_is_ambiguous() {
    let env = with_registry();
    env.ipkg(["key", "gen", "other"]).success();
    env.ipkg(["registry", "init", "other", "--key", "other"])
        .success();
    let hello = examples().join("hello/1.0.0");
    publish(&env, &hello);
    env.ipkg(["publish", "--registry", "other", path_str(&hello)])
        .success();
    let out = env.ipkg(["install", "hello"]);
    assert_eq!(out.failure().status.code(), Some(6), "{}", out.describe());
    assert!(out.stderr.contains("main, other"), "{}", out.describe());
    env.ipkg(["install", "other/hello"]).success();
}

#[test]
fn unsigned_content_needs_consent_and_gc_frees_its_blocks() {
    let env = TestEnv::new();
    let dir = examples().join("hello/1.0.0");
    // A directory, not vouched for: refused without consent, nothing changed.
    let out = env.ipkg(["install", path_str(&dir)]);
    assert_eq!(out.failure().status.code(), Some(5), "{}", out.describe());
    assert!(
        out.stderr.contains("--allow-unsigned"),
        "{}",
        out.describe()
    );
    assert!(env.ipkg(["list"]).success().stdout.trim().is_empty());
    assert!(env.bin.join("hello").symlink_metadata().is_err());

    // A CAR of the package, with consent.
    let cid = env
        .ipkg(["add", "-q", "--preserve-mode", path_str(&dir)])
        .success()
        .stdout_trimmed()
        .to_owned();
    let car = env.path("hello.car");
    env.ipkg(["car", "export", &cid, "-o", path_str(&car)])
        .success();
    env.ipkg(["pin", "rm", &cid]).success();
    env.ipkg(["gc"]).success();
    let out = env.ipkg(["install", "--allow-unsigned", path_str(&car)]);
    assert!(
        out.success().stdout.contains("(unsigned)"),
        "{}",
        out.describe()
    );
    assert_eq!(hello_says(&env), "Hello, you! (hello 1.0.0)");
    let blocks = || count_entries_deep(&env.prefix.join(".ipkg/blocks"));
    assert!(blocks() > 0);
    env.ipkg(["remove", "hello"]).success();
    env.ipkg(["gc"]).success();
    assert_eq!(blocks(), 0, "gc must free the removed package's blocks");
}

fn count_entries_deep(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += count_entries_deep(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn dry_run_changes_nothing() {
    let env = with_registry();
    publish(&env, &examples().join("hello/1.0.0"));
    let out = env.ipkg(["install", "--dry-run", "hello"]);
    assert!(out.success().stdout.contains("would-install hello 1.0.0"));
    assert!(env.bin.join("hello").symlink_metadata().is_err());
    assert!(env.prefix.join("hello").symlink_metadata().is_err());
    assert!(env.ipkg(["list"]).success().stdout.trim().is_empty());
}

#[test]
fn verify_finds_one_changed_byte_and_reinstall_repairs_it() {
    let env = with_registry();
    publish(&env, &examples().join("hello/1.0.0"));
    env.ipkg(["install", "hello"]).success();
    env.ipkg(["verify", "hello"]).success();

    // Flip one byte of the installed program, keeping its size.
    let file = env.prefix.join("hello/bin/hello");
    let mut bytes = std::fs::read(&file).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    let real = std::fs::canonicalize(&file).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&real, &bytes).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o555)).unwrap();

    let out = env.ipkg(["verify", "hello"]);
    assert_eq!(out.failure().status.code(), Some(4), "{}", out.describe());
    assert!(
        out.stdout.contains("hello changed: bin/hello"),
        "{}",
        out.describe()
    );

    // An extra file is reported too.
    let tree = std::fs::canonicalize(env.prefix.join("hello")).unwrap();
    std::fs::set_permissions(&tree, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(tree.join("dropped-in"), b"x").unwrap();
    let out = env.ipkg(["verify", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.failure().stdout).unwrap();
    let kinds: Vec<&str> = v[0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"changed") && kinds.contains(&"extra"),
        "{kinds:?}"
    );

    env.ipkg(["install", "--reinstall", "hello"]).success();
    env.ipkg(["verify"]).success();
    assert_eq!(hello_says(&env), "Hello, you! (hello 1.0.0)");
}

#[test]
fn hooks_run_sandboxed_in_order_with_their_variables() {
    let env = with_registry();
    publish(&env, &examples().join("with-hooks"));
    env.ipkg(["install", "with-hooks"]).success();
    let state = env.prefix.join(".ipkg/state/data/with-hooks");
    let log = std::fs::read_to_string(state.join("hooks.log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "pre-install with-hooks 1.0.0 pre-install",
            "post-install with-hooks 1.0.0 post-install"
        ]
    );
    env.ipkg(["remove", "with-hooks"]).success();
    let log = std::fs::read_to_string(state.join("hooks.log")).unwrap();
    assert!(
        log.ends_with(
            "pre-remove with-hooks 1.0.0 pre-remove\npost-remove with-hooks 1.0.0 post-remove\n"
        ),
        "{log}"
    );
    // `--purge` takes the state directory too.
    env.ipkg(["install", "with-hooks"]).success();
    env.ipkg(["remove", "--purge", "with-hooks"]).success();
    assert!(!state.exists());
}

/// A package whose hooks are written by the test.
fn hook_pkg(env: &TestEnv, name: &str, hooks: &[(&str, &str)], extra_manifest: &str) -> PathBuf {
    let root = env.path(name);
    let mut files: Vec<(String, String, bool)> = vec![(
        format!("bin/{name}"),
        format!("#!/bin/sh\necho {name}\n"),
        true,
    )];
    let mut table = String::new();
    for (kind, body) in hooks {
        files.push((
            format!("hooks/{kind}"),
            format!("#!/bin/sh\n{body}\n"),
            true,
        ));
        table.push_str(&format!("{kind} = \"hooks/{kind}\"\n"));
    }
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n\n[commands]\n{name} = \"bin/{name}\"\n\n[hooks]\n{table}timeout = 2\n{extra_manifest}"
    );
    files.push(("ipkg.toml".into(), manifest, false));
    let refs: Vec<(&str, &str, bool)> = files
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
        .collect();
    write_pkg(&root, &refs)
}

#[test]
fn a_failing_pre_install_hook_changes_nothing() {
    let env = with_registry();
    publish(&env, &examples().join("hello/1.0.0"));
    env.ipkg(["install", "hello"]).success();
    let before = env.ipkg(["list", "--json"]).success().stdout.clone();
    let pkg = hook_pkg(
        &env,
        "failing",
        &[("pre-install", "echo no >&2; exit 3")],
        "",
    );
    publish(&env, &pkg);
    let out = env.ipkg(["install", "failing"]);
    out.failure();
    assert!(
        out.stderr.contains("pre-install hook of `failing` failed"),
        "{}",
        out.describe()
    );
    assert!(env.bin.join("failing").symlink_metadata().is_err());
    assert!(env.prefix.join("failing").symlink_metadata().is_err());
    assert_eq!(env.ipkg(["list", "--json"]).success().stdout, before);
    env.ipkg(["verify"]).success();

    // A hook that never ends is stopped at its timeout, with nothing changed.
    let pkg = hook_pkg(&env, "sleepy", &[("pre-install", "sleep 30")], "");
    publish(&env, &pkg);
    let started = std::time::Instant::now();
    let out = env.ipkg(["install", "sleepy"]);
    assert!(
        out.failure().stderr.contains("timeout of 2s"),
        "{}",
        out.describe()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    assert!(env.bin.join("sleepy").symlink_metadata().is_err());
}

#[test]
fn a_hook_cannot_write_outside_its_state_dir_or_reach_the_network() {
    let env = with_registry();
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = format!(
        "echo in > \"$IPKG_STATE_DIR/ok\"\n\
         echo x > '{o}/escaped' 2>/dev/null && echo wrote-outside >> \"$IPKG_STATE_DIR/ok\"\n\
         echo x > \"$IPKG_PACKAGE_DIR/planted\" 2>/dev/null && echo wrote-package >> \"$IPKG_STATE_DIR/ok\"\n\
         echo x > \"$IPKG_STATE_DIR/../../../../escaped\" 2>/dev/null\n\
         (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo connected >> \"$IPKG_STATE_DIR/ok\"\n\
         [ -e '{home}' ] && echo sees-home >> \"$IPKG_STATE_DIR/ok\"\n\
         exit 0",
        o = outside.display(),
        home = env.home.display(),
    );
    let pkg = hook_pkg(&env, "nosy", &[("post-install", &body)], "");
    // bash for /dev/tcp.
    std::fs::write(
        pkg.join("hooks/post-install"),
        format!("#!/bin/bash\n{body}\n"),
    )
    .unwrap();
    publish(&env, &pkg);
    env.ipkg(["install", "nosy"]).success();
    let ok = std::fs::read_to_string(env.prefix.join(".ipkg/state/data/nosy/ok")).unwrap();
    assert_eq!(ok, "in\n", "the hook got out of its sandbox");
    assert!(!outside.join("escaped").exists());
    // The write above may land in the sandbox's own scratch space; it must
    // not reach the host's prefix.
    assert!(!env.prefix.join("escaped").exists());
    env.ipkg(["verify", "nosy"]).success();
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the hook reached the network");
}

#[test]
fn host_access_hooks_need_consent() {
    let env = with_registry();
    let marker = env.path("host-marker");
    let pkg = hook_pkg(
        &env,
        "hosty",
        &[("post-install", &format!("touch '{}'", marker.display()))],
        "host-access = true\n",
    );
    publish(&env, &pkg);
    // post-install failing is reported; the package stays installed.
    let out = env.ipkg(["install", "hosty"]);
    assert!(
        out.success().stderr.contains("not allowed"),
        "{}",
        out.describe()
    );
    assert!(!marker.exists());
    env.ipkg(["remove", "hosty"]).success();
    env.ipkg(["install", "--allow-host-hooks", "hosty"])
        .success();
    assert!(marker.exists());
}

#[test]
fn hostile_packages_are_refused_and_nothing_outside_is_touched() {
    let env = TestEnv::new();
    let sentinel = env.path("sentinel");
    std::fs::write(&sentinel, "untouched").unwrap();
    std::fs::create_dir_all(&env.bin).unwrap();
    std::fs::write(env.bin.join("ls"), "#!/bin/sh\necho the real ls\n").unwrap();

    /// (package name, its files, the exit code install must end with)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str, bool)>, i32);
    let cases: Vec<Case> = vec![
        (
            "dotdot",
            vec![
                (
                    "ipkg.toml",
                    "[package]\nname = \"dotdot\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\ndotdot = \"../../sentinel\"\n",
                    false,
                ),
                ("x", "x", false),
            ],
            5,
        ),
        (
            "escape",
            vec![(
                "ipkg.toml",
                "[package]\nname = \"escape\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\nescape = \"bin/escape\"\n",
                false,
            )],
            5,
        ),
        (
            "shadow",
            vec![
                (
                    "ipkg.toml",
                    "[package]\nname = \"shadow\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\nls = \"bin/ls\"\n",
                    false,
                ),
                ("bin/ls", "#!/bin/sh\necho pwned\n", true),
            ],
            6,
        ),
        (
            "slash",
            vec![
                (
                    "ipkg.toml",
                    "[package]\nname = \"slash\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\n\"../ls\" = \"bin/x\"\n",
                    false,
                ),
                ("bin/x", "#!/bin/sh\n", true),
            ],
            5,
        ),
    ];
    for (name, files, code) in cases {
        let root = env.path(format!("pkgs/{name}"));
        write_pkg(&root, &files);
        if name == "escape" {
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::os::unix::fs::symlink("../../../sentinel", root.join("bin/escape")).unwrap();
        }
        // `ipkg add` does not check manifests, so the DAG reaches install.
        let cid = env
            .ipkg(["add", "-q", "--preserve-mode", path_str(&root)])
            .success()
            .stdout_trimmed()
            .to_owned();
        let out = env.ipkg(["install", "--allow-unsigned", &cid]);
        assert_eq!(
            out.failure().status.code(),
            Some(code),
            "{name}: {}",
            out.describe()
        );
        assert!(env.prefix.join(name).symlink_metadata().is_err(), "{name}");
    }
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert_eq!(
        std::fs::read_to_string(env.bin.join("ls")).unwrap(),
        "#!/bin/sh\necho the real ls\n"
    );
    let bins: Vec<_> = std::fs::read_dir(&env.bin).unwrap().flatten().collect();
    assert_eq!(
        bins.len(),
        1,
        "only the pre-existing `ls` is in the bin dir"
    );
    assert!(env.ipkg(["list"]).success().stdout.trim().is_empty());
}

#[test]
fn a_command_another_package_owns_is_a_conflict() {
    let env = with_registry();
    publish(&env, &examples().join("hello/1.0.0"));
    env.ipkg(["install", "hello"]).success();
    let other = write_pkg(
        &env.path("impostor"),
        &[
            (
                "ipkg.toml",
                "[package]\nname = \"impostor\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\nhello = \"bin/hello\"\n",
                false,
            ),
            ("bin/hello", "#!/bin/sh\necho impostor\n", true),
        ],
    );
    publish(&env, &other);
    let out = env.ipkg(["install", "impostor"]);
    assert_eq!(out.failure().status.code(), Some(6));
    assert!(
        out.stderr.contains("already provided by package `hello`"),
        "{}",
        out.describe()
    );
    assert_eq!(hello_says(&env), "Hello, you! (hello 1.0.0)");
}

#[test]
fn dependencies_are_installed_and_conflicts_are_clear() {
    let env = with_registry();
    let lib = |version: &str| {
        write_pkg(
            &env.path(format!("lib-{version}")),
            &[
                (
                    "ipkg.toml",
                    &format!(
                        "[package]\nname = \"libthing\"\nversion = \"{version}\"\ntargets = [\"any\"]\n[commands]\nlibthing = \"bin/libthing\"\n"
                    ),
                    false,
                ),
                (
                    "bin/libthing",
                    &format!("#!/bin/sh\necho libthing {version}\n"),
                    true,
                ),
            ],
        )
    };
    publish(&env, &lib("1.2.0"));
    let app = write_pkg(
        &env.path("app"),
        &[
            (
                "ipkg.toml",
                "[package]\nname = \"app\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\napp = \"bin/app\"\n[dependencies]\nlibthing = \"^1.1\"\n[requires]\nprograms = [\"sh\", \"surely-not-a-program\"]\n",
                false,
            ),
            ("bin/app", "#!/bin/sh\necho app\n", true),
        ],
    );
    publish(&env, &app);
    let out = env.ipkg(["install", "app"]);
    out.success();
    assert!(
        out.stdout.contains("installed libthing 1.2.0"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("[dependency]"), "{}", out.describe());
    assert!(
        out.stderr.contains("surely-not-a-program"),
        "{}",
        out.describe()
    );
    assert!(run_cmd(&env, "libthing", &[]).status.success());
    // Removing a dependency others need is refused.
    let out = env.ipkg(["remove", "libthing"]);
    assert_eq!(out.failure().status.code(), Some(6), "{}", out.describe());
    env.ipkg(["remove", "app"]).success();

    // A dependency installed at a version outside the requirement.
    publish(&env, &lib("2.0.0"));
    env.ipkg(["upgrade", "libthing"]).success();
    let out = env.ipkg(["install", "app"]);
    assert_eq!(out.failure().status.code(), Some(6), "{}", out.describe());
    assert!(
        out.stderr
            .contains("needs `libthing` ^1.1, but `libthing` 2.0.0 is installed"),
        "{}",
        out.describe()
    );
}

#[test]
fn run_without_installing_links_nothing() {
    let env = with_registry();
    publish(&env, &examples().join("hello/1.1.0"));
    let out = env.ipkg(["run", "main/hello", "--", "there"]);
    assert_eq!(
        out.success().stdout_trimmed(),
        "Hello, there, nice to meet you! (hello 1.1.0)"
    );
    assert!(env.bin.join("hello").symlink_metadata().is_err());
    assert!(env.ipkg(["list"]).success().stdout.trim().is_empty());
    // The exit status is the program's.
    let failing = write_pkg(
        &env.path("seven"),
        &[
            (
                "ipkg.toml",
                "[package]\nname = \"seven\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\nseven = \"bin/seven\"\n",
                false,
            ),
            ("bin/seven", "#!/bin/sh\nexit 7\n", true),
        ],
    );
    let out = env.ipkg(["run", "--allow-unsigned", path_str(&failing)]);
    assert_eq!(out.status.code(), Some(7), "{}", out.describe());
}

#[test]
fn doctor_repairs_what_it_can() {
    let env = with_registry();
    publish(&env, &examples().join("hello/1.0.0"));
    env.ipkg(["install", "hello"]).success();
    std::fs::remove_file(env.bin.join("hello")).unwrap();
    let out = env.ipkg(["doctor", "--no-fix"]);
    assert!(
        out.failure().stdout.contains("FAIL  package hello"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["doctor"]);
    assert!(
        out.success().stdout.contains("fixed  package hello"),
        "{}",
        out.describe()
    );
    assert_eq!(hello_says(&env), "Hello, you! (hello 1.0.0)");
    env.ipkg(["verify"]).success();
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
fn what_the_user_reads() {
    let env = with_registry();
    let hello = examples().join("hello");
    publish(&env, &hello.join("1.0.0"));
    publish(&env, &hello.join("1.1.0"));
    insta::assert_snapshot!(
        "install",
        shown(&env, &env.ipkg(["install", "hello@=1.0.0"]))
    );
    // Installed as exactly 1.0.0: upgrade leaves it and says why.
    insta::assert_snapshot!("upgrade", shown(&env, &env.ipkg(["upgrade"])));
    insta::assert_snapshot!(
        "install_requirement",
        shown(&env, &env.ipkg(["install", "hello@^1"]))
    );
    insta::assert_snapshot!(
        "switch",
        shown(&env, &env.ipkg(["switch", "hello", "1.0.0"]))
    );
    insta::assert_snapshot!("list", shown(&env, &env.ipkg(["list"])));
    insta::assert_snapshot!("remove", shown(&env, &env.ipkg(["remove", "hello"])));
    let dir = path_str(&hello.join("1.0.0")).to_owned();
    let unsigned = shown(&env, &env.ipkg(["install", &dir])).replace(
        Path::new(env!("CARGO_MANIFEST_DIR")).to_str().unwrap(),
        "[REPO]",
    );
    insta::assert_snapshot!("unsigned_refused", unsigned);
    insta::assert_snapshot!(
        "not_installed",
        shown(&env, &env.ipkg(["rollback", "hello"]))
    );
}

/// Run `ipkg ARGS` in a real terminal (tmux), answer `keys` at its prompt,
/// and return the screen once it printed `EXIT=<code>`.
fn in_terminal(env: &TestEnv, args: &[&str], keys: &str, wait_for_prompt: &str) -> String {
    if !support::tmux_available() {
        return String::new();
    }
    // A server of its own for every call: the test runs this twice.
    let mut tmux = support::Tmux::new(env.root());
    let mut line = vec![
        "env".to_owned(),
        "-i".into(),
        format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
        format!("HOME={}", env.home.display()),
        format!("IPKG_PREFIX={}", env.prefix.display()),
        format!("IPKG_BIN_DIR={}", env.bin.display()),
        format!("XDG_CONFIG_HOME={}", env.config.display()),
        "IPKG_NO_DEFAULT_SOURCES=1".into(),
        "TERM=xterm-256color".into(),
        "NO_COLOR=1".into(),
        support::ipkg_bin().display().to_string(),
    ];
    line.extend(args.iter().map(|a| a.to_string()));
    let script = format!(
        "{}; echo EXIT=$?; sleep 60",
        line.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut start = tmux.command();
    start.args([
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        "sh",
        "-c",
        &script,
    ]);
    tmux.start(start);
    let wait = |needle: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let s = tmux.screen(&[]);
            if s.contains(needle) {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waiting for {needle:?}:\n{s}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait(wait_for_prompt);
    tmux.run(&["send-keys", keys, "Enter"]).success();
    let s = wait("EXIT=");
    tmux.kill();
    s
}

#[test]
fn an_interactive_user_is_asked_before_unsigned_content() {
    let env = TestEnv::new();
    let dir = path_str(&examples().join("hello/1.0.0")).to_owned();
    let screen = in_terminal(&env, &["install", &dir], "n", "Install it anyway?");
    if screen.is_empty() {
        return;
    }
    assert!(
        screen.contains("is not vouched for by any registry you trust"),
        "{screen}"
    );
    assert!(screen.contains("EXIT=5"), "{screen}");
    assert!(env.bin.join("hello").symlink_metadata().is_err());
    let screen = in_terminal(&env, &["install", &dir], "y", "Install it anyway?");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(hello_says(&env), "Hello, you! (hello 1.0.0)");
}

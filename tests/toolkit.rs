//! The usual toolkit (issue 15, items 5 and 8): shell completions that load
//! in bash, zsh and fish (tmux) and complete a subcommand, a man page `man`
//! renders, `-q` and `-v`/`-vv` that change what is printed, `--yes`
//! everywhere, `config list|get|set`, and no built-in source once
//! `IPKG_NO_DEFAULT_SOURCES=1` (which the harness sets for every run).

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{TestEnv, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

#[test]
fn config_list_get_set_and_no_default_sources_when_switched_off() {
    let env = TestEnv::new();
    // No config file, no source flag or variable, defaults switched off.
    let out = env.ipkg(["config", "list"]);
    let text = out.success().stdout.clone();
    assert!(text.contains("gateways = []  # none"), "{text}");
    assert!(text.contains("routers = []  # none"), "{text}");
    assert!(!text.contains("https://"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&env.ipkg(["config", "list", "--json"]).success().stdout).unwrap();
    assert_eq!(v["settings"][2]["key"], "gateways");
    assert_eq!(v["settings"][2]["value"], "[]");
    // A flag is named as the source.
    let out = env.ipkg([
        "config",
        "get",
        "gateways",
        "--gateway",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.success().stdout_trimmed(), r#"["http://127.0.0.1:9"]"#);
    // set writes the user's file; list then names it.
    env.ipkg(["config", "set", "gateways", r#"["http://127.0.0.1:8"]"#])
        .success();
    env.ipkg(["config", "set", "kubo-api", "off"]).success();
    let out = env.ipkg(["config", "list"]);
    let file = env.config.join("ipkg/config.toml");
    assert!(
        out.success().stdout.contains(&format!(
            "gateways = [\"http://127.0.0.1:8\"]  # {}",
            file.display()
        )),
        "{}",
        out.describe()
    );
    assert_eq!(
        env.ipkg(["config", "get", "kubo-api"])
            .success()
            .stdout_trimmed(),
        "\"off\""
    );
    // Bad input names the input; the file is unchanged.
    let before = std::fs::read_to_string(&file).unwrap();
    let out = env.ipkg(["config", "set", "no-such-key", "1"]);
    assert_eq!(out.failure().status.code(), Some(2), "{}", out.describe());
    assert!(out.stderr.contains("no-such-key"), "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    let out = env.ipkg(["config", "get", "nope"]);
    assert!(out.failure().stderr.contains("the settings are prefix"));
}

#[test]
fn quiet_verbose_and_yes_change_what_is_printed() {
    let env = TestEnv::new();
    let dir = examples().join("hello/1.0.0");
    let out = env.ipkg(["-q", "install", "--allow-unsigned", path_str(&dir)]);
    assert!(out.success().stderr.is_empty(), "{}", out.describe());
    assert!(out.stdout.contains("installed hello 1.0.0"));
    let out = env.ipkg(["list", "-v"]);
    assert!(
        out.success().stderr.contains("Using prefix = "),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("Config `"), "{}", out.describe());
    let out = env.ipkg(["list", "-vv"]);
    assert!(
        out.success().stderr.contains("Config `"),
        "{}",
        out.describe()
    );
    // `--silent` stays as an alias; `remove --yes` is accepted.
    env.ipkg(["--silent", "list"]).success();
    let out = env.ipkg(["remove", "--yes", "hello"]);
    assert!(out.success().stderr.contains("Removed hello 1.0.0"));
    // `add -q` is the global quiet: only the root.
    let out = env.ipkg(["add", "-q", path_str(&dir)]);
    assert_eq!(out.success().stdout_lines().len(), 1, "{}", out.describe());
}

#[test]
fn the_man_page_renders() {
    let env = TestEnv::new();
    let page = env.path("ipkg.1");
    let out = env.ipkg(["man"]);
    std::fs::write(&page, &out.success().stdout_raw).unwrap();
    let have_man = Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_man {
        assert!(
            !support::in_ci(),
            "man (man-db) is needed for this test under CI"
        );
        return;
    }
    let shown = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("ipkg - "), "{text}");
    assert!(text.contains("install"), "{text}");
    assert!(text.contains("--prefix"), "{text}");
}

/// Load the completions in `shell` under tmux (its own socket), type
/// `ipkg outd` and a tab, and return the screen once it shows `want`.
fn complete_in(env: &TestEnv, shell: &[&str], load: &str, want: &str) {
    let socket = env.root().join(format!("tmux-{}.sock", shell[0]));
    let bin_dir = support::ipkg_bin().parent().unwrap().to_path_buf();
    let tmux = |a: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(a)
            .output()
            .expect("running tmux")
    };
    let mut argv = vec![
        "-f".to_owned(),
        "/dev/null".into(),
        "new-session".into(),
        "-d".into(),
        "-x".into(),
        "120".into(),
        "-y".into(),
        "30".into(),
        "env".into(),
        "-i".into(),
        format!("PATH={}:/usr/bin:/bin", bin_dir.display()),
        format!("HOME={}", env.home.display()),
        format!("XDG_CONFIG_HOME={}", env.config.display()),
        format!("ZDOTDIR={}", env.home.display()),
        "IPKG_NO_DEFAULT_SOURCES=1".into(),
        "TERM=xterm-256color".into(),
    ];
    argv.extend(shell.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert!(tmux(&argv).status.success());
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let wait = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = screen();
            if s.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{shell:?}: waiting for {needle:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    tmux(&["send-keys", load, "Enter"]);
    tmux(&["send-keys", "echo LOADED", "Enter"]);
    wait("\nLOADED");
    tmux(&["send-keys", "ipkg outd", "Tab"]);
    wait(want);
    tmux(&["kill-server"]);
}

#[test]
fn completions_load_and_complete_a_subcommand() {
    // tmux prints its version with `-V`; the shells take `--version`.
    let have = |s: &str| {
        Command::new(s)
            .arg(if s == "tmux" { "-V" } else { "--version" })
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for shell in ["tmux", "bash", "zsh", "fish"] {
        if !have(shell) {
            assert!(
                !support::in_ci(),
                "{shell} is needed for this test under CI"
            );
            return;
        }
    }
    let env = TestEnv::new();
    // Every script is generated and names the subcommands.
    for shell in ["bash", "zsh", "fish"] {
        let out = env.ipkg(["completions", shell]);
        assert!(out.success().stdout.contains("outdated"), "{shell}");
    }
    complete_in(
        &env,
        &["bash", "--norc", "--noprofile", "-i"],
        "source <(ipkg completions bash)",
        "ipkg outdated",
    );
    complete_in(
        &env,
        &["zsh", "-f", "-i"],
        "autoload -U compinit && compinit -u && source <(ipkg completions zsh)",
        "ipkg outdated",
    );
    complete_in(
        &env,
        &["fish", "--no-config", "-i"],
        "ipkg completions fish | source",
        "ipkg outdated",
    );
}

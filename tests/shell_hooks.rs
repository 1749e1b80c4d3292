//! The command-not-found hooks (`shell-hooks/`, `ipkg shell-init`,
//! `ipkg command-not-found`, `ipkg update`) against the real binary and real
//! bash, zsh and fish, the interactive ones driven through tmux.
//!
//! Every shell runs with a cleared environment, a temporary `HOME`, prefix and
//! bin dir, and `IPKG_CONFIG` naming a config that points only at those.
//! Without bash, zsh, fish or tmux a test is skipped, except under CI (`CI`
//! set), where it fails.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{TestEnv, ipkg_bin, path_str};

const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// Whether `tool` runs; records a skip when not (a failure under CI).
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        support::skip(
            tool,
            format!("`{tool}` is not installed (.ci/run installs it)"),
        );
    }
    ok
}

fn hooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shell-hooks")
}

/// A test world: two local registries, `main` and `extra`; `main` has
/// `greeter` 1.2.3 (command `greet`, which prints its arguments and exits 7),
/// and `extra` has it too when `both` is set. A config file names the prefix
/// and bin dir and the command-not-found `policy`.
struct World {
    env: TestEnv,
    bin_dir: PathBuf,
    config: PathBuf,
}

impl World {
    fn new(both: bool, policy: &str) -> World {
        let mut env = TestEnv::new();
        let bin_dir = env.root().join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let config = env.root().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "prefix = \"{}\"\nbin-dir = \"{}\"\n\n[command-not-found]\npolicy = \"{policy}\"\ntrusted-registries = [\"main\"]\n",
                path_str(&env.prefix),
                path_str(&bin_dir)
            ),
        )
        .unwrap();
        env.set_env("IPKG_CONFIG", &config);
        env.set_env("IPKG_BIN_DIR", &bin_dir);
        let pkg = env.path("greeter");
        std::fs::create_dir_all(pkg.join("bin")).unwrap();
        std::fs::write(
            pkg.join("ipkg.toml"),
            "[package]\nname = \"greeter\"\nversion = \"1.2.3\"\ndescription = \"Prints its arguments\"\ntargets = [\"any\"]\n\n[commands]\ngreet = \"bin/greet\"\n",
        )
        .unwrap();
        std::fs::write(
            pkg.join("bin/greet"),
            "#!/bin/sh\necho \"greet got: $*\"\nexit 7\n",
        )
        .unwrap();
        env.ipkg(["key", "gen", "alice"]).success();
        for reg in ["main", "extra"] {
            env.ipkg(["registry", "init", reg, "--key", "alice"])
                .success();
        }
        env.ipkg(["publish", path_str(&pkg), "--registry", "main"])
            .success();
        if both {
            env.ipkg(["publish", path_str(&pkg), "--registry", "extra"])
                .success();
        }
        World {
            env,
            bin_dir,
            config,
        }
    }

    fn installed(&self) -> bool {
        self.bin_dir.join("greet").exists()
    }

    /// A shell command line's environment: cleared, then only the test's.
    fn shell_command(&self, shell: &str) -> Command {
        let mut cmd = Command::new(shell);
        cmd.env_clear()
            .env("PATH", self.path_var())
            .env("HOME", &self.env.home)
            .env("XDG_CONFIG_HOME", &self.env.config)
            .env("XDG_DATA_HOME", &self.env.data)
            .env("IPKG_CONFIG", &self.config)
            .env("IPKG_NO_DEFAULT_SOURCES", "1")
            .env("TMPDIR", self.env.root())
            .env("NO_COLOR", "1")
            .current_dir(&self.env.work)
            .stdin(Stdio::null());
        cmd
    }

    /// `SHELL -c SCRIPT`, not interactive.
    fn sh(&self, shell: &str, script: &str) -> support::Output {
        let mut cmd = self.shell_command(shell);
        cmd.args(["-c", script]);
        support::run(cmd, None)
    }

    fn path_var(&self) -> String {
        format!("{}:/usr/local/bin:/usr/bin:/bin", path_str(&self.bin_dir))
    }

    /// The line that loads the hook in `shell`.
    fn load_line(&self, shell: &str) -> String {
        let bin = path_str(&ipkg_bin()).to_string();
        match shell {
            "fish" => format!("'{bin}' shell-init fish | source"),
            _ => format!("eval \"$('{bin}' shell-init {shell})\""),
        }
    }
}

#[test]
fn hook_files_parse() {
    let checks = [
        ("bash", "ipkg.bash"),
        ("zsh", "ipkg.zsh"),
        ("fish", "ipkg.fish"),
    ];
    for (shell, file) in checks {
        if !have(shell) {
            continue;
        }
        let path = hooks_dir().join(file);
        let out = Command::new(shell).arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{shell} -n {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // What `shell-init` prints (the binary's path filled in) parses too.
        let env = TestEnv::new();
        let text = env.ipkg(["shell-init", shell]).success().stdout.clone();
        assert!(text.contains(path_str(&ipkg_bin())), "{text}");
        let printed = env.path(file);
        std::fs::write(&printed, text).unwrap();
        let out = Command::new(shell)
            .arg("-n")
            .arg(&printed)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell} -n on `ipkg shell-init {shell}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env = TestEnv::new();
    let bad = env.ipkg(["shell-init", "tcsh"]);
    assert_eq!(bad.failure().status.code(), Some(2));
}

#[test]
fn lookup_hit_miss_and_several_candidates() {
    let w = World::new(false, "prompt");
    // A hit, not on a terminal: a suggestion and 127, nothing installed.
    let hit = w.env.ipkg(["command-not-found", "greet", "a", "b"]);
    assert_eq!(hit.status.code(), Some(127), "{}", hit.describe());
    assert!(
        hit.stderr.contains("`greet` is not installed"),
        "{}",
        hit.stderr
    );
    assert!(
        hit.stderr
            .contains("`greeter` 1.2.3 from registry `main` (publisher k51"),
        "{}",
        hit.stderr
    );
    assert!(
        hit.stderr.contains("`ipkg install main/greeter@=1.2.3`"),
        "{}",
        hit.stderr
    );
    assert!(!w.installed());
    // A miss: the shell's words, 127; for a hook, silence and 3.
    let miss = w.env.ipkg(["command-not-found", "nosuchcmd"]);
    assert_eq!(miss.status.code(), Some(127));
    assert_eq!(miss.stderr_trimmed(), "nosuchcmd: command not found");
    let hook = w
        .env
        .ipkg(["command-not-found", "--hook", "--", "nosuchcmd", "-x"]);
    assert_eq!(hook.status.code(), Some(3), "{}", hook.describe());
    assert_eq!(hook.stderr_trimmed(), "");
    assert_eq!(hook.stdout_trimmed(), "");
    // Through clap (a global option first) it is the same handler.
    let clap = w
        .env
        .ipkg(["--silent", "command-not-found", "greet", "--flag"]);
    assert_eq!(clap.status.code(), Some(127), "{}", clap.describe());
    assert!(
        clap.stderr.contains("main/greeter@=1.2.3"),
        "{}",
        clap.stderr
    );

    // Installed, but its bin dir is not on PATH: say so, offer nothing.
    std::fs::write(w.bin_dir.join("greet"), "#!/bin/sh\n").unwrap();
    let there = w.env.ipkg(["command-not-found", "greet"]);
    assert_eq!(there.status.code(), Some(127));
    assert!(
        there.stderr.contains("is not on `PATH`"),
        "{}",
        there.stderr
    );
    assert!(!there.stderr.contains("ipkg install"), "{}", there.stderr);
    std::fs::remove_file(w.bin_dir.join("greet")).unwrap();

    // Several registries provide it: every one is listed.
    let w2 = World::new(true, "prompt");
    let two = w2.env.ipkg(["command-not-found", "greet"]);
    assert_eq!(two.status.code(), Some(127));
    assert!(
        two.stderr.contains("ipkg install main/greeter@=1.2.3"),
        "{}",
        two.stderr
    );
    assert!(
        two.stderr.contains("ipkg install extra/greeter@=1.2.3"),
        "{}",
        two.stderr
    );
}

#[test]
fn update_rebuilds_the_index() {
    let w = World::new(false, "prompt");
    let index = w.env.prefix.join(".ipkg/state/commands.idx");
    std::fs::remove_file(&index).unwrap();
    let miss = w.env.ipkg(["command-not-found", "--hook", "greet"]);
    assert_eq!(miss.status.code(), Some(3));
    let up = w.env.ipkg(["update"]);
    assert!(
        up.success()
            .stderr
            .contains("Indexed 1 command from 2 registries"),
        "{}",
        up.stderr
    );
    let hit = w.env.ipkg(["command-not-found", "--hook", "greet"]);
    assert_eq!(hit.status.code(), Some(127), "{}", hit.describe());
    // A damaged index names itself and says how to fix it, and the handler
    // still behaves as for a miss.
    std::fs::write(&index, b"not an index").unwrap();
    let bad = w.env.ipkg(["command-not-found", "greet"]);
    assert_eq!(bad.status.code(), Some(127));
    assert!(bad.stderr.contains("commands.idx"), "{}", bad.stderr);
    assert!(bad.stderr.contains("ipkg update"), "{}", bad.stderr);
}

/// `bash -c`, `zsh -c`, `fish -c`: not interactive, so a suggestion and 127,
/// no prompt; a miss gets the shell's usual message; a handler defined
/// before the hook still runs for misses.
#[test]
fn non_interactive_shells_suggest_and_chain() {
    let w = World::new(false, "prompt");
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let load = w.load_line(shell);
        let (status_var, prev) = match shell {
            "bash" => (
                "$?",
                "command_not_found_handle() { echo \"previous handler: $1\" >&2; return 127; }",
            ),
            "zsh" => (
                "$?",
                "command_not_found_handler() { echo \"previous handler: $1\" >&2; return 127; }",
            ),
            _ => (
                "$status",
                "function fish_command_not_found; echo \"previous handler: $argv[1]\" >&2; end",
            ),
        };
        let script = format!("{load}\ngreet a b\necho \"rc={status_var}\"\nnosuchcmd\n");
        let out = w.sh(shell, &script);
        let err = &out.stderr;
        assert!(out.stdout.contains("rc=127"), "{shell}: {}", out.describe());
        assert!(err.contains("`greet` is not installed"), "{shell}: {err}");
        assert!(
            err.contains("ipkg install main/greeter@=1.2.3"),
            "{shell}: {err}"
        );
        assert!(!err.contains("[y/N]"), "{shell}: {err}");
        let usual = match shell {
            "bash" => "bash: nosuchcmd: command not found",
            "zsh" => "zsh: command not found: nosuchcmd",
            _ => "fish: Unknown command: nosuchcmd",
        };
        assert!(err.contains(usual), "{shell}: {err}");
        assert!(!w.installed());

        // Chaining: the handler that was there first gets the misses.
        let script = format!("{prev}\n{load}\nnosuchcmd\ngreet\n");
        let out = w.sh(shell, &script);
        assert!(
            out.stderr.contains("previous handler: nosuchcmd"),
            "{shell}: {}",
            out.describe()
        );
        assert!(
            !out.stderr.contains("previous handler: greet"),
            "{shell}: {}",
            out.describe()
        );
        // ipkg gone (uninstalled after the hook was loaded): the usual message.
        let gone = if shell == "fish" {
            "set -g __ipkg_bin /nonexistent/ipkg"
        } else {
            "__ipkg_bin=/nonexistent/ipkg"
        };
        let out = w.sh(shell, &format!("{load}\n{gone}\ngreet\n"));
        assert!(
            out.stderr.contains(&usual.replace("nosuchcmd", "greet")),
            "{shell}: {}",
            out.describe()
        );
        assert!(
            !out.stderr.contains("No such file"),
            "{shell}: {}",
            out.describe()
        );
        // Loading the hook twice does not make it call itself.
        let script = format!("{load}\n{load}\nnosuchcmd\n");
        let out = w.sh(shell, &script);
        assert!(out.stderr.contains(usual), "{shell}: {}", out.describe());
    }
}

// ---------------------------------------------------------------------------
// Interactive shells under tmux.

/// One shell in a detached tmux session on a private server socket (a new
/// one for every pane); the server is killed, and waited for, on drop.
struct Pane {
    tmux: support::Tmux,
    shell: &'static str,
}

impl Pane {
    fn start(w: &World, shell: &'static str) -> Pane {
        let mut tmux = support::Tmux::new(w.env.root());
        let dir = tmux.dir().to_path_buf();
        let load = w.load_line(shell);
        let rc = dir.join("rc");
        let argv: Vec<String> = match shell {
            "bash" => {
                std::fs::write(&rc, format!("PS1='$ '\n{load}\n")).unwrap();
                vec![
                    "bash".into(),
                    "--noprofile".into(),
                    "--rcfile".into(),
                    path_str(&rc).into(),
                    "-i".into(),
                ]
            }
            "zsh" => {
                std::fs::write(dir.join(".zshrc"), format!("PS1='$ '\n{load}\n")).unwrap();
                vec!["zsh".into(), "--no-globalrcs".into(), "-i".into()]
            }
            _ => vec![
                "fish".into(),
                "--no-config".into(),
                "-i".into(),
                "-C".into(),
                format!("function fish_prompt; echo -n '$ '; end; {load}"),
            ],
        };
        let mut env = vec![
            format!("PATH={}", w.path_var()),
            format!("HOME={}", path_str(&w.env.home)),
            format!("XDG_CONFIG_HOME={}", path_str(&w.env.config)),
            format!("XDG_DATA_HOME={}", path_str(&w.env.data)),
            format!("IPKG_CONFIG={}", path_str(&w.config)),
            "IPKG_NO_DEFAULT_SOURCES=1".into(),
            format!("TMPDIR={}", path_str(w.env.root())),
            "IPKG_NO_DEFAULT_SOURCES=1".into(),
            "TERM=xterm-256color".into(),
            "NO_COLOR=1".into(),
        ];
        if shell == "zsh" {
            env.push(format!("ZDOTDIR={}", path_str(&dir)));
        }
        let mut cmd = tmux.command();
        cmd.args(["new-session", "-d", "-x", "160", "-y", "50"])
            .arg("env")
            .arg("-i")
            .args(&env)
            .args(&argv)
            .current_dir(&w.env.work)
            .env_clear()
            .env("IPKG_NO_DEFAULT_SOURCES", "1")
            .env("PATH", w.path_var())
            .env("TMUX_TMPDIR", &dir);
        tmux.start(cmd);
        let pane = Pane { tmux, shell };
        pane.wait_for("$ ");
        pane
    }

    fn tmux(&self, args: &[&str]) -> support::Output {
        self.tmux.run(args)
    }

    fn screen(&self) -> String {
        self.tmux.screen(&["-J", "-S", "-200"])
    }

    /// Type `text` and press Enter.
    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]).success();
        self.tmux(&["send-keys", "Enter"]).success();
    }

    fn key(&self, key: &str) {
        self.tmux(&["send-keys", "-l", key]).success();
    }

    /// Wait until the screen contains `needle` (60 s at most).
    #[track_caller]
    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_any(&[needle])
    }

    /// Wait until the screen contains one of `needles` (60 s at most).
    #[track_caller]
    fn wait_for_any(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if needles.iter().any(|n| screen.contains(n)) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: none of {needles:?} appeared; the screen:\n{screen}",
                    self.shell
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn status_echo(&self) -> &'static str {
        if self.shell == "fish" {
            "echo rc=$status"
        } else {
            "echo rc=$?"
        }
    }
}

fn tmux_shells() -> Vec<&'static str> {
    if !support::tmux_available() {
        return Vec::new();
    }
    SHELLS.into_iter().filter(|s| have(s)).collect()
}

/// Interactive: the prompt appears; `n` installs nothing and gives 127; a
/// command no registry provides gets the shell's usual message.
#[test]
fn tmux_decline_and_miss() {
    let w = World::new(false, "prompt");
    for shell in tmux_shells() {
        let pane = Pane::start(&w, shell);
        pane.line("greet a b");
        pane.wait_for("Install `greeter` 1.2.3 from registry `main` (publisher k51");
        pane.wait_for("[y/N]");
        pane.key("n");
        pane.line(pane.status_echo());
        pane.wait_for("rc=127");
        assert!(!w.installed(), "{shell}");
        pane.line("nosuchcmd-xyz");
        // Interactive bash (from Debian's /etc/bash.bashrc) and fish define
        // a handler that calls Debian's command-not-found when it is
        // installed; the hook chains to it, and it says
        // `nosuchcmd-xyz: command not found`.
        let usual = match shell {
            "zsh" => "zsh: command not found: nosuchcmd-xyz",
            _ => "nosuchcmd-xyz: command not found",
        };
        let screen = pane.wait_for_any(&[usual, "fish: Unknown command: nosuchcmd-xyz"]);
        let fish_default = "fish: Unknown command: nosuchcmd-xyz";
        assert!(
            screen.contains(usual) || (shell == "fish" && screen.contains(fish_default)),
            "{shell}: {screen}"
        );
    }
}

/// Interactive with `policy = "never"`: a suggestion, no prompt.
#[test]
fn tmux_policy_never_only_suggests() {
    let w = World::new(false, "never");
    for shell in tmux_shells() {
        let pane = Pane::start(&w, shell);
        pane.line("greet a b");
        let screen = pane.wait_for("ipkg install main/greeter@=1.2.3");
        assert!(!screen.contains("[y/N]"), "{shell}: {screen}");
        pane.line(pane.status_echo());
        pane.wait_for("rc=127");
        assert!(!w.installed());
    }
}

/// Interactive, several registries: a choice list, and `none` by default.
#[test]
fn tmux_several_candidates_offer_a_choice() {
    let w = World::new(true, "prompt");
    for shell in tmux_shells() {
        let pane = Pane::start(&w, shell);
        pane.line("greet");
        pane.wait_for("Install it from one of these?");
        pane.wait_for("from registry `extra`");
        pane.wait_for("none: do not install anything");
        pane.tmux(&["send-keys", "Enter"]).success();
        pane.line(pane.status_echo());
        pane.wait_for("rc=127");
        assert!(!w.installed());
    }
}

/// Interactive: `y` installs through `ipkg install` and runs the command with
/// its arguments, passing its status back (bash and zsh; fish always sets
/// `$status` to 127 after a missing command).
#[test]
fn tmux_yes_installs_and_runs() {
    for shell in tmux_shells() {
        let w = World::new(false, "prompt");
        let pane = Pane::start(&w, shell);
        pane.line("greet a 'b c'");
        pane.wait_for("[y/N]");
        pane.key("y");
        pane.wait_for("greet got: a b c");
        assert!(w.installed(), "{shell}");
        pane.line(pane.status_echo());
        if shell != "fish" {
            pane.wait_for("rc=7");
        }
        // Installed now: no handler the second time.
        pane.line("greet again");
        pane.wait_for("greet got: again");
    }
}

/// `policy = "auto"` with `main` trusted: installs without asking.
#[test]
fn tmux_auto_installs_from_a_trusted_registry() {
    for shell in tmux_shells() {
        let w = World::new(false, "auto");
        let pane = Pane::start(&w, shell);
        pane.line("greet x");
        let screen = pane.wait_for("greet got: x");
        assert!(!screen.contains("[y/N]"), "{shell}: {screen}");
    }
}

//! Test support: run the real `ipkg` binary in a throwaway environment, drive a
//! real Kubo node, generate random file trees and compare trees on disk.
//!
//! Modelled on uv's `TestContext` and cargo's testsuite: every test gets its own
//! temporary prefix, home, config and data directories, and the binary runs with
//! a cleared environment so nothing from the developer's machine leaks in.
//!
//! - [`TestEnv`]: the temporary world one test runs `ipkg` in.
//! - [`kubo`]: [`Kubo`] repos and offline daemons on loopback, removed on drop.
//! - [`tree`]: [`gen_tree`], deterministic random trees from a seed, and
//!   [`assert_same_tree`].
//! - [`http`]: a minimal HTTP/1.1 client over a raw TCP stream, for loopback APIs.
//!
//! Every helper panics with a message that says what failed; tests are expected
//! to let those panics through.

// Each integration test crate uses a different part of the support code.
#![allow(dead_code)]

pub mod dns;
pub mod gateway;
pub mod http;
pub mod kubo;
pub mod netns;
pub mod serve;
pub mod tree;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use self::kubo::{Kubo, kubo_available};
#[allow(unused_imports)]
pub use self::tree::{Compare, TreeSpec, assert_same_tree, gen_tree};

/// How long one `ipkg` or `ipfs` invocation may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// A temporary world for one test: prefix, home, config, data and cache
/// directories, plus a scratch directory for inputs and outputs. All of it is
/// removed when the value is dropped.
pub struct TestEnv {
    root: tempfile::TempDir,
    /// `IPKG_PREFIX`: where ipkg keeps its store, packages and state.
    pub prefix: PathBuf,
    /// `HOME`.
    pub home: PathBuf,
    /// `XDG_CONFIG_HOME`.
    pub config: PathBuf,
    /// `XDG_DATA_HOME`.
    pub data: PathBuf,
    /// `XDG_CACHE_HOME`.
    pub cache: PathBuf,
    /// Scratch space for test inputs and outputs (`TestEnv::path`).
    pub work: PathBuf,
    /// `IPKG_BIN_DIR`: where command links go (never the real
    /// `/usr/local/bin`, even when the tests run as root).
    pub bin: PathBuf,
    extra_env: Vec<(OsString, OsString)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let root = temp_dir("ipkg-test-");
        let base = root.path().to_path_buf();
        let env = TestEnv {
            prefix: base.join("prefix"),
            home: base.join("home"),
            config: base.join("home/.config"),
            data: base.join("home/.local/share"),
            cache: base.join("home/.cache"),
            work: base.join("work"),
            bin: base.join("bin"),
            root,
            extra_env: Vec::new(),
        };
        for dir in [
            &env.prefix,
            &env.home,
            &env.config,
            &env.data,
            &env.cache,
            &env.work,
        ] {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating test directory {}: {e}", dir.display()));
        }
        env
    }

    /// The temporary directory everything lives in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path inside the scratch directory.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.work.join(rel)
    }

    /// Write `$XDG_CONFIG_HOME/ipkg/config.toml`. Tests that touch the network
    /// name only loopback sources here (and `kubo-api = "off"` unless they
    /// mean to use Kubo), so nothing from the machine leaks in.
    pub fn write_config(&self, toml: &str) {
        let dir = self.config.join("ipkg");
        std::fs::create_dir_all(&dir).expect("creating the config dir");
        std::fs::write(dir.join("config.toml"), toml).expect("writing config.toml");
    }

    /// Set an extra environment variable for every later `ipkg` run.
    pub fn set_env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        self.extra_env.push((key.into(), value.into()));
    }

    /// The `ipkg` command with the test environment and nothing else: the
    /// environment is cleared except `PATH`, and stdin is empty.
    pub fn ipkg_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(ipkg_bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("XDG_DATA_HOME", &self.data)
            .env("XDG_CACHE_HOME", &self.cache)
            .env("IPKG_PREFIX", &self.prefix)
            .env("IPKG_BIN_DIR", &self.bin)
            .env("TMPDIR", self.root.path())
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            // Never the built-in public sources: tests talk only to loopback.
            .env("IPKG_NO_DEFAULT_SOURCES", "1")
            .current_dir(&self.work)
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run `ipkg ARGS…` to completion.
    pub fn ipkg<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.ipkg_command(args), None)
    }

    /// Run `ipkg ARGS…` with `input` on stdin.
    pub fn ipkg_stdin<I, S>(&self, args: I, input: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.ipkg_command(args), Some(input))
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// The binary under test: the one cargo built for this test run, or
/// `$IPKG_TEST_BIN` when set (to run the suite against another build, e.g. a
/// release binary).
pub fn ipkg_bin() -> PathBuf {
    match std::env::var_os("IPKG_TEST_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ipkg")),
    }
}

/// A temporary directory whose name does not start with a dot: Kubo and ipkg
/// skip hidden names, and tempfile's default prefix is `.tmp`.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("creating a temporary directory")
}

/// A path as `&str`; test paths are always UTF-8.
pub fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("test path is not UTF-8: {}", path.display()))
}

/// What a finished command printed and how it exited.
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    /// Stdout as bytes (for binary output such as `ipkg cat`).
    pub stdout_raw: Vec<u8>,
    /// Stdout decoded lossily as UTF-8.
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panic unless the command exited 0.
    #[track_caller]
    pub fn success(&self) -> &Output {
        if !self.status.success() {
            panic!("command failed: {}\n{}", self.command, self.describe());
        }
        self
    }

    /// Panic unless the command exited non-zero.
    #[track_caller]
    pub fn failure(&self) -> &Output {
        if self.status.success() {
            panic!(
                "command succeeded but should have failed: {}\n{}",
                self.command,
                self.describe()
            );
        }
        self
    }

    /// Stdout without leading and trailing whitespace.
    pub fn stdout_trimmed(&self) -> &str {
        self.stdout.trim()
    }

    /// Stderr without leading and trailing whitespace.
    pub fn stderr_trimmed(&self) -> &str {
        self.stderr.trim()
    }

    /// Non-empty stdout lines, trimmed.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The status, stdout and stderr, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "status: {}", self.status);
        let _ = writeln!(s, "--- stdout ---\n{}", clip(&self.stdout));
        let _ = writeln!(s, "--- stderr ---\n{}", clip(&self.stderr));
        s
    }
}

/// Keep failure messages readable when a command printed megabytes.
fn clip(s: &str) -> String {
    const MAX: usize = 8000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} more bytes)", &s[..end], s.len() - end)
}

/// Run `cmd` to completion within [`COMMAND_TIMEOUT`], feeding it `input`.
pub fn run(mut cmd: Command, input: Option<&[u8]>) -> Output {
    let command = describe_command(&cmd);
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {command}: {e}"));
    let stdin_thread = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("child stdin is piped");
        let bytes = bytes.to_vec();
        // A child that exits without reading its input gives EPIPE; that is the
        // child's business, reported through its status.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let stdout = reader_thread(child.stdout.take().expect("child stdout is piped"));
    let stderr = reader_thread(child.stderr.take().expect("child stderr is piped"));

    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("timed out after {COMMAND_TIMEOUT:?}: {command}");
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => panic!("waiting for {command}: {e}"),
        }
    };
    if let Some(t) = stdin_thread {
        let _ = t.join();
    }
    let stdout_raw = stdout.join().expect("stdout reader thread panicked");
    let stderr_raw = stderr.join().expect("stderr reader thread panicked");
    Output {
        command,
        status,
        stdout: String::from_utf8_lossy(&stdout_raw).into_owned(),
        stdout_raw,
        stderr: String::from_utf8_lossy(&stderr_raw).into_owned(),
    }
}

fn reader_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    if let Some(name) = Path::new(&s).file_name() {
        s = name.to_string_lossy().into_owned();
    }
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// True when running under CI (`CI` set to anything but empty, `0` or
/// `false`), where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

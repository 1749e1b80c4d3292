//! Runtime skips that stay visible.
//!
//! libtest hides the stderr of a passing test, so a test that returns early
//! because a tool is missing would show up as `ok`. Every runtime skip goes
//! through [`skip`] instead, which
//!
//! - prints `skipped: TEST: [KEY] REASON` to stderr;
//! - appends `TEST<TAB>KEY: REASON` to the file named by `IPKG_SKIP_LOG`
//!   (`.ci/run` sets it and prints the file as the "skipped at runtime"
//!   summary at the end of its log);
//! - under CI (`CI` set, see [`in_ci`]) panics, so the test fails, unless
//!   `KEY` is listed in `IPKG_CI_ALLOWED_SKIPS` (keys separated by spaces or
//!   commas). `.ci/run` lists a key there only when it knows the thing is
//!   unavailable: `gateway-conformance` when it could not build the suite,
//!   `root` when it does not run as root.
//!
//! `TEST` is `BINARY::TEST_NAME`, taken from the test binary and the name of
//! the thread libtest runs the test on, so helpers such as
//! [`kubo_available`](super::kubo_available) need not be told which test
//! calls them.
//!
//! ```ignore
//! if !have_tmux {
//!     support::skip("tmux", "tmux is not installed");
//!     return;
//! }
//! ```
//!
//! Keys in use: `ipfs`, `tmux`, `bash`/`zsh`/`fish`, `dnsmasq`, `sandbox`,
//! `cgroup`, `setpriv`, `root`, `netns`, `tmpfs`, `busybox-static`,
//! `gateway-conformance`.

use std::io::Write as _;

use super::in_ci;

/// The file every skip is appended to, one `TEST<TAB>KEY: REASON` line each.
pub const SKIP_LOG_ENV: &str = "IPKG_SKIP_LOG";

/// Skip keys CI tolerates (spaces or commas between them).
pub const ALLOWED_SKIPS_ENV: &str = "IPKG_CI_ALLOWED_SKIPS";

/// Record that the current test skips (all of it or one part, the caller
/// decides what to leave out) because of `key` (what is missing, e.g.
/// `ipfs`), for `reason` (one sentence naming what is missing and how to get
/// it). Under CI this panics unless `key` is allowed, see the module docs.
#[track_caller]
pub fn skip(key: &str, reason: impl std::fmt::Display) {
    let test = current_test();
    let reason = one_line(&reason.to_string());
    let allowed = allowed_keys().iter().any(|k| k == key);
    let fails = in_ci() && !allowed;
    eprintln!("skipped: {test}: [{key}] {reason}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV).filter(|v| !v.is_empty()) {
        let verdict = if fails {
            " (FAILED: not allowed under CI)"
        } else {
            ""
        };
        // One short write with O_APPEND: lines from parallel tests do not mix.
        let line = format!("{test}\t{key}: {reason}{verdict}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "{test}: cannot append the skip to {SKIP_LOG_ENV}={}: {e}",
                std::path::Path::new(&log).display()
            );
        }
    }
    if fails {
        panic!(
            "{test} would skip ([{key}] {reason}), but CI is set and {ALLOWED_SKIPS_ENV} \
             does not list `{key}`: CI must provide it (see .ci/run)"
        );
    }
}

/// The keys in `IPKG_CI_ALLOWED_SKIPS`.
pub fn allowed_keys() -> Vec<String> {
    std::env::var(ALLOWED_SKIPS_ENV)
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

/// `BINARY::TEST_NAME` for the running test: the test binary's name without
/// cargo's hash suffix, and the name libtest gives the test's thread.
pub fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash))
                if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                name.to_string()
            }
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_string());
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => binary,
    }
}

/// Reasons go on one line of the log, and stay short.
fn one_line(s: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

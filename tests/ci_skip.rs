//! The runtime skip helper (`support::skip`) that every test skips through:
//! a skip is printed and logged to `IPKG_SKIP_LOG`, and under `CI` it fails
//! its test unless `IPKG_CI_ALLOWED_SKIPS` lists its key. Checked by running
//! this test binary again on the one test below that skips.

mod support;

use std::process::Command;

const TARGET: &str = "skips_when_asked_to";

/// Skips (key `demo-tool`) when `IPKG_SKIP_DEMO` is set, as the other tests
/// of this file ask; otherwise it has nothing to do.
#[test]
fn skips_when_asked_to() {
    if std::env::var_os("IPKG_SKIP_DEMO").is_some() {
        support::skip("demo-tool", "demo-tool is not\ninstalled");
    }
}

/// Run [`skips_when_asked_to`] in a child with `env`, returning whether it
/// passed, its output and the skip log.
fn run_target(env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = support::temp_dir("ipkg-skip-");
    let log = dir.path().join("skipped.tsv");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([TARGET, "--exact", "--nocapture"])
        .env_remove("CI")
        .env_remove("IPKG_CI_ALLOWED_SKIPS")
        .env("IPKG_SKIP_DEMO", "1")
        .env("IPKG_SKIP_LOG", &log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = support::run(cmd, None);
    let text = format!("{}{}", out.stdout, out.stderr);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (out.status.success(), text, log)
}

#[test]
fn a_skip_outside_ci_passes_and_is_logged() {
    let (passed, out, log) = run_target(&[]);
    assert!(passed, "{out}");
    assert!(
        out.contains(
            "skipped: ci_skip::skips_when_asked_to: [demo-tool] demo-tool is not installed"
        ),
        "{out}"
    );
    assert_eq!(
        log,
        "ci_skip::skips_when_asked_to\tdemo-tool: demo-tool is not installed\n"
    );
}

#[test]
fn a_skip_under_ci_fails_and_names_the_test() {
    let (passed, out, log) = run_target(&[("CI", "true")]);
    assert!(!passed, "{out}");
    assert!(
        out.contains("ci_skip::skips_when_asked_to would skip ([demo-tool]"),
        "{out}"
    );
    assert!(
        out.contains("IPKG_CI_ALLOWED_SKIPS does not list `demo-tool`"),
        "{out}"
    );
    assert_eq!(
        log,
        "ci_skip::skips_when_asked_to\tdemo-tool: demo-tool is not installed \
         (FAILED: not allowed under CI)\n"
    );
}

#[test]
fn a_skip_under_ci_passes_only_when_its_key_is_allowed() {
    let (passed, out, log) = run_target(&[
        ("CI", "true"),
        ("IPKG_CI_ALLOWED_SKIPS", "gateway-conformance,demo-tool"),
    ]);
    assert!(passed, "{out}");
    assert_eq!(
        log,
        "ci_skip::skips_when_asked_to\tdemo-tool: demo-tool is not installed\n"
    );
    // Another key allowed is not enough.
    let (passed, out, _) = run_target(&[
        ("CI", "1"),
        ("IPKG_CI_ALLOWED_SKIPS", "gateway-conformance demo"),
    ]);
    assert!(!passed, "{out}");
}

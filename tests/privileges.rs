//! The default layouts: root with the system prefix (`/opt/ipfs_programs`,
//! `/usr/local/bin`) and an unprivileged user with the per-user prefix (the
//! XDG data dir, `~/.local/bin`), each through a whole cycle with no
//! `--prefix` or `--bin-dir`.
//!
//! Both need root to set up: the system case runs in a private mount
//! namespace with fresh tmpfs mounts over `/opt` and `/usr/local/bin`, so the
//! host's directories are never touched; the user case drops to `nobody`.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{ipkg_bin, temp_dir};

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

/// The cycle, as a shell script: publish two versions, install, run,
/// switch, remove, and print where things were.
fn cycle_script(ipkg: &Path, examples: &Path) -> String {
    format!(
        r#"set -eu
I='{ipkg}'
E='{examples}'
"$I" key gen main >/dev/null
"$I" registry init main --key main >/dev/null
"$I" publish --registry main "$E/hello/1.0.0" >/dev/null 2>&1
"$I" publish --registry main "$E/hello/1.1.0" >/dev/null 2>&1
"$I" publish --registry main "$E/with-hooks" >/dev/null 2>&1
"$I" install with-hooks >/dev/null 2>&1
"$I" install hello@=1.0.0 >/dev/null
"$I" doctor --json > /dev/null || true
echo "prefix=$("$I" info hello --json | sed -n 's/.*"path": "\(.*\)".*/\1/p')"
echo "cmd=$(command -v hello || true)"
hello a
"$I" install hello@1.1.0 >/dev/null
hello b
"$I" switch hello 1.0.0 >/dev/null
hello c
"$I" remove hello >/dev/null
"$I" gc >/dev/null
hash -r; command -v hello || echo gone
"#,
        ipkg = ipkg.display(),
        examples = examples.display()
    )
}

fn expect_cycle(stdout: &str, prefix: &str, bin: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            &format!("prefix={prefix}/hello") as &str,
            &format!("cmd={bin}/hello"),
            "Hello, a! (hello 1.0.0)",
            "Hello, b, nice to meet you! (hello 1.1.0)",
            "Hello, c! (hello 1.0.0)",
            "gone",
        ],
        "{stdout}"
    );
}

#[test]
fn root_uses_the_system_prefix() {
    if !is_root() {
        support::skip("root", "needs root (a private mount namespace over /opt)");
        return;
    }
    let home = temp_dir("ipkg-root-home-");
    let script = format!(
        "mount -t tmpfs tmpfs /opt && mount -t tmpfs tmpfs /usr/local/bin && {{\n{}\n}}",
        cycle_script(&ipkg_bin(), &examples())
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", home.path())
        .env("IPKG_CONFIG", "/dev/null")
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    expect_cycle(&stdout, "/opt/ipfs_programs", "/usr/local/bin");
}

#[test]
fn an_unprivileged_user_gets_a_prefix_in_their_home() {
    if !is_root() {
        // Every other test already runs unprivileged with a temporary prefix.
        support::skip("root", "needs root to become `nobody`");
        return;
    }
    // `nobody` must reach the binary and the examples: copy both into a
    // directory it can read.
    // Under /tmp, not TMPDIR: every ancestor must be searchable by `nobody`
    // (a CI's TMPDIR may be a private 0700 directory).
    let root = tempfile::Builder::new()
        .prefix("ipkg-user-")
        .tempdir_in("/tmp")
        .expect("creating a temporary directory in /tmp");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = root.path().join("ipkg");
    std::fs::copy(ipkg_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ex = root.path().join("examples");
    let status = Command::new("cp")
        .args(["-a"])
        .arg(examples())
        .arg(&ex)
        .status()
        .unwrap();
    assert!(status.success());
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&home)
        .status()
        .unwrap();
    assert!(chown.success());
    let user_bin = home.join(".local/bin");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(cycle_script(&bin, &ex))
        .env_clear()
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", user_bin.display()),
        )
        .env("HOME", &home)
        .env("IPKG_CONFIG", "/dev/null")
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .current_dir(&home)
        .output()
        .expect("running setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("setpriv") {
        support::skip("setpriv", format!("cannot drop privileges here: {stderr}"));
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let prefix = home.join(".local/share/ipfs_programs");
    expect_cycle(
        &stdout,
        &prefix.display().to_string(),
        &user_bin.display().to_string(),
    );
    // Hooks ran in the sandbox as the user, too.
    let log = prefix.join(".ipkg/state/data/with-hooks/hooks.log");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log.contains("post-install with-hooks"), "{log}");
}

#[test]
fn a_full_disk_fails_clearly_and_keeps_what_is_installed() {
    if !is_root() {
        support::skip(
            "root",
            "needs root (a small tmpfs in a private mount namespace)",
        );
        return;
    }
    let root = temp_dir("ipkg-full-");
    let big = root.path().join("big");
    std::fs::create_dir_all(big.join("bin")).unwrap();
    std::fs::write(
        big.join("ipkg.toml"),
        "[package]\nname = \"big\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\nbig = \"bin/big\"\n",
    )
    .unwrap();
    std::fs::write(big.join("bin/big"), "#!/bin/sh\necho big\n").unwrap();
    std::fs::set_permissions(big.join("bin/big"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut rng = support::tree::Rng::new(7);
    let mut blob = vec![0u8; 6 << 20];
    rng.fill(&mut blob);
    std::fs::write(big.join("blob"), &blob).unwrap();
    let prefix = root.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    // 8 MiB: room for hello, not for 6 MiB stored twice (blocks and files).
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=8m tmpfs '{prefix}' || exit 99
I='{ipkg}'
"$I" install --allow-unsigned '{hello}' >/dev/null 2>&1 || {{ echo hello-failed; exit 1; }}
"$I" install --allow-unsigned '{big}'; echo "big-exit=$?"
'{bin}/hello' still
"$I" verify >/dev/null 2>&1; echo "verify-exit=$?"
"$I" list
ls -A '{prefix}/.ipkg/pkgs' | grep -c tmp || true
"#,
        prefix = prefix.display(),
        ipkg = ipkg_bin().display(),
        hello = examples().join("hello/1.0.0").display(),
        big = big.display(),
        bin = root.path().join("bin").display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", root.path())
        .env("IPKG_CONFIG", "/dev/null")
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .env("IPKG_PREFIX", &prefix)
        .env("IPKG_BIN_DIR", root.path().join("bin"))
        .env("NO_COLOR", "1")
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(99) {
        support::skip("tmpfs", format!("cannot mount a tmpfs here: {stderr}"));
        return;
    }
    let report = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert!(stdout.contains("big-exit=1"), "{report}");
    assert!(stderr.contains("No space left on device"), "{report}");
    assert!(stderr.contains("hint: free some space"), "{report}");
    // The error names where it could not write.
    assert!(stderr.contains(&prefix.display().to_string()), "{report}");
    assert!(stdout.contains("Hello, still! (hello 1.0.0)"), "{report}");
    assert!(stdout.contains("verify-exit=0"), "{report}");
    assert!(!stdout.contains("big 1.0.0"), "{report}");
    // No half-unpacked tree is left behind.
    assert_eq!(stdout.lines().last(), Some("0"), "{report}");
}

//! The `ipkg::sandbox` builder against the real bubblewrap: exit codes,
//! isolation, and each limit. The host's `/` is mounted read-only as the root
//! so host tools (`/bin/sh`) can play the program.

mod support;

use std::time::Duration;

use ipkg::sandbox::{Enforcement, Limits, Sandbox, Stream, probe};

/// Skip (with a reason) when this machine cannot make sandboxes, unless under
/// CI, where that is a failure.
fn sandbox_or_skip() -> bool {
    let p = probe();
    if p.ok() {
        return true;
    }
    support::skip(
        "sandbox",
        format!("cannot run bubblewrap sandboxes here: {:?}", p.userns),
    );
    false
}

fn host_root() -> Sandbox {
    Sandbox::new()
        .ro_bind("/", "/")
        .proc("/proc")
        .dev("/dev")
        .tmpfs("/tmp")
        .env("PATH", "/usr/bin:/bin")
        .stdout(Stream::Null)
}

fn sh(sb: &Sandbox, script: &str) -> ipkg::sandbox::RunOutcome {
    sb.run("/bin/sh", &["-c", script])
        .expect("the sandbox runs")
}

#[test]
fn exit_codes_pass_through() {
    if !sandbox_or_skip() {
        return;
    }
    let sb = host_root();
    assert!(sh(&sb, "exit 0").success());
    let out = sh(&sb, "exit 7");
    assert_eq!(out.code(), 7);
    assert!(!out.limit_hit());
}

#[test]
fn the_environment_is_only_what_is_set() {
    if !sandbox_or_skip() {
        return;
    }
    // `CARGO` is set for this test process; it must not reach the sandbox.
    let sb = host_root().env("ONLY", "1");
    assert!(
        sh(
            &sb,
            r#"[ "$ONLY" = 1 ] && [ -z "$HOME" ] && [ -z "$CARGO" ]"#
        )
        .success()
    );
}

#[test]
fn root_is_read_only_and_tmp_is_private() {
    if !sandbox_or_skip() {
        return;
    }
    let sb = host_root();
    assert!(!sh(&sb, "touch /etc/ipkg-sandbox-test").success());
    assert!(sh(&sb, "touch /tmp/x && [ -z \"$(ls /tmp | grep -v '^x$')\" ]").success());
}

#[test]
fn timeout_kills_the_sandbox() {
    if !sandbox_or_skip() {
        return;
    }
    let sb = host_root().limits(Limits {
        timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    });
    let out = sh(&sb, "sleep 30");
    assert!(out.timed_out);
    assert!(out.elapsed < Duration::from_secs(5));
}

#[test]
fn a_fork_bomb_is_stopped() {
    if !sandbox_or_skip() {
        return;
    }
    let p = probe();
    if p.root && !p.cgroup {
        support::skip(
            "cgroup",
            "root without a writable cgroup has no process limit",
        );
        return;
    }
    let sb = host_root().limits(Limits {
        timeout: Some(Duration::from_secs(20)),
        pids: Some(32),
        ..Limits::default()
    });
    let out = sh(&sb, "f() { f | f & }; f; while :; do sleep 30 & done");
    // Under rlimits the shell may die of a failed fork before ipkg sees the
    // sandbox full; either way it was stopped well before the timeout.
    let stopped = out.pids_exceeded || (out.enforcement == Enforcement::Rlimit && !out.success());
    assert!(stopped, "{out:?}");
    assert!(!out.timed_out, "{out:?}");
}

#[test]
fn a_memory_hog_is_stopped() {
    if !sandbox_or_skip() {
        return;
    }
    let sb = host_root().limits(Limits {
        timeout: Some(Duration::from_secs(20)),
        memory: Some(64 << 20),
        ..Limits::default()
    });
    // Holds 256 MiB in a shell variable.
    let out = sh(
        &sb,
        "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo ${#x}",
    );
    assert!(!out.success(), "{out:?}");
    if out.enforcement == Enforcement::Cgroup {
        assert!(out.memory_exceeded, "{out:?}");
    }
}

#[test]
fn a_large_file_is_stopped() {
    if !sandbox_or_skip() {
        return;
    }
    let sb = host_root().limits(Limits {
        file_size: Some(1 << 20),
        ..Limits::default()
    });
    let out = sh(&sb, "head -c 2000000 /dev/zero > /tmp/big");
    assert!(out.file_size_exceeded, "{out:?}");
}

/// Regression (issue 13): a sandbox started by root could make a setuid-root
/// binary in a writable bind, left behind for any local user. No way of
/// setting the bits works: `chmod`, creating with the bits (`open`, and
/// `install`, which uses `fchmod`), `mknod` (`mkfifo -m`). Plain modes still do.
#[test]
fn no_setuid_or_setgid_bit_can_be_set() {
    if !sandbox_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let sb = host_root().bind(dir.path(), dir.path());
    let tries = [
        format!("cp /bin/sh {d}/a && chmod u+s {d}/a"),
        format!("cp /bin/sh {d}/b && chmod g+s {d}/b"),
        format!("install -m 4755 /bin/sh {d}/c"),
        format!(
            "umask 0; perl -MFcntl -e 'sysopen(F, \"{d}/e\", O_CREAT|O_WRONLY, 04755) or exit 1'"
        ),
        format!("mkfifo -m 2755 {d}/f"),
    ];
    for script in &tries {
        let out = sh(&sb, script);
        assert!(!out.success(), "{script} worked");
    }
    assert!(sh(&sb, &format!("cp /bin/sh {d}/g && chmod 0755 {d}/g")).success());
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let mode = e.metadata().unwrap().mode();
        assert_eq!(mode & 0o6000, 0, "{:?} is {mode:o}", e.path());
    }
}

//! `ipkg execute`, `ipkg run --pure` and `ipkg run --sandbox` with the real
//! binary and the real bubblewrap, on the busybox example package as rootfs
//! (`examples/packages/busybox/build.sh`).
//!
//! Skipped with a printed reason only when this machine cannot make
//! sandboxes and `CI` is unset; under CI that is a failure. Network checks
//! only ever aim at a loopback listener this test opened.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Output, TestEnv, path_str};

fn sandbox_or_skip() -> bool {
    let p = ipkg::sandbox::probe();
    if p.ok() {
        return true;
    }
    support::skip(
        "sandbox",
        format!(
            "cannot run bubblewrap sandboxes here: bwrap {:?}, {:?}",
            p.bwrap, p.userns
        ),
    );
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build the busybox example into `dir`.
fn build_busybox(dir: &Path) {
    let out = Command::new("sh")
        .arg(repo().join("examples/packages/busybox/build.sh"))
        .arg(dir)
        .output()
        .expect("running build.sh");
    assert!(
        out.status.success(),
        "build.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The busybox rootfs packed into `env`'s store; returns its CID.
fn busybox_rootfs(env: &TestEnv) -> String {
    let dir = env.path("busybox");
    build_busybox(&dir);
    let out = env.ipkg(["pack", path_str(&dir)]);
    out.success();
    out.stdout_lines()
        .last()
        .expect("pack prints a CID")
        .to_string()
}

/// An input directory with one file.
fn input_dir(env: &TestEnv) -> PathBuf {
    let dir = env.path("input");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from input\n").unwrap();
    dir
}

/// `ipkg execute ROOTFS INPUT sh -c SCRIPT` plus `extra` flags.
fn execute(env: &TestEnv, rootfs: &str, input: &Path, extra: &[&str], script: &str) -> Output {
    let mut args: Vec<String> = vec!["execute".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        rootfs.to_string(),
        path_str(input).to_string(),
        "sh".into(),
        "-c".into(),
        script.into(),
    ]);
    env.ipkg(&args)
}

fn cat(env: &TestEnv, cid_path: &str) -> String {
    let out = env.ipkg(["cat", cid_path]);
    out.success();
    out.stdout.clone()
}

/// The seed's example: `echo blabla > /output/test` gives an output whose
/// `test` holds `blabla`; the same run again gives the same CID, memoised.
#[test]
fn seed_example_output_and_memo() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let script = "echo blabla > /output/test";
    let first = execute(&env, &rootfs, &input, &[], script);
    first.success();
    let cid = first.stdout_trimmed().to_string();
    assert!(first.stderr.contains("Finished"), "{}", first.describe());
    assert_eq!(cat(&env, &format!("{cid}/test")), "blabla\n");

    let second = execute(&env, &rootfs, &input, &[], script);
    second.success();
    assert_eq!(second.stdout_trimmed(), cid);
    assert!(second.stderr.contains("Cached"), "{}", second.describe());

    // --no-cache runs again, and gets the same CID.
    let third = execute(&env, &rootfs, &input, &["--no-cache"], script);
    third.success();
    assert_eq!(third.stdout_trimmed(), cid);
    assert!(third.stderr.contains("Finished"), "{}", third.describe());

    // The output is pinned, so gc keeps it; the rootfs materialised for
    // running is a cache gc clears, made again from the store next time.
    env.ipkg(["gc"]).success();
    assert_eq!(cat(&env, &format!("{cid}/test")), "blabla\n");
    let run_cache = env.prefix.join(".ipkg/run");
    assert_eq!(
        std::fs::read_dir(&run_cache)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    let fourth = execute(&env, &rootfs, &input, &["--no-cache"], script);
    assert_eq!(fourth.success().stdout_trimmed(), cid);
}

/// The input is readable at /input; the exit code is the program's, and the
/// output of a failing program is still added.
#[test]
fn input_is_mounted_and_exit_code_passes_through() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let out = execute(
        &env,
        &rootfs,
        &input,
        &[],
        "cp /input/hello.txt /output/copy; exit 3",
    );
    assert_eq!(out.status.code(), Some(3), "{}", out.describe());
    let cid = out.stdout_trimmed();
    assert_eq!(cat(&env, &format!("{cid}/copy")), "hello from input\n");
}

/// A `.tar.gz` rootfs by CID works like the tree.
#[test]
fn tar_gz_rootfs() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let dir = env.path("busybox");
    build_busybox(&dir);
    let tarball = env.path("rootfs.tar.gz");
    let st = Command::new("tar")
        .args(["-czf", path_str(&tarball), "-C", path_str(&dir), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let added = env.ipkg(["add", "-Q", path_str(&tarball)]);
    added.success();
    let cid = added.stdout_trimmed().to_string();
    let input = input_dir(&env);
    let out = execute(&env, &cid, &input, &[], "echo tar > /output/t");
    out.success();
    assert_eq!(cat(&env, &format!("{}/t", out.stdout_trimmed())), "tar\n");
}

/// No network: a connection to a loopback listener of this test fails and
/// the listener never sees it.
#[test]
fn pure_sandbox_has_no_network() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "if wget -q -T 3 -O /output/got http://127.0.0.1:{port}/; then echo connected > /output/net; else echo refused > /output/net; fi"
    );
    let out = execute(&env, &rootfs, &input, &[], &script);
    out.success();
    let cid = out.stdout_trimmed();
    assert_eq!(cat(&env, &format!("{cid}/net")), "refused\n");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's loopback"
    );
}

/// `/` and `/input` are read-only; the host's files, the user's home and the
/// caller's environment are not visible.
#[test]
fn pure_sandbox_isolation() {
    if !sandbox_or_skip() {
        return;
    }
    let mut env = TestEnv::new();
    env.set_env("IPKG_TEST_SECRET", "s3cret");
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let home = path_str(&env.home).to_string();
    let script = format!(
        r#"
        check() {{ if "$@" 2>/dev/null; then echo yes; else echo no; fi; }}
        echo "root-write $(check touch /new-file)" >> /output/report
        echo "input-write $(check touch /input/new-file)" >> /output/report
        echo "input-change $(check sh -c 'echo x >> /input/hello.txt')" >> /output/report
        echo "passwd $(check test -e /etc/passwd)" >> /output/report
        echo "home $(check test -e {home})" >> /output/report
        echo "root-home $(check test -e /root)" >> /output/report
        echo "tmp-write $(check touch /tmp/x)" >> /output/report
        env > /output/env
        "#
    );
    let out = execute(&env, &rootfs, &input, &[], &script);
    out.success();
    let cid = out.stdout_trimmed();
    let report = cat(&env, &format!("{cid}/report"));
    for line in [
        "root-write no",
        "input-write no",
        "input-change no",
        "passwd no",
        "home no",
        "root-home no",
        "tmp-write yes",
    ] {
        assert!(report.contains(line), "expected `{line}` in:\n{report}");
    }
    let envs = cat(&env, &format!("{cid}/env"));
    assert!(!envs.contains("s3cret"), "{envs}");
    assert!(!envs.contains("IPKG_PREFIX"), "{envs}");
    assert!(envs.contains("SOURCE_DATE_EPOCH=315532800"), "{envs}");
    assert!(envs.contains("HOME=/tmp"), "{envs}");
    assert!(envs.contains("PATH=/usr/local/sbin"), "{envs}");
    // The input on the host is untouched.
    assert_eq!(
        std::fs::read_to_string(input.join("hello.txt")).unwrap(),
        "hello from input\n"
    );
}

#[track_caller]
fn assert_limit(out: &Output, words: &str) {
    assert_eq!(out.status.code(), Some(7), "{}", out.describe());
    assert!(out.stdout_trimmed().is_empty(), "{}", out.describe());
    assert!(out.stderr.contains(words), "{}", out.describe());
}

#[test]
fn limits_memory_hog() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    // Holds 256 MiB in a shell variable.
    let out = execute(
        &env,
        &rootfs,
        &input,
        &["--memory", "64M", "--timeout", "60s"],
        "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo ${#x} > /output/n",
    );
    assert_limit(&out, "memory");
}

#[test]
fn limits_fork_bomb() {
    if !sandbox_or_skip() {
        return;
    }
    let p = ipkg::sandbox::probe();
    if p.root && !p.cgroup {
        // RLIMIT_NPROC does not bind uid 0; `unprivileged_user` still covers
        // the rlimit path.
        support::skip(
            "cgroup",
            "root without a writable cgroup has no process limit",
        );
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let out = execute(
        &env,
        &rootfs,
        &input,
        &["--pids", "32", "--timeout", "60s"],
        "f() { f | f & }; f; while :; do sleep 30 & done",
    );
    assert_limit(&out, "processes");
}

#[test]
fn limits_timeout() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let start = Instant::now();
    let out = execute(&env, &rootfs, &input, &["--timeout", "500ms"], "sleep 60");
    assert_limit(&out, "timeout");
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn limits_max_output() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    // One file past the limit is stopped as it is written.
    let out = execute(
        &env,
        &rootfs,
        &input,
        &["--max-output", "1M"],
        "head -c 2000000 /dev/zero > /output/big",
    );
    assert_limit(&out, "limit of 1.0 MiB");
    // Files each under the limit but over it together are refused afterwards.
    let out = execute(
        &env,
        &rootfs,
        &input,
        &["--max-output", "1M"],
        "head -c 600000 /dev/zero > /output/a; head -c 600000 /dev/zero > /output/b",
    );
    assert_limit(&out, "over the limit");
}

/// `--check` reports a reproducible run, and a run whose outputs differ.
#[test]
fn check_runs_twice() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let out = execute(&env, &rootfs, &input, &["--check"], "echo same > /output/x");
    out.success();
    assert!(out.stderr.contains("Reproduced"), "{}", out.describe());
    let out = execute(
        &env,
        &rootfs,
        &input,
        &["--check"],
        "head -c 16 /dev/urandom > /output/x",
    );
    assert_eq!(out.status.code(), Some(4), "{}", out.describe());
    assert!(
        out.stderr.contains("not reproducible"),
        "{}",
        out.describe()
    );
}

/// A memo entry whose output blocks are gone is not used.
#[test]
fn memo_needs_the_output_blocks() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let script = "echo kept > /output/k";
    let first = execute(&env, &rootfs, &input, &[], script);
    first.success();
    std::fs::remove_dir_all(env.prefix.join(".ipkg/blocks")).unwrap();
    let second = execute(&env, &rootfs, &input, &[], script);
    second.success();
    assert!(second.stderr.contains("Finished"), "{}", second.describe());
    assert_eq!(second.stdout_trimmed(), first.stdout_trimmed());
}

/// `run --pure` with a package program and no rootfs (busybox is static).
#[test]
fn run_pure_with_a_package_program() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let out = env.ipkg([
        "run",
        "--pure",
        "--input",
        path_str(&input),
        &format!("{rootfs}/bin/busybox"),
        "--",
        "sh",
        "-c",
        "busybox wc -c < /input/hello.txt > /output/n; busybox ls / > /output/ls",
    ]);
    out.success();
    let cid = out.stdout_trimmed();
    assert_eq!(cat(&env, &format!("{cid}/n")).trim(), "17");
    let ls = cat(&env, &format!("{cid}/ls"));
    assert!(ls.contains("pkg") && !ls.contains("etc"), "{ls}");
}

/// Clear errors when bubblewrap is missing.
#[test]
fn missing_bwrap_is_a_clear_error() {
    let mut env = TestEnv::new();
    env.set_env("IPKG_BWRAP", "/nonexistent/bwrap");
    let dir = env.path("rootfs");
    std::fs::create_dir_all(dir.join("sbin")).unwrap();
    std::fs::write(dir.join("sbin/init"), "#!/bin/sh\n").unwrap();
    let input = input_dir(&env);
    let out = env.ipkg(["execute", path_str(&dir), path_str(&input)]);
    out.failure();
    assert!(out.stderr.contains("bubblewrap"), "{}", out.describe());
    assert!(out.stderr.contains("hint:"), "{}", out.describe());
}

/// A small package with a script that reports what it sees.
fn probe_package(env: &TestEnv) -> PathBuf {
    let dir = env.path("probe-pkg");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let script = dir.join("bin/probe");
    std::fs::write(
        &script,
        r#"#!/bin/sh
check() { if "$@" 2>/dev/null; then echo yes; else echo no; fi; }
echo "passwd $(check test -e /etc/passwd)"
echo "home-empty $(check test -z "$(ls -A "$HOME")")"
echo "pkg-write $(check touch /pkg/x)"
echo "tmp-write $(check touch /tmp/x)"
echo "secret ${IPKG_TEST_SECRET:-none}"
if [ -n "$1" ]; then echo written > "$1/from-sandbox"; fi
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("ipkg.toml"),
        "[package]\nname = \"probe\"\nversion = \"1.0.0\"\ntargets = [\"x86_64-linux\", \"aarch64-linux\"]\n\n[commands]\nprobe = \"bin/probe\"\n",
    )
    .unwrap();
    dir
}

/// `run --sandbox` of a local package and of its CID: host files and the
/// caller's environment are hidden, the package is read-only, `--bind` shares
/// a directory on purpose, and there is no network.
#[test]
fn run_sandbox_hides_the_host() {
    if !sandbox_or_skip() {
        return;
    }
    let mut env = TestEnv::new();
    env.set_env("IPKG_TEST_SECRET", "s3cret");
    let pkg = probe_package(&env);
    let shared = env.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let out = env.ipkg([
        "run",
        "--sandbox",
        "--allow-unsigned",
        "--bind",
        path_str(&shared),
        path_str(&pkg),
        "--",
        path_str(&shared),
    ]);
    out.success();
    // The script's stdout is ours here (not a pure run).
    for line in [
        "passwd no",
        "home-empty yes",
        "pkg-write no",
        "tmp-write yes",
        "secret none",
    ] {
        assert!(out.stdout.contains(line), "`{line}`: {}", out.describe());
    }
    assert_eq!(
        std::fs::read_to_string(shared.join("from-sandbox")).unwrap(),
        "written\n"
    );

    // By CID, after packing; the exit code passes through.
    let packed = env.ipkg(["pack", path_str(&pkg)]);
    packed.success();
    let cid = packed.stdout_lines().last().unwrap().to_string();
    let out = env.ipkg(["run", "--sandbox", "--allow-unsigned", &cid]);
    out.success();
    assert!(out.stdout.contains("passwd no"), "{}", out.describe());

    // By installed name.
    env.ipkg(["install", "--allow-unsigned", path_str(&pkg)])
        .success();
    let out = env.ipkg(["run", "--sandbox", "probe"]);
    out.success();
    assert!(out.stdout.contains("pkg-write no"), "{}", out.describe());

    // An installed package as the program of a pure run (host tools are not
    // there: the script's shell comes from the busybox rootfs).
    let rootfs = busybox_rootfs(&env);
    let out = env.ipkg([
        "run", "--pure", "--rootfs", &rootfs, "probe", "--", "/output",
    ]);
    out.success();
    let cid = out.stdout_trimmed();
    assert_eq!(cat(&env, &format!("{cid}/from-sandbox")), "written\n");
}

#[test]
fn run_sandbox_has_no_network_unless_asked() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let dir = env.path("net-pkg");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let script = dir.join("bin/connect");
    // bash's /dev/tcp: no client tool needed on the host.
    std::fs::write(
        &script,
        "#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/$1 && echo connected || echo refused\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("ipkg.toml"),
        "[package]\nname = \"connect\"\nversion = \"1.0.0\"\ntargets = [\"x86_64-linux\", \"aarch64-linux\"]\n\n[commands]\nconnect = \"bin/connect\"\n",
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let pkg = path_str(&dir);
    let out = env.ipkg(["run", "--sandbox", "--allow-unsigned", pkg, "--", &port]);
    assert!(out.stdout.contains("refused"), "{}", out.describe());
    let out = env.ipkg([
        "run",
        "--sandbox",
        "--allow-unsigned",
        "--net",
        pkg,
        "--",
        &port,
    ]);
    assert!(out.stdout.contains("connected"), "{}", out.describe());
}

/// When the tests run as root, a pure run, the fork bomb and the memory hog
/// also run as an unprivileged user (uid 65534), so CI covers both.
#[test]
fn unprivileged_user() {
    if !sandbox_or_skip() {
        return;
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        support::skip("root", "not root; the other tests already run unprivileged");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        support::skip("setpriv", "no setpriv (util-linux)");
        return;
    }
    // A world-writable scratch directory the other user can reach.
    let scratch = tempfile::Builder::new()
        .prefix("ipkg-unpriv-")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let base = scratch.path();
    let bb = base.join("busybox");
    build_busybox(&bb);
    let input = base.join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("f"), "x\n").unwrap();
    for p in [&bb, &input] {
        Command::new("chmod")
            .args(["-R", "a+rX", path_str(p)])
            .status()
            .unwrap();
    }
    // A copy the other user can reach wherever the build directory is.
    let bin = base.join("ipkg");
    std::fs::copy(support::ipkg_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(args)
            .env_clear()
            .env("IPKG_NO_DEFAULT_SOURCES", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", base)
            .env("IPKG_PREFIX", base.join("prefix"))
            .env("IPKG_NO_DEFAULT_SOURCES", "1")
            .env("NO_COLOR", "1")
            .current_dir(base);
        support::run(cmd, None)
    };
    let packed = as_nobody(&["pack", path_str(&bb)]);
    packed.success();
    let rootfs = packed.stdout_lines().last().unwrap().to_string();
    let out = as_nobody(&[
        "execute",
        &rootfs,
        path_str(&input),
        "sh",
        "-c",
        "id -u > /output/id; cat /input/f > /output/f",
    ]);
    out.success();
    let cid = out.stdout_trimmed().to_string();
    let id = as_nobody(&["cat", &format!("{cid}/id")]);
    assert_eq!(id.success().stdout_trimmed(), "1000");

    let bomb = as_nobody(&[
        "execute",
        "--pids",
        "32",
        "--timeout",
        "60s",
        &rootfs,
        path_str(&input),
        "sh",
        "-c",
        "f() { f | f & }; f; while :; do sleep 30 & done",
    ]);
    assert_limit(&bomb, "processes");
    let hog = as_nobody(&[
        "execute",
        "--memory",
        "64M",
        "--timeout",
        "60s",
        &rootfs,
        path_str(&input),
        "sh",
        "-c",
        "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo ${#x} > /output/n",
    ]);
    assert_limit(&hog, "memory");
}

/// Killing ipkg kills the sandbox: nothing of it is left running.
#[test]
fn the_sandbox_dies_with_ipkg() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let rootfs = busybox_rootfs(&env);
    let input = input_dir(&env);
    let marker = format!("ipkg-marker-{}", std::process::id());
    let mut child = env
        .ipkg_command([
            "execute",
            "--no-cache",
            &rootfs,
            path_str(&input),
            "sh",
            "-c",
            &format!("sleep 60; echo {marker}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let alive = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&marker))
            .collect()
    };
    assert!(!alive().is_empty(), "the sandbox should be running");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !alive().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(alive().is_empty(), "left behind: {:?}", alive());
}

/// Clear errors when user namespaces are unavailable (a stand-in bwrap that
/// fails as bubblewrap does on such a kernel).
#[test]
fn no_user_namespaces_is_a_clear_error() {
    let mut env = TestEnv::new();
    let fake = env.path("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'bubblewrap 0.8.0'; exit 0; fi\necho 'bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set_env("IPKG_BWRAP", &fake);
    let dir = env.path("rootfs");
    std::fs::create_dir_all(dir.join("sbin")).unwrap();
    std::fs::write(dir.join("sbin/init"), "#!/bin/sh\n").unwrap();
    let input = input_dir(&env);
    let out = env.ipkg(["execute", path_str(&dir), path_str(&input)]);
    out.failure();
    assert!(
        out.stderr.contains("cannot create namespaces"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("unprivileged_userns_clone"),
        "{}",
        out.describe()
    );
    assert!(out.stdout_trimmed().is_empty(), "{}", out.describe());
}

//! `ipkg bundle` against the real binary: Debian's monero bundled into `xmr`
//! runs in a bubblewrap sandbox holding only the package, `/proc` and `/dev`;
//! a small C program with a library found through `$ORIGIN` is bundled and
//! installed; a missing library and setuid/setgid programs are refused with
//! the file named and nothing written.
//!
//! Needs bubblewrap, a C compiler with a static libc, and Debian's `monero`
//! (all in .ci/run); without one a test is skipped, except under CI.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{TestEnv, in_ci, ipkg_bin, path_str};

/// Whether `tool --version` runs; under CI a missing tool fails the test.
fn have(tool: &str, why: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !in_ci(),
            "`{tool}` ({why}) is missing under CI: .ci/run must install it"
        );
        eprintln!("skipped: `{tool}` not installed ({why})");
    }
    ok
}

fn have_monero() -> bool {
    let ok =
        Path::new("/usr/bin/monerod").exists() && Path::new("/usr/bin/monero-wallet-cli").exists();
    if !ok {
        assert!(
            !in_ci(),
            "Debian's `monero` is missing under CI: .ci/run must install it"
        );
        eprintln!("skipped: Debian's `monero` is not installed");
    }
    ok
}

/// `cc ARGS…` in `dir`, which must succeed.
fn cc(dir: &Path, args: &[&str]) {
    let out = Command::new("cc")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running cc");
    assert!(
        out.status.success(),
        "cc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `bwrap` with only `pkg` (at /pkg), /proc and /dev: no /usr, /lib, /bin.
fn in_empty_sandbox(pkg: &Path, args: &[&str]) -> std::process::Output {
    Command::new("bwrap")
        .args([
            "--ro-bind",
            path_str(pkg),
            "/pkg",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ])
        .args(["--unshare-all", "--die-with-parent", "--clearenv"])
        .args(args)
        .output()
        .expect("running bwrap")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn bundled_xmr_runs_with_nothing_from_the_host() {
    if !(have("bwrap", "bubblewrap") && have("cc", "gcc") && have_monero()) {
        return;
    }
    let env = TestEnv::new();
    let pkg = env.path("xmr");
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages/xmr/build.sh");
    let out = Command::new("sh")
        .arg(&build)
        .arg(&pkg)
        .env("IPKG", ipkg_bin())
        .env("IPKG_NO_DEFAULT_SOURCES", "1")
        .output()
        .expect("running build.sh");
    assert!(
        out.status.success(),
        "build.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The host's monerod works; the sandbox has no /usr or /lib at all.
    let host = Command::new("/usr/bin/monerod")
        .arg("--version")
        .output()
        .unwrap();
    let host_version = String::from_utf8_lossy(&host.stdout).trim().to_owned();
    assert!(host_version.starts_with("Monero '"), "{host_version}");
    let no_sh = in_empty_sandbox(&pkg, &["/bin/sh", "-c", "true"]);
    assert!(
        !no_sh.status.success(),
        "the sandbox has a /bin/sh: it is not empty"
    );
    for cmd in ["/pkg/bin/xmr", "/pkg/bin/xmr-wallet"] {
        let out = in_empty_sandbox(&pkg, &[cmd, "--version"]);
        assert!(
            out.status.success(),
            "{cmd} --version in the sandbox: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            host_version,
            "{cmd}"
        );
    }

    // The manifest records what came from where; pack accepts the tree.
    let toml = std::fs::read_to_string(pkg.join("ipkg.toml")).unwrap();
    assert!(
        toml.contains("loader = \"lib/ld-linux-x86-64.so.2\"") || !cfg!(target_arch = "x86_64"),
        "{toml}"
    );
    assert!(
        toml.contains(
            "\"libexec/xmr\" = { source = \"/usr/bin/monerod\", debian-package = \"monero\" }"
        ),
        "{toml}"
    );
    assert!(toml.contains("\"lib/libc.so.6\" = { source = "), "{toml}");
    assert!(toml.contains("debian-package = \"libc6"), "{toml}");
    assert!(
        listing(&pkg.join("lib"))
            .iter()
            .any(|l| l.starts_with("libboost_"))
    );
    env.ipkg(["pack", "-n", path_str(&pkg)]).success();
}

/// A program whose library sits next to it (`-rpath $ORIGIN/../private`):
/// bundled, run in the empty sandbox, then installed and run through the
/// bin-dir link and the `<prefix>/<name>` link.
#[test]
fn origin_rpath_library_is_found_and_the_package_installs() {
    if !(have("bwrap", "bubblewrap") && have("cc", "gcc")) {
        return;
    }
    let env = TestEnv::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("private")).unwrap();
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(
        src.join("greet.c"),
        "const char *greeting(void) { return \"hello from libgreet\"; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("main.c"),
        "#include <stdio.h>\nconst char *greeting(void);\nint main(int c, char **v) { printf(\"%s %d\\n\", greeting(), c - 1); return 0; }\n",
    )
    .unwrap();
    cc(
        &src,
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libgreet.so.1",
            "-o",
            "private/libgreet.so.1",
            "greet.c",
        ],
    );
    cc(
        &src,
        &[
            "-o",
            "bin/greet",
            "main.c",
            "private/libgreet.so.1",
            "-Wl,-rpath,$ORIGIN/../private",
        ],
    );

    let pkg = env.path("greeter");
    let out = env.ipkg([
        "bundle",
        "-o",
        path_str(&pkg),
        "--name",
        "greeter",
        "--version",
        "1.0.0",
        &format!("hi={}", path_str(&src.join("bin/greet"))),
    ]);
    out.success();
    assert!(
        out.stderr.contains("Bundled greeter 1.0.0"),
        "{}",
        out.describe()
    );
    let toml = std::fs::read_to_string(pkg.join("ipkg.toml")).unwrap();
    let lib_src = std::fs::canonicalize(src.join("bin"))
        .unwrap()
        .join("../private/libgreet.so.1");
    assert!(
        toml.contains(&format!(
            "\"lib/libgreet.so.1\" = {{ source = \"{}\" }}",
            lib_src.display()
        )),
        "{toml}"
    );
    let run = in_empty_sandbox(&pkg, &["/pkg/bin/hi", "a", "b"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello from libgreet 2\n",
        "{run:?}"
    );

    // Installed: the command is a link to <prefix>/greeter/bin/hi, itself
    // under a link; the launcher still finds its package.
    env.ipkg(["install", "--allow-unsigned", path_str(&pkg)])
        .success();
    let out = Command::new(env.bin.join("hi"))
        .arg("x")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from libgreet 1\n",
        "{out:?}"
    );
}

#[test]
fn a_missing_library_is_refused_and_nothing_is_written() {
    if !have("cc", "gcc") {
        return;
    }
    let env = TestEnv::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("gone.c"), "int gone(void) { return 7; }\n").unwrap();
    std::fs::write(
        src.join("main.c"),
        "int gone(void);\nint main(void) { return gone(); }\n",
    )
    .unwrap();
    cc(
        &src,
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libgone.so.3",
            "-o",
            "libgone.so.3",
            "gone.c",
        ],
    );
    cc(&src, &["-o", "needs-gone", "main.c", "libgone.so.3"]);
    std::fs::remove_file(src.join("libgone.so.3")).unwrap();

    let out_dir = env.path("out/pkg");
    let prog = src.join("needs-gone");
    let out = env.ipkg([
        "bundle",
        "-o",
        path_str(&out_dir),
        "--name",
        "gone",
        "--version",
        "1.0.0",
        path_str(&prog),
    ]);
    out.failure();
    assert_eq!(out.status.code(), Some(3), "{}", out.describe());
    assert!(
        out.stderr.contains(&format!(
            "cannot bundle `{}`: it needs `libgone.so.3`",
            prog.display()
        )),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("hint:"), "{}", out.describe());
    assert!(!out_dir.exists(), "the package directory was created");
    assert!(
        listing(&env.path("out")).is_empty(),
        "left behind: {:?}",
        listing(&env.path("out"))
    );
}

#[test]
fn setuid_and_setgid_programs_are_refused_and_nothing_is_written() {
    let env = TestEnv::new();
    // Any ELF program will do; the check comes before any parsing.
    let exe: PathBuf = ipkg_bin();
    for (bit, word) in [(0o4755, "setuid"), (0o2755, "setgid")] {
        let prog = env.path(format!("{word}-prog"));
        std::fs::copy(&exe, &prog).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(bit)).unwrap();
        let out_dir = env.path(format!("out-{word}"));
        std::fs::create_dir(&out_dir).unwrap(); // an empty directory is allowed
        let out = env.ipkg([
            "bundle",
            "-o",
            path_str(&out_dir),
            "--name",
            "p",
            "--version",
            "1.0.0",
            path_str(&prog),
        ]);
        out.failure();
        assert!(
            out.stderr
                .contains(&format!("cannot bundle `{}`: it is {word}", prog.display())),
            "{}",
            out.describe()
        );
        assert!(
            listing(&out_dir).is_empty(),
            "{word}: wrote {:?}",
            listing(&out_dir)
        );
    }
    // A script is refused too, by name.
    let script = env.path("script");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let out = env.ipkg([
        "bundle",
        "-o",
        path_str(&env.path("o")),
        "--name",
        "p",
        "--version",
        "1.0.0",
        path_str(&script),
    ]);
    out.failure();
    assert!(out.stderr.contains("it is a script"), "{}", out.describe());
    assert!(!env.path("o").exists());
    // The leftover-free check covers the work dir's temporaries.
    assert!(
        !listing(&env.work)
            .iter()
            .any(|n| n.starts_with(".ipkg-bundle-")),
        "{:?}",
        listing(&env.work)
    );
}

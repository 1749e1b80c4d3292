//! Issue 13: the sandbox holds whoever runs ipkg, root included; archives
//! and cached trees cannot reach outside or be changed by another user; a
//! running program's tree survives `gc`.
//!
//! The hostile packages are built here: a hook and a command that try every
//! way out (remount, mount, setuid, writing outside, writing the package,
//! reading the home, a loopback listener this test opened) and say which
//! worked, and hooks that fork, eat memory and fill `/tmp`. When the tests
//! run as root, each also runs as `nobody` (uid 65534) through `setpriv`, so
//! both kinds of caller are covered.

mod support;

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Output, TestEnv, in_ci, path_str};

const NOBODY: u32 = 65534;

fn sandbox_or_skip() -> bool {
    let p = ipkg::sandbox::probe();
    if p.ok() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI must run bubblewrap sandboxes: bwrap {:?}, {:?}",
        p.bwrap,
        p.userns
    );
    eprintln!("skipping: cannot run sandboxes here: {:?}", p.userns);
    false
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The callers to try: this user, and `nobody` when this user is root.
fn callers() -> Vec<Option<u32>> {
    let mut v = vec![None];
    if is_root() {
        if Command::new("setpriv").arg("--version").output().is_ok() {
            v.push(Some(NOBODY));
        } else {
            assert!(!in_ci(), "CI needs setpriv (util-linux)");
            eprintln!("not trying `nobody`: no setpriv");
        }
    }
    v
}

/// A world for one caller: everything under a directory of `/tmp` that the
/// caller can reach (every ancestor searchable), with its own copy of the
/// binary, prefix, home and bin dir.
struct World {
    base: tempfile::TempDir,
    uid: Option<u32>,
    bin: PathBuf,
    prefix: PathBuf,
    home: PathBuf,
}

impl World {
    fn new(uid: Option<u32>) -> World {
        let base = tempfile::Builder::new()
            .prefix("ipkg-root-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = base.path().join("ipkg");
        std::fs::copy(support::ipkg_bin(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let w = World {
            prefix: base.path().join("prefix"),
            home: base.path().join("home"),
            bin,
            uid,
            base,
        };
        for d in [
            &w.prefix,
            &w.home,
            &w.work(),
            &w.base.path().join("tmp"),
            &w.base.path().join("bin"),
        ] {
            std::fs::create_dir_all(d).unwrap();
            if let Some(uid) = uid {
                std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
            }
        }
        w
    }

    fn work(&self) -> PathBuf {
        self.base.path().join("work")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match self.uid {
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .args(["--clear-groups", "--"])
                    .arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("IPKG_PREFIX", &self.prefix)
            .env("IPKG_BIN_DIR", self.base.path().join("bin"))
            .env("IPKG_CONFIG", "/dev/null")
            .env("IPKG_NO_DEFAULT_SOURCES", "1")
            .env("TMPDIR", self.base.path().join("tmp"))
            .env("NO_COLOR", "1")
            .current_dir(self.work());
        cmd
    }

    fn ipkg(&self, args: &[&str]) -> Output {
        support::run(self.command(args), None)
    }

    /// A package directory written by the test (readable by the caller).
    fn package(&self, name: &str, files: &[(&str, String)]) -> PathBuf {
        let root = self.work().join(name);
        for (path, body) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, body).unwrap();
            let mode = if path.ends_with(".toml") {
                0o644
            } else {
                0o755
            };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&root)
            .status()
            .unwrap();
        root
    }

    fn who(&self) -> &'static str {
        if self.uid.is_some() {
            "nobody"
        } else if is_root() {
            "root"
        } else {
            "this user"
        }
    }
}

fn manifest(name: &str, hooks: &[(&str, &str)], timeout: u32) -> String {
    let mut table = String::new();
    for (kind, path) in hooks {
        table.push_str(&format!("{kind} = \"{path}\"\n"));
    }
    format!(
        "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n\n[commands]\n{name} = \"bin/{name}\"\n\n[hooks]\n{table}timeout = {timeout}\n"
    )
}

/// Every way out the probe tries, as bash commands; a line `BAD <what>`
/// for each that worked. `$W` is where it may write (the state dir, or
/// `/tmp`), `$P` its package tree.
fn probe_body(outside: &Path, secret: &Path, port: u16) -> String {
    format!(
        r#"W="${{IPKG_STATE_DIR:-/tmp}}"
P="${{IPKG_PACKAGE_DIR:-/pkg}}"
bad() {{ echo "BAD $1"; }}
mount -o remount,rw,bind /usr 2>/dev/null && bad remount-usr
mount -o remount,rw,bind "$P" 2>/dev/null && bad remount-package
mount -t tmpfs none /tmp 2>/dev/null && bad mount-tmpfs
mount --bind / "$W" 2>/dev/null && bad mount-bind
unshare -Urm true 2>/dev/null && bad user-namespace
cp /bin/sh "$W/suid" 2>/dev/null
chmod u+s "$W/suid" 2>/dev/null && bad chmod-setuid
chmod g+s "$W/suid" 2>/dev/null && bad chmod-setgid
[ -u "$W/suid" ] && bad setuid-file
chmod 0777 "$W" 2>/dev/null
echo x > '{outside}/escaped' 2>/dev/null && bad write-outside
echo x > "$P/planted" 2>/dev/null && bad write-package
chmod 0777 "$P" 2>/dev/null && bad chmod-package
cat '{secret}' 2>/dev/null && bad read-home
(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && bad loopback
grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status || bad capabilities
echo done
"#,
        outside = outside.display(),
        secret = secret.display(),
    )
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Setuid or setgid files under `dir`.
fn setuid_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.mode() & 0o6000 != 0 {
                found.push(e.path());
            }
        }
    }
    found
}

/// Regression (issue 13): as root, a post-install hook remounted `/usr`
/// read-write and wrote there, made a setuid-root copy of a shell in its
/// state dir, and remounted its own package tree read-write; `run --sandbox`
/// had every capability too. Now neither gets any, whoever runs ipkg.
#[test]
fn a_hostile_hook_and_sandboxed_run_get_nothing() {
    if !sandbox_or_skip() {
        return;
    }
    for uid in callers() {
        let w = World::new(uid);
        let who = w.who();
        // World-writable, so even `nobody` could write there without a
        // sandbox: the probe failing means the sandbox stopped it.
        let outside = w.base.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
        let secret = w.home.join("secret");
        std::fs::write(&secret, "home secret").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = probe_body(&outside, &secret, port);
        let pkg = w.package(
            "hostile",
            &[
                (
                    "ipkg.toml",
                    manifest("hostile", &[("post-install", "hooks/post-install")], 20),
                ),
                ("bin/hostile", format!("#!/bin/bash\n{body}")),
                (
                    "hooks/post-install",
                    format!("#!/bin/bash\n{{\n{body}}} > \"$IPKG_STATE_DIR/report\" 2>&1\n"),
                ),
            ],
        );

        // The hook.
        let out = w.ipkg(&["install", "--allow-unsigned", path_str(&pkg)]);
        out.success();
        let state = w.prefix.join(".ipkg/state/data/hostile");
        let report = std::fs::read_to_string(state.join("report")).unwrap();
        assert!(report.contains("done"), "{who}: {report}");
        assert!(!report.contains("BAD"), "{who}: the hook got out: {report}");
        assert!(
            setuid_files(&state).is_empty(),
            "{who}: {:?}",
            setuid_files(&state)
        );
        let meta = state.symlink_metadata().unwrap();
        assert_eq!(
            meta.mode() & 0o7777,
            0o700,
            "{who}: the state dir is private"
        );
        assert_eq!(meta.uid(), uid.unwrap_or_else(euid), "{who}");
        assert!(!outside.join("escaped").exists(), "{who}");
        w.ipkg(&["verify", "hostile"]).success();

        // The same probe as a sandboxed program (of a package not installed).
        let again = w.package(
            "hostile2",
            &[
                ("ipkg.toml", manifest("hostile2", &[], 5)),
                ("bin/hostile2", format!("#!/bin/bash\n{body}")),
            ],
        );
        for extra in [&[][..], &["--net"][..]] {
            let mut args = vec!["run", "--sandbox", "--allow-unsigned"];
            args.extend_from_slice(extra);
            args.push(path_str(&again));
            let out = w.ipkg(&args);
            out.success();
            let bad: Vec<&str> = out
                .stdout_lines()
                .into_iter()
                .filter(|l| l.starts_with("BAD"))
                // `--net` is the host's network, loopback included (docs/sandbox.md).
                .filter(|l| !(extra == ["--net"] && *l == "BAD loopback"))
                .collect();
            assert!(out.stdout.contains("done"), "{who}: {}", out.describe());
            assert!(
                bad.is_empty(),
                "{who} {extra:?}: {bad:?}\n{}",
                out.describe()
            );
        }
        assert!(!outside.join("escaped").exists(), "{who}");
    }
}

/// Regression (issue 13): hooks had only a timeout, so a fork bomb, a memory
/// hog or a `/tmp` filler in a hook ran until it. Now they get the limits of
/// a pure run.
#[test]
fn hooks_are_held_to_limits() {
    if !sandbox_or_skip() {
        return;
    }
    for uid in callers() {
        let w = World::new(uid);
        let who = w.who();
        let cases = [
            (
                "bomb",
                "f() { f | f & }; f; while :; do sleep 30 & done",
                "processes",
            ),
            (
                "hog",
                "x=$(head -c 1073741824 /dev/zero | tr '\\0' a); echo ${#x}; sleep 30",
                "memory",
            ),
        ];
        for (name, body, words) in cases {
            let pkg = w.package(
                name,
                &[
                    (
                        "ipkg.toml",
                        manifest(name, &[("pre-install", "hooks/pre-install")], 60),
                    ),
                    (&format!("bin/{name}"), "#!/bin/sh\n".to_string()),
                    ("hooks/pre-install", format!("#!/bin/sh\n{body}\n")),
                ],
            );
            let started = Instant::now();
            let out = w.ipkg(&["install", "--allow-unsigned", path_str(&pkg)]);
            out.failure();
            assert!(
                out.stderr.contains("pre-install hook of")
                    && out.stderr.contains(words)
                    && !out.stderr.contains("timeout"),
                "{who} {name}: {}",
                out.describe()
            );
            assert!(started.elapsed() < Duration::from_secs(50), "{who} {name}");
            assert!(!w.prefix.join(name).exists(), "{who} {name}");
        }
        // A /tmp filler gets a full /tmp, not the machine's memory.
        let pkg = w.package(
            "filler",
            &[
                (
                    "ipkg.toml",
                    manifest("filler", &[("post-install", "hooks/post-install")], 60),
                ),
                ("bin/filler", "#!/bin/sh\n".to_string()),
                (
                    "hooks/post-install",
                    "#!/bin/sh\nhead -c 1073741824 /dev/zero > /tmp/fill\nwc -c < /tmp/fill > \"$IPKG_STATE_DIR/size\"\n".to_string(),
                ),
            ],
        );
        w.ipkg(&["install", "--allow-unsigned", path_str(&pkg)])
            .success();
        let size = std::fs::read_to_string(w.prefix.join(".ipkg/state/data/filler/size")).unwrap();
        let size: u64 = size.trim().parse().unwrap();
        assert!(size <= 128 << 20, "{who}: /tmp took {size} bytes");
        if uid.is_some() {
            continue;
        }
        // A state-dir filler: each file under the file size limit, together
        // over what one run may add.
        let pkg = w.package(
            "grower",
            &[
                (
                    "ipkg.toml",
                    manifest("grower", &[("pre-install", "hooks/pre-install")], 60),
                ),
                ("bin/grower", "#!/bin/sh\n".to_string()),
                (
                    "hooks/pre-install",
                    "#!/bin/sh\nfor i in 1 2 3; do head -c 100000000 /dev/zero > \"$IPKG_STATE_DIR/f$i\"; done\n".to_string(),
                ),
            ],
        );
        let out = w.ipkg(&["install", "--allow-unsigned", path_str(&pkg)]);
        out.failure();
        assert!(
            out.stderr.contains("to its state directory") && out.stderr.contains("over the limit"),
            "{who}: {}",
            out.describe()
        );
    }
}

/// A tar archive (built here, as a hostile one would be) whose symlinks each
/// stay inside by their text, while together they lead to `/`, and a hard
/// link through them to `secret`.
fn escaping_tar(secret: &Path) -> Vec<u8> {
    const DEPTH: usize = 30;
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o755);
        h
    };
    let mut deep = String::new();
    for i in 0..DEPTH {
        deep.push_str(&format!("a{i}/"));
        b.append_data(
            &mut header(tar::EntryType::Directory),
            &deep,
            std::io::empty(),
        )
        .unwrap();
    }
    // `a0/…/a29/up -> ../…` (30 levels): the root, by its text.
    let up = vec![".."; DEPTH].join("/");
    b.append_link(
        &mut header(tar::EntryType::Symlink),
        format!("{deep}up"),
        &up,
    )
    .unwrap();
    // `top -> a0/…/a29/up/..` (31 levels): inside by its text (31 names
    // then 31 `..`), but `up` is already the root, so 31 levels above it.
    let top = format!("{deep}up/{}", vec![".."; DEPTH + 1].join("/"));
    b.append_link(&mut header(tar::EntryType::Symlink), "top", &top)
        .unwrap();
    let through = format!(
        "top/{}",
        secret.display().to_string().trim_start_matches('/')
    );
    b.append_link(&mut header(tar::EntryType::Link), "stolen", &through)
        .unwrap();
    b.into_inner().unwrap()
}

/// Regression (issue 13): a `.tar` rootfs hard-linked a file from outside
/// the archive (the user's SSH key) through symlinks that each passed the
/// "stays inside" check, and the key came out in `/output`.
#[test]
fn a_tar_rootfs_cannot_hard_link_outside() {
    let env = TestEnv::new();
    let secret = env.path("id_ed25519");
    std::fs::write(&secret, "PRIVATE KEY").unwrap();
    let tar = env.path("rootfs.tar");
    std::fs::write(&tar, escaping_tar(&secret)).unwrap();
    let input = env.path("input");
    std::fs::create_dir_all(&input).unwrap();
    let out = env.ipkg([
        "execute",
        path_str(&tar),
        path_str(&input),
        "cat",
        "/stolen",
    ]);
    // (Before the fix, the unpacked rootfs held `/stolen`, a second link to
    // the secret, and a rootfs with a `/sbin/init` could print it.)
    assert_eq!(
        secret.metadata().unwrap().nlink(),
        1,
        "the archive hard-linked a file from outside: {}",
        out.describe()
    );
    out.failure();
    assert_eq!(out.status.code(), Some(5), "{}", out.describe());
    assert!(
        out.stderr.contains("outside the root file system"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains("PRIVATE"), "{}", out.describe());
    // Nothing of it is cached.
    let rootfs = env.prefix.join(".ipkg/execute/rootfs");
    let left: Vec<_> = std::fs::read_dir(&rootfs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

fn build_busybox(dir: &Path) {
    let out = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages/busybox/build.sh"))
        .arg(dir)
        .output()
        .expect("running build.sh");
    assert!(
        out.status.success(),
        "build.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regression (issue 13): cached rootfs trees kept the modes the DAG
/// recorded (world-writable directories included) and were reused without a
/// check, so another local user replaced a binary in root's cached rootfs.
/// Now the cache is sealed, and a tree someone else could have written is
/// made again before it is used.
#[test]
fn a_world_writable_cached_rootfs_is_rebuilt() {
    if !sandbox_or_skip() {
        return;
    }
    let env = TestEnv::new();
    let bb = env.path("busybox");
    build_busybox(&bb);
    // A world-writable directory in the package, as a DAG may record it.
    std::fs::create_dir(bb.join("shared")).unwrap();
    std::fs::set_permissions(bb.join("shared"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let rootfs = env
        .ipkg(["add", "--preserve-mode", "-Q", path_str(&bb)])
        .success()
        .stdout_lines()
        .last()
        .unwrap()
        .to_string();
    let input = env.path("input");
    std::fs::create_dir_all(&input).unwrap();
    let ls = |script: &str| {
        let out = env.ipkg([
            "execute",
            "--no-cache",
            &rootfs,
            path_str(&input),
            "sh",
            "-c",
            script,
        ]);
        out.success();
        let cid = out.stdout_trimmed().to_string();
        env.ipkg(["cat", &format!("{cid}/ls")])
            .success()
            .stdout
            .clone()
    };
    let first = ls("ls /bin /shared > /output/ls");
    assert!(first.contains("busybox"), "{first}");
    let cached = std::fs::read_dir(env.prefix.join(".ipkg/run"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("bin").is_dir())
        .expect("the rootfs is cached");
    // Sealed: nothing in the cache is writable by others.
    let mode = |p: &Path| p.symlink_metadata().unwrap().mode() & 0o7777;
    assert_eq!(mode(&cached.join("shared")), 0o755);

    // Another user gets in: a directory made world-writable, a file of
    // theirs planted in it.
    std::fs::set_permissions(cached.join("bin"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let planted = cached.join("bin/planted");
    std::fs::write(&planted, "#!/bin/sh\necho pwned\n").unwrap();
    if is_root() {
        std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let second = ls("ls /bin > /output/ls");
    assert!(second.contains("busybox"), "{second}");
    assert!(
        !second.contains("planted"),
        "the tampered cache was used: {second}"
    );
    assert_eq!(mode(&cached.join("bin")), 0o755);
    assert!(!planted.exists());

    // A pure run's trees are not collected under it either: `gc` waits for
    // the store lock the run holds, then clears the caches.
    let mut child = env
        .ipkg_command([
            "execute",
            "--no-cache",
            &rootfs,
            path_str(&input),
            "sh",
            "-c",
            "sleep 2; ls /bin > /output/ls",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(env.prefix.join(".ipkg/execute/work"))
        .map(|d| d.count() > 0)
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "the pure run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ipkg(["gc"]).success();
    let status = child.wait().unwrap();
    assert!(status.success(), "the pure run failed under gc");
    assert!(!cached.exists(), "gc clears the cache once the run is over");
}

/// Regression (issue 13): `gc` deleted the tree of a program `ipkg run` was
/// running from. The program (of a package not installed) sleeps while `gc`
/// runs, then reads its own files.
#[test]
fn gc_keeps_the_tree_of_a_running_program() {
    let mut env = TestEnv::new();
    let marker = env.path("started");
    env.set_env("MARKER", &marker);
    let pkg = env.path("slow");
    std::fs::create_dir_all(pkg.join("bin")).unwrap();
    std::fs::create_dir_all(pkg.join("share")).unwrap();
    std::fs::write(pkg.join("ipkg.toml"), manifest("slow", &[], 5)).unwrap();
    std::fs::write(pkg.join("share/data.txt"), "my own data\n").unwrap();
    std::fs::write(
        pkg.join("bin/slow"),
        "#!/bin/sh\nhere=$(dirname \"$0\")\necho up > \"$MARKER\"\nsleep 3\ncat \"$here/../share/data.txt\"\n",
    )
    .unwrap();
    std::fs::set_permissions(pkg.join("bin/slow"), std::fs::Permissions::from_mode(0o755)).unwrap();

    let child = env
        .ipkg_command(["run", "--allow-unsigned", path_str(&pkg)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the program never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let trees = || {
        std::fs::read_dir(env.prefix.join(".ipkg/pkgs"))
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(trees(), 1);
    env.ipkg(["gc"]).success();
    assert_eq!(trees(), 1, "gc removed the tree of a running program");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "my own data\n");
    // Once it has ended, its lease is stale and the tree is garbage.
    env.ipkg(["gc"]).success();
    assert_eq!(trees(), 0, "an ended run still keeps its tree");
}

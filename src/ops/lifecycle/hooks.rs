//! Lifecycle hooks: run a package's `pre-install`, `post-install`,
//! `pre-remove`, `post-remove` and `post-switch` scripts.
//!
//! A hook runs in a bubblewrap sandbox (spec/manifest.md §1.3): the host's
//! `/usr` (and the `/bin`, `/sbin`, `/lib*` beside it) read-only so scripts
//! have an interpreter, the package tree read-only at its own path, the
//! package's state directory (`IPKG_STATE_DIR`) as the one writable place, a
//! private `/tmp`, no network, and only the documented `IPKG_*` variables
//! plus `PATH`. It is killed when its `timeout` runs out, and it is held to
//! the limits of [`HOOK_LIMITS`] (memory, processes, `/tmp`, file size) as a
//! pure run is to its flags.
//!
//! Whoever runs ipkg, root included, the hook has no capabilities (see
//! [`crate::sandbox`]): it cannot remount the read-only package tree or
//! `/usr`, mount anything, or make a nested user namespace. Its state
//! directory (and `data/` above it) is mode 0700, owned by the user running
//! ipkg, so no other user can reach what the hook writes while it runs; when
//! the hook ends, every setuid and setgid bit in the state directory is
//! cleared, so a root hook cannot leave a setuid-root binary behind.
//!
//! A manifest with `host-access = true` asks to run its hooks on the host
//! instead, with the user's full rights; that needs `--allow-host-hooks` or a
//! yes at the prompt, and is refused otherwise.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::{Limits, Sandbox, Stream};
use crate::trust::manifest::{HookKind, Manifest};

use super::{Error, Layout, Ui};

/// `PATH` inside a hook.
const HOOK_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// What a sandboxed hook may use, besides its manifest's `timeout`: enough to
/// build a cache or compile a little, not enough to take the machine down.
pub struct HookLimits {
    /// Memory of the whole hook (a cgroup), or of each process (`RLIMIT_AS`).
    pub memory: u64,
    /// Processes at once, the hook itself included.
    pub pids: u32,
    /// Size of its private `/tmp` (a tmpfs).
    pub tmp: u64,
    /// Bytes any one file it writes may reach (`RLIMIT_FSIZE`), and bytes
    /// its state directory may grow by in one run (measured after it).
    pub file_size: u64,
}

/// The limits every sandboxed hook runs under.
pub const HOOK_LIMITS: HookLimits = HookLimits {
    memory: 512 << 20,
    pids: 128,
    tmp: 128 << 20,
    file_size: 256 << 20,
};

/// What a hook needs to know.
pub struct HookRun<'a> {
    pub layout: &'a Layout,
    pub name: &'a str,
    pub version: &'a semver::Version,
    /// The unpacked package tree.
    pub tree: &'a Path,
    pub manifest: &'a Manifest,
    /// For `post-switch`: the version switched from.
    pub previous: Option<&'a semver::Version>,
    pub allow_host: bool,
    pub ui: &'a dyn Ui,
}

/// Run the `kind` hook if the manifest has one. A hook that fails, or runs
/// past its timeout, is an error naming the hook and how it ended.
pub fn run(h: &HookRun<'_>, kind: HookKind) -> Result<(), Error> {
    let Some(rel) = h.manifest.hooks.get(kind) else {
        return Ok(());
    };
    let err = |what: String| Error::Hook {
        name: h.name.to_owned(),
        hook: kind.key().to_owned(),
        what,
    };
    let state = private_state_dir(h.layout, h.name)?;
    let tree = h.tree.canonicalize().map_err(|e| Error::io(h.tree, e))?;
    let script = tree.join(rel);
    let timeout = Duration::from_secs(u64::from(h.manifest.hooks.timeout));
    let mut env: Vec<(&str, String)> = vec![
        ("PATH", HOOK_PATH.to_owned()),
        ("IPKG_HOOK", kind.key().to_owned()),
        ("IPKG_PACKAGE_NAME", h.name.to_owned()),
        ("IPKG_PACKAGE_VERSION", h.version.to_string()),
        ("IPKG_PACKAGE_DIR", tree.display().to_string()),
        ("IPKG_STATE_DIR", state.display().to_string()),
    ];
    if let (HookKind::PostSwitch, Some(prev)) = (kind, h.previous) {
        env.push(("IPKG_PREVIOUS_VERSION", prev.to_string()));
    }
    h.ui.status(
        "Running",
        &format!("{kind} hook of {} {}", h.name, h.version),
    );

    if h.manifest.hooks.host_access {
        let question = format!(
            "`{}` asks to run its {kind} hook outside the sandbox, with your full access. Allow?",
            h.name
        );
        if !(h.allow_host || h.ui.confirm(&question)) {
            return Err(Error::Refused {
                message: format!(
                    "`{}` wants its hooks to run on the host, and that was not allowed",
                    h.name
                ),
            });
        }
        return run_on_host(&script, &tree, &env, timeout).map_err(err);
    }

    let limits = Limits {
        timeout: Some(timeout),
        memory: Some(HOOK_LIMITS.memory),
        pids: Some(HOOK_LIMITS.pids),
        file_size: Some(HOOK_LIMITS.file_size),
    };
    let mut sb = Sandbox::new()
        .tmpfs_sized("/tmp", HOOK_LIMITS.tmp)
        .proc("/proc")
        .dev("/dev")
        .ro_bind(&tree, &tree)
        .bind(&state, &state)
        .chdir(&tree)
        .share_net(false)
        .stdin(Stream::Null)
        .stdout(Stream::Stderr)
        .limits(limits);
    for dir in [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/lib32",
        "/etc/alternatives",
    ] {
        let p = Path::new(dir);
        match std::fs::read_link(p) {
            // Merged /usr: `/bin -> usr/bin`.
            Ok(target) => sb = sb.symlink(target.into_os_string(), p),
            Err(_) if p.is_dir() => sb = sb.ro_bind(p, p),
            Err(_) => {}
        }
    }
    // Last: the sandbox's own root (where bubblewrap made the mount points)
    // read-only, so the state dir and /tmp are the only writable places.
    sb = sb.remount_ro("/");
    for (k, v) in &env {
        sb = sb.env(*k, v);
    }
    let script_str = script.display().to_string();
    let before = tree_bytes(&state);
    let outcome = sb.run(&script_str, &[] as &[&str]);
    // Whatever happened, nothing the hook left may be setuid or reachable
    // by other users.
    let cleaned = sanitise_state_dir(&state);
    let outcome = outcome.map_err(|e| err(format!("could not start: {e}")))?;
    cleaned?;
    if outcome.timed_out {
        return Err(err(format!(
            "ran past its timeout of {}s and was stopped",
            timeout.as_secs()
        )));
    }
    if let Some(reason) = crate::ops::execute::limit_reason(&outcome, &limits) {
        return Err(err(format!("was stopped: {reason}")));
    }
    let grown = tree_bytes(&state).saturating_sub(before);
    if grown > HOOK_LIMITS.file_size {
        return Err(err(format!(
            "wrote {} to its state directory `{}`, over the limit of {}",
            crate::ops::execute::show_bytes(grown),
            state.display(),
            crate::ops::execute::show_bytes(HOOK_LIMITS.file_size)
        )));
    }
    if !outcome.success() {
        return Err(err(format!("failed with exit status {}", outcome.code())));
    }
    Ok(())
}

/// Run a hook directly on the host (the user agreed), with the same
/// environment and timeout.
fn run_on_host(
    script: &Path,
    tree: &Path,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = Command::new(script);
    cmd.current_dir(tree)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(std::io::stderr());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("could not start: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("failed with {status}")),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ran past its timeout of {}s and was stopped",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("could not wait for it: {e}")),
        }
    }
}

/// The package's state directory, made (or made again) mode 0700 and owned by
/// the user running ipkg, under a `data/` directory of mode 0700.
fn private_state_dir(layout: &Layout, name: &str) -> Result<PathBuf, Error> {
    let state = layout.data_dir(name);
    let data = state.parent().unwrap_or(&state).to_path_buf();
    for dir in [&data, &state] {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(Error::Unsafe {
                    path: dir.display().to_string(),
                    reason: "a hook's state directory must be a directory, not a symlink or a file"
                        .into(),
                });
            }
            Ok(_) => {}
            Err(_) => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(dir, e))?,
        }
        make_private(dir).map_err(|e| Error::io(dir, e))?;
    }
    state.canonicalize().map_err(|e| Error::io(&state, e))
}

/// `dir` is ours and mode 0700.
fn make_private(dir: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    // SAFETY: geteuid and getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if meta.uid() != uid {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    }
    if meta.mode() & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// After a hook: the state directory is mode 0700 and ours again, and nothing
/// in it is setuid or setgid. Symlinks are never followed (the walk uses
/// `lstat`, and only real directories are entered).
pub fn sanitise_state_dir(state: &Path) -> Result<(), Error> {
    make_private(state).map_err(|e| Error::io(state, e))?;
    let mut stack = vec![state.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.mode() & 0o7777;
            let mut want = mode & !0o6000;
            if meta.is_dir() {
                // Ours to walk, whatever the hook set.
                want |= 0o700;
                stack.push(path.clone());
            }
            if want != mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(want))
                    .map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// Bytes of the regular files under `dir` (symlinks not followed; what
/// cannot be read counts 0).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

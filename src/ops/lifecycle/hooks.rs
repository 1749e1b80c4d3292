//! Lifecycle hooks: run a package's `pre-install`, `post-install`,
//! `pre-remove`, `post-remove` and `post-switch` scripts.
//!
//! A hook runs in a bubblewrap sandbox (spec/manifest.md §1.3): the host's
//! `/usr` (and the `/bin`, `/sbin`, `/lib*` beside it) read-only so scripts
//! have an interpreter, the package tree read-only at its own path, the
//! package's state directory (`IPKG_STATE_DIR`) as the one writable place, a
//! private `/tmp`, no network, and only the documented `IPKG_*` variables
//! plus `PATH`. It is killed when its `timeout` runs out.
//!
//! A manifest with `host-access = true` asks to run its hooks on the host
//! instead, with the user's full rights; that needs `--allow-host-hooks` or a
//! yes at the prompt, and is refused otherwise.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::{Limits, Sandbox, Stream};
use crate::trust::manifest::{HookKind, Manifest};

use super::{Error, Layout, Ui};

/// `PATH` inside a hook.
const HOOK_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

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
    let state = h.layout.data_dir(h.name);
    std::fs::create_dir_all(&state).map_err(|e| Error::io(&state, e))?;
    let tree = h.tree.canonicalize().map_err(|e| Error::io(h.tree, e))?;
    let state = state.canonicalize().map_err(|e| Error::io(&state, e))?;
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

    let mut sb = Sandbox::new()
        .tmpfs("/tmp")
        .proc("/proc")
        .dev("/dev")
        .ro_bind(&tree, &tree)
        .bind(&state, &state)
        .chdir(&tree)
        .share_net(false)
        .stdin(Stream::Null)
        .stdout(Stream::Stderr)
        .limits(Limits {
            timeout: Some(timeout),
            ..Limits::default()
        });
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
    let outcome = sb
        .run(&script_str, &[] as &[&str])
        .map_err(|e| err(format!("could not start: {e}")))?;
    if outcome.timed_out {
        return Err(err(format!(
            "ran past its timeout of {}s and was stopped",
            timeout.as_secs()
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

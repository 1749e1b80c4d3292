//! `ipkg run --lazy`: run a package's command from a lazy mount, so it
//! starts once the blocks it reads have arrived instead of after the whole
//! package.
//!
//! The package is resolved and consented to as `ipkg run` does; then only
//! its root and `ipkg.toml` are fetched, the tree is mounted under
//! `<prefix>/.ipkg/lazy/`, the command runs from there as a child of ipkg
//! (which serves its reads), and the mount goes when the child exits. The
//! blocks it read are remembered as an access profile
//! (`<prefix>/.ipkg/profiles/<cid>`), fetched first by the next lazy run.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::content::Cid;
use crate::content::reader::{self, FileReader};
use crate::trust::manifest::Manifest;

use super::super::{Error, Layout, Ui};
use super::blocks::LazyBlocks;
use super::{lazy_blocks, lazy_dir, mount_background, profile_path};
use crate::ops::lifecycle::install::{self, Options, short_cid};
use crate::ops::lifecycle::unpack::MANIFEST;

/// The largest `ipkg.toml` read from a lazy tree.
const MAX_MANIFEST: u64 = 1 << 20;

/// What to run lazily.
pub struct LazyRun<'a> {
    pub package: &'a str,
    pub command: Option<&'a str>,
    pub args: &'a [String],
}

/// Run it; returns the program's exit code (128 + signal when killed).
pub fn run_lazy(
    layout: &Layout,
    what: &LazyRun<'_>,
    opts: &Options,
    ui: &dyn Ui,
) -> Result<i32, Error> {
    let target = install::resolve_for_run(layout, what.package, opts, ui)?;
    let blocks = lazy_blocks(layout, target.car.as_deref())?;
    let profile = profile_path(layout, &target.package);
    let profiled = read_profile(&profile);
    if !profiled.is_empty() {
        blocks.prefetch(profiled.iter().copied());
    }
    let manifest = read_manifest(&blocks, &target.package)?;
    if let Some(n) = &target.name
        && n != &manifest.package.name
    {
        return Err(Error::NotAPackage {
            cid: target.package,
            reason: format!(
                "its release says it is `{n}`, its manifest says `{}`",
                manifest.package.name
            ),
        });
    }
    let (command, path) =
        install::pick_command(&manifest.package.name, &manifest.commands, what.command)?;
    let exec: HashSet<String> = manifest
        .commands
        .values()
        .map(|p| p.trim_start_matches("./").to_owned())
        .collect();
    let mountpoint = make_mountpoint(layout)?;
    ui.status(
        "Mounting",
        &format!(
            "{} {} ({}) lazily",
            manifest.package.name,
            manifest.package.version,
            short_cid(&target.package)
        ),
    );
    let mounted = match mount_background(
        layout,
        Arc::clone(&blocks),
        &target.package,
        &mountpoint,
        exec,
    ) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir(&mountpoint);
            return Err(e);
        }
    };
    let program = mountpoint.join(path.trim_start_matches("./"));
    let status = run_child(&program, &command, what.args);
    let read = blocks.profile();
    drop(mounted);
    let _ = std::fs::remove_dir(&mountpoint);
    if profiled.is_empty() || read.len() > profiled.len() {
        save_profile(&profile, &read);
    }
    let (fetched, bytes) = blocks.fetched();
    ui.status(
        "Lazy",
        &format!(
            "run read {} blocks, fetched {fetched} ({bytes} bytes)",
            read.len()
        ),
    );
    status
}

/// The package's manifest, read through the lazy blocks (its root and the
/// blocks of `ipkg.toml` only).
pub fn read_manifest(blocks: &Arc<LazyBlocks>, root: &Cid) -> Result<Manifest, Error> {
    let not_pkg = |reason: String| Error::NotAPackage { cid: *root, reason };
    let entry = reader::lookup(blocks.as_ref(), root, MANIFEST)
        .map_err(|e| not_pkg(format!("its root cannot be read: {e}")))?
        .ok_or_else(|| not_pkg(format!("it has no `{}`", MANIFEST)))?;
    let file = FileReader::new(blocks.as_ref(), &entry.cid)
        .map_err(|e| not_pkg(format!("`{}` cannot be read: {e}", MANIFEST)))?;
    if file.size() > MAX_MANIFEST {
        return Err(not_pkg(format!(
            "`{}` is {} bytes, more than {MAX_MANIFEST}",
            MANIFEST,
            file.size()
        )));
    }
    let mut text = String::new();
    file.take(MAX_MANIFEST)
        .read_to_string(&mut text)
        .map_err(|e| not_pkg(format!("`{}` cannot be read: {e}", MANIFEST)))?;
    Manifest::parse(&text, Path::new(MANIFEST)).map_err(Error::from)
}

/// A fresh directory under `<prefix>/.ipkg/lazy/` (0700: only this user
/// reaches what is mounted there).
pub(super) fn make_mountpoint(layout: &Layout) -> Result<std::path::PathBuf, Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = lazy_dir(layout);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    for n in 0..1000u32 {
        let mp = dir.join(format!("{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&mp) {
            Ok(()) => return Ok(mp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&mp, e)),
        }
    }
    Err(Error::io(
        &dir,
        std::io::Error::other("no free mount point name"),
    ))
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Run the program and wait for it. ipkg must outlive it (it serves the
/// mount), so SIGINT and SIGQUIT from the terminal, which reach the child
/// too, are not fatal to ipkg, and SIGTERM and SIGHUP are passed on.
fn run_child(program: &Path, command: &str, args: &[String]) -> Result<i32, Error> {
    let mut child = std::process::Command::new(program)
        .arg0(command)
        .args(args)
        .spawn()
        .map_err(|e| Error::io(program, e))?;
    CHILD.store(child.id() as i32, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `forward` only reads an atomic and calls kill.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
    let status = child.wait().map_err(|e| Error::io(program, e))?;
    CHILD.store(0, Ordering::Relaxed);
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

fn read_profile(path: &Path) -> Vec<Cid> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| crate::content::cid::parse(l.trim()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Written atomically; a profile is a hint, so failing to save it is silent.
fn save_profile(path: &Path, cids: &[Cid]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let text: String = cids.iter().map(|c| format!("{c}\n")).collect();
    let _ = crate::ops::pins::write_atomic(path, text.as_bytes());
}

//! Sandboxed runs: a program from the store run under [`crate::sandbox`].
//!
//! Owns what a sandbox sees (root file system, binds, environment, limits)
//! and how its outcome is reported. Must not touch installed state: it reads
//! trees from the store, and its one write is the output tree it adds and
//! pins. The sandbox itself (bwrap, cgroups, rlimits) is [`crate::sandbox`].
//!
//! # Runs
//!
//! Pure runs (`ipkg run --pure`, `ipkg execute`) and sandboxed runs
//! (`ipkg run --sandbox`).
//!
//! A pure run is the computation of ipfs-execute: a root file system (a
//! UnixFS tree, or a `.tar`/`.tar.gz` file, by CID) and `/input` read-only,
//! `/output` empty and writable, a private `/tmp`, a minimal `/proc` and
//! `/dev`, no network, and an environment of exactly `PATH`, `HOME=/tmp` and
//! `SOURCE_DATE_EPOCH`. The program runs as uid/gid 1000 with hostname
//! `ipkg`. When it exits, `/output` is added to the store (default profile,
//! hidden files included), pinned as `execute/<key>`, and its CID returned
//! with the program's exit code. The program's stdout goes to ipkg's stderr,
//! so stdout carries only the CID.
//!
//! The root of the sandbox is a tmpfs holding read-only binds of the rootfs'
//! top-level entries, made read-only once `/input`, `/output`, `/tmp`,
//! `/proc` and `/dev` exist, so a rootfs needs no mount points of its own.
//! A package program (`CID[/path]` or a local path) is mounted at `/pkg`.
//!
//! Memoisation: the key is a SHA-256 over the program, the rootfs and input
//! CIDs, the arguments and the limits; `<prefix>/.ipkg/execute/memo/<key>`
//! holds the output CID and exit code. A hit is used only when every block of
//! the output is still in the store. Runs stopped by a limit are not
//! memoised.
//!
//! Limits are those of [`crate::sandbox`]; `max_output` also caps each file
//! (`RLIMIT_FSIZE`) and is checked on the whole of `/output` before it is
//! added. Under rlimits (no cgroup) a memory limit cannot be observed, so a
//! program that fails while one is in force is reported as probably out of
//! memory and its output is not added.

pub mod cache;
mod sandboxed;
pub mod tarball;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::content::profile::Profile;
use crate::content::reader::{self, FileReader};
use crate::content::{Cid, GetError, links_of};
use crate::sandbox::{Enforcement, Limits, RunOutcome, Sandbox, Stream};
use crate::sources::store::{BlockStore, StoreLock};

use super::content::add::{AddOptions, ModePolicy, add_path};
use super::pins::Pins;
use super::{Error, Layout, NoProgress};

pub use sandboxed::{SandboxOptions, run_sandboxed};

/// `SOURCE_DATE_EPOCH` inside a pure run: 1980-01-01T00:00:00Z, the earliest
/// time a zip file can hold.
pub const SOURCE_DATE_EPOCH: &str = "315532800";
/// `PATH` inside a pure run (`/pkg/bin` first when a package is mounted).
pub const PURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The uid and gid a pure program runs as.
pub const PURE_ID: u32 = 1000;

/// What a pure run executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// The rootfs' `/sbin/init` (`ipkg execute`).
    RootfsInit,
    /// An absolute path inside the rootfs (`run --pure --rootfs CID /bin/sh`).
    InRootfs(String),
    /// A package or file: `CID`, `CID/path/in/it`, `/ipfs/CID/...`, or a
    /// local file or directory (added to the store first).
    Package(String),
}

/// Limits of a pure run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecLimits {
    pub timeout: Option<Duration>,
    pub memory: Option<u64>,
    pub pids: Option<u32>,
    /// Bytes `/output` may hold in all.
    pub max_output: Option<u64>,
}

impl ExecLimits {
    fn sandbox(&self) -> Limits {
        Limits {
            timeout: self.timeout,
            memory: self.memory,
            pids: self.pids,
            file_size: self.max_output,
        }
    }
}

/// A pure run as asked for.
#[derive(Debug, Clone)]
pub struct PureOptions {
    pub program: Program,
    /// A CID (tree or `.tar[.gz]` file), or a local directory or archive.
    pub rootfs: Option<String>,
    /// A CID or a local path, mounted read-only at `/input`.
    pub input: Option<String>,
    pub args: Vec<String>,
    pub limits: ExecLimits,
    /// Run even when the result is memoised.
    pub no_cache: bool,
    /// Mount a UnixFS rootfs lazily (blocks fetched as read) instead of
    /// unpacking it first (`docs/lazy.md`).
    pub lazy: bool,
    /// Run twice and compare the outputs.
    pub check: bool,
}

/// How a pure run ended.
#[derive(Debug, Clone)]
pub struct PureOutcome {
    /// The CID of `/output`.
    pub output: Cid,
    /// The program's exit code.
    pub code: i32,
    /// The result came from the memo, nothing ran.
    pub cached: bool,
    /// The memo key (hex SHA-256).
    pub key: String,
    /// With `check`: the second run's output CID.
    pub second: Option<Cid>,
    /// How memory and process limits were enforced (when something ran).
    pub enforcement: Option<Enforcement>,
    /// Wall-clock time of the run itself.
    pub elapsed: Duration,
}

/// Everything resolved to CIDs and host directories.
struct Resolved {
    /// Shown in messages and hashed into the key.
    program_id: String,
    rootfs: Option<Cid>,
    input: Option<Cid>,
}

/// Run a pure computation (see the module doc).
pub fn run_pure(layout: &Layout, opts: &PureOptions) -> Result<PureOutcome, Error> {
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    if opts.rootfs.is_none() {
        match &opts.program {
            Program::InRootfs(p) => {
                return Err(Error::Usage(format!(
                    "`{p}` is a path inside a root file system: give one with `--rootfs CID`"
                )));
            }
            Program::RootfsInit => {
                return Err(Error::Usage("`/sbin/init` needs a root file system".into()));
            }
            Program::Package(_) => {}
        }
    }

    let rootfs = opts
        .rootfs
        .as_deref()
        .map(|r| resolve_ref(&store, layout, r, Role::Rootfs))
        .transpose()?;
    let input = opts
        .input
        .as_deref()
        .map(|i| resolve_ref(&store, layout, i, Role::Input))
        .transpose()?;
    let package = match &opts.program {
        Program::Package(p) => Some(match installed_tree(layout, p) {
            Some((cid, _)) => (cid, String::new()),
            None => resolve_ref(&store, layout, p, Role::Program)?,
        }),
        _ => None,
    };
    let resolved = Resolved {
        program_id: match (&opts.program, &package) {
            (Program::RootfsInit, _) => "/sbin/init".to_string(),
            (Program::InRootfs(p), _) => p.clone(),
            (Program::Package(_), Some((cid, path))) => cid_path(cid, path),
            (Program::Package(p), None) => p.clone(),
        },
        rootfs: rootfs.as_ref().map(|(c, _)| *c),
        input: input.as_ref().map(|(c, _)| *c),
    };
    let key = memo_key(&resolved, &opts.args, &opts.limits);
    let memo_dir = layout.state_root().join("execute/memo");
    if !opts.no_cache
        && !opts.check
        && let Some((output, code)) = memo_get(&memo_dir, &key, &store)
    {
        return Ok(PureOutcome {
            output,
            code,
            cached: true,
            key,
            second: None,
            enforcement: None,
            elapsed: Duration::ZERO,
        });
    }

    // Materialise what the sandbox mounts (or mount it lazily: the guard
    // unmounts when the run is over).
    let mut _lazy_rootfs = None;
    let rootfs_dir = match rootfs.as_ref() {
        Some((cid, path)) if opts.lazy => {
            let m = super::mount::mount_rootfs(layout, cid, path)?;
            let dir = m.mountpoint().to_path_buf();
            _lazy_rootfs = Some(m);
            Some(dir)
        }
        Some((cid, path)) => Some(materialise_rootfs(layout, &store, cid, path)?),
        None => None,
    };
    let input_dir = match input.as_ref() {
        Some((cid, _)) => Some(materialise(layout, &store, cid)?),
        None => None,
    };
    let (pkg_dir, command) = match (&opts.program, package.as_ref()) {
        (Program::Package(shown), Some((cid, path))) => {
            let dir = match installed_tree(layout, shown) {
                Some((_, tree)) => tree,
                None => materialise(layout, &store, cid)?,
            };
            let rel = package_command(&dir, path, shown)?;
            let command = if rel.is_empty() {
                "/pkg".to_string()
            } else {
                format!("/pkg/{rel}")
            };
            (Some(dir), command)
        }
        (Program::InRootfs(p), _) => (None, p.clone()),
        _ => (None, "/sbin/init".to_string()),
    };
    if let Some(root) = &rootfs_dir
        && pkg_dir.is_none()
    {
        check_in_rootfs(root, &command, &resolved.program_id)?;
    }

    let pins = Pins::open(layout.pins_dir())?;
    let run = || {
        run_once(
            layout,
            &store,
            &pins,
            &key,
            &resolved,
            rootfs_dir.as_deref(),
            input_dir.as_deref(),
            pkg_dir.as_deref(),
            &command,
            opts,
        )
    };
    let first = run()?;
    let second = if opts.check { Some(run()?) } else { None };
    // A result worth remembering: both runs agree, or there was one.
    if second
        .as_ref()
        .is_none_or(|s| s.output == first.output && s.code == first.code)
    {
        memo_put(&memo_dir, &key, &first.output, first.code)?;
    }
    Ok(PureOutcome {
        output: first.output,
        code: first.code,
        cached: false,
        key,
        second: second.as_ref().map(|s| s.output),
        enforcement: Some(first.enforcement),
        elapsed: first.elapsed,
    })
}

struct OnceResult {
    output: Cid,
    code: i32,
    enforcement: Enforcement,
    elapsed: Duration,
}

#[allow(clippy::too_many_arguments)]
fn run_once(
    layout: &Layout,
    store: &BlockStore,
    pins: &Pins,
    key: &str,
    resolved: &Resolved,
    rootfs: Option<&Path>,
    input: Option<&Path>,
    pkg: Option<&Path>,
    command: &str,
    opts: &PureOptions,
) -> Result<OnceResult, Error> {
    let work_root = layout.state_root().join("execute/work");
    fs::create_dir_all(&work_root).map_err(|e| Error::io(&work_root, e))?;
    let work = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&work_root)
        .map_err(|e| Error::io(&work_root, e))?;
    let output = work.path().join("output");
    fs::create_dir(&output).map_err(|e| Error::io(&output, e))?;

    let sandbox = pure_sandbox(rootfs, input, pkg, &output, &opts.limits)?;
    let started = Instant::now();
    let outcome = sandbox.run(command, &opts.args)?;
    let elapsed = started.elapsed();
    check_limits(&resolved.program_id, &outcome, &opts.limits)?;

    let size = tree_size(&output)?;
    if let Some(limit) = opts.limits.max_output
        && size > limit
    {
        return Err(Error::OutputTooLarge {
            program: resolved.program_id.clone(),
            size,
            limit,
        });
    }
    let add_opts = AddOptions {
        profile: Profile {
            hidden: true,
            ..Profile::default()
        },
        modes: ModePolicy::AsProfile,
        skip_names: &[],
    };
    let imported = add_path(&output, &add_opts, &mut store.sink(), &NoProgress)?;
    store.sync().map_err(|e| Error::io(store.dir(), e))?;
    pins.add(&imported.cid, &format!("execute/{key}"))?;
    drop(work);
    Ok(OnceResult {
        output: imported.cid,
        code: outcome.code(),
        enforcement: outcome.enforcement,
        elapsed,
    })
}

/// The sandbox of a pure run.
fn pure_sandbox(
    rootfs: Option<&Path>,
    input: Option<&Path>,
    pkg: Option<&Path>,
    output: &Path,
    limits: &ExecLimits,
) -> Result<Sandbox, Error> {
    const OWN: [&str; 6] = ["input", "output", "tmp", "proc", "dev", "pkg"];
    let mut sb = Sandbox::new().tmpfs("/");
    if let Some(root) = rootfs {
        let mut names: Vec<_> = fs::read_dir(root)
            .map_err(|e| Error::io(root, e))?
            .filter_map(|e| e.ok())
            .collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                continue;
            };
            if OWN.contains(&name_str) {
                continue;
            }
            let host = entry.path();
            let inside = Path::new("/").join(&name);
            let meta = host.symlink_metadata().map_err(|e| Error::io(&host, e))?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&host).map_err(|e| Error::io(&host, e))?;
                sb = sb.symlink(target, inside);
            } else {
                sb = sb.ro_bind(host, inside);
            }
        }
    }
    if let Some(pkg) = pkg {
        sb = sb.ro_bind(pkg, "/pkg");
    }
    sb = match input {
        Some(dir) => sb.ro_bind(dir, "/input"),
        None => sb.dir("/input"),
    };
    sb = sb.proc("/proc").dev("/dev");
    sb = match limits.memory {
        // tmpfs pages are not in RLIMIT_AS: cap /tmp too.
        Some(bytes) => sb.tmpfs_sized("/tmp", bytes),
        None => sb.tmpfs("/tmp"),
    };
    let path = if pkg.is_some() {
        format!("/pkg/bin:{PURE_PATH}")
    } else {
        PURE_PATH.to_string()
    };
    Ok(sb
        .bind(output, "/output")
        .remount_ro("/")
        .env("PATH", path)
        .env("HOME", "/tmp")
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .ids(PURE_ID, PURE_ID)
        .hostname("ipkg")
        .chdir("/")
        .stdout(Stream::Stderr)
        .limits(limits.sandbox()))
}

/// What stopped a sandboxed program, in words, or `None` when no limit did.
pub fn limit_reason(outcome: &RunOutcome, limits: &Limits) -> Option<String> {
    if outcome.timed_out {
        let t = limits.timeout.unwrap_or_default();
        return Some(format!("it ran past the timeout of {}", show_duration(t)));
    }
    if outcome.memory_exceeded {
        return Some(format!(
            "it ran out of its memory limit of {}",
            show_bytes(limits.memory.unwrap_or(0))
        ));
    }
    if outcome.pids_exceeded {
        return Some(format!(
            "it reached its limit of {} processes",
            limits.pids.unwrap_or(0)
        ));
    }
    if outcome.file_size_exceeded {
        return Some(format!(
            "it wrote a file past the limit of {}",
            show_bytes(limits.file_size.unwrap_or(0))
        ));
    }
    // Under rlimits a hit limit is invisible from outside: allocations and
    // forks just fail inside. A failure while one was in force is reported as
    // such rather than passed off as the program's own result.
    if outcome.enforcement == Enforcement::Rlimit && !outcome.status.success() {
        let mut in_force = Vec::new();
        if let Some(m) = limits.memory {
            in_force.push(format!(
                "{} of memory (address space) per process",
                show_bytes(m)
            ));
        }
        if let Some(n) = limits.pids {
            in_force.push(format!("{n} processes"));
        }
        if !in_force.is_empty() {
            return Some(format!(
                "it failed (exit status {}) while limited to {}: it probably ran out of them (without a cgroup ipkg cannot tell)",
                outcome.code(),
                in_force.join(" and ")
            ));
        }
    }
    None
}

/// Turn a limit hit into its error.
fn check_limits(program: &str, outcome: &RunOutcome, limits: &ExecLimits) -> Result<(), Error> {
    match limit_reason(outcome, &limits.sandbox()) {
        Some(reason) => Err(Error::LimitHit {
            program: program.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn show_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub(crate) fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// Bytes under `dir` (files and symlink targets; directories count 0).
fn tree_size(dir: &Path) -> Result<u64, Error> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            let meta = entry
                .path()
                .symlink_metadata()
                .map_err(|e| Error::io(entry.path(), e))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Rootfs,
    Input,
    Program,
}

impl Role {
    fn add_options(self) -> AddOptions {
        match self {
            // Executables must stay executable after materialising.
            Role::Rootfs | Role::Program => AddOptions {
                profile: Profile {
                    hidden: true,
                    ..Profile::default()
                },
                modes: ModePolicy::Normalised,
                skip_names: &[],
            },
            Role::Input => AddOptions {
                profile: Profile {
                    hidden: true,
                    ..Profile::default()
                },
                modes: ModePolicy::AsProfile,
                skip_names: &[],
            },
        }
    }
}

/// An installed package by name: `<prefix>/<name>` links to
/// `.ipkg/pkgs/<cid>`, which gives both its CID and its unpacked tree.
fn installed_tree(layout: &Layout, name: &str) -> Option<(Cid, PathBuf)> {
    crate::trust::manifest::check_package_name(name).ok()?;
    let link = layout.package_link(name);
    let target = fs::read_link(&link).ok()?;
    let cid = crate::content::cid::parse(target.file_name()?.to_str()?).ok()?;
    let tree = link.canonicalize().ok()?;
    Some((cid, tree))
}

/// `CID`, `CID/path`, `/ipfs/CID/path`, `ipfs://CID/path`, or a local path
/// (added to the store). Returns the root CID and the path inside it.
fn resolve_ref(
    store: &BlockStore,
    _layout: &Layout,
    target: &str,
    role: Role,
) -> Result<(Cid, String), Error> {
    if let Some(parsed) = parse_cid_path(target) {
        return Ok(parsed);
    }
    let path = Path::new(target);
    if path.symlink_metadata().is_err() {
        return Err(Error::Usage(format!(
            "`{target}` is neither a CID nor an existing path"
        )));
    }
    let imported = add_path(path, &role.add_options(), &mut store.sink(), &NoProgress)?;
    store.sync().map_err(|e| Error::io(store.dir(), e))?;
    Ok((imported.cid, String::new()))
}

fn parse_cid_path(target: &str) -> Option<(Cid, String)> {
    let t = target
        .strip_prefix("ipfs://")
        .or_else(|| target.strip_prefix("/ipfs/"))
        .unwrap_or(target);
    let (cid, path) = t.split_once('/').unwrap_or((t, ""));
    let cid = crate::content::cid::parse(cid).ok()?;
    Some((cid, path.trim_matches('/').to_string()))
}

fn cid_path(cid: &Cid, path: &str) -> String {
    if path.is_empty() {
        cid.to_string()
    } else {
        format!("{cid}/{path}")
    }
}

/// Where a CID's tree (or file) is materialised for running: one copy per
/// CID (`<prefix>/.ipkg/run/<cid>`), reused by later runs.
pub fn run_dir(layout: &Layout, cid: &Cid) -> PathBuf {
    let v1 = Cid::new_v1(cid.codec(), *cid.hash());
    layout.state_root().join("run").join(v1.to_string())
}

/// Write `cid` to its cache directory unless a sound copy is there already
/// (see [`cache`]).
pub fn materialise(layout: &Layout, store: &BlockStore, cid: &Cid) -> Result<PathBuf, Error> {
    let dest = run_dir(layout, cid);
    cached_or_build(&dest, |staged| {
        super::content::get::get(store, cid, "", staged, &NoProgress).map(|_| ())
    })
}

/// `dest` when it holds a sound cached tree; else (a missing tree, or one
/// another user could have changed) the tree `build` writes, sealed.
fn cached_or_build(
    dest: &Path,
    build: impl FnOnce(&Path) -> Result<(), Error>,
) -> Result<PathBuf, Error> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    cache::secure_dir(parent).map_err(|e| Error::io(parent, e))?;
    if dest.symlink_metadata().is_ok() {
        if cache::is_sound(dest) {
            return Ok(dest.to_path_buf());
        }
        // Someone else could have written in it: move it aside (so nothing
        // can be put back under its name meanwhile) and make it again.
        let aside = tempfile::Builder::new()
            .prefix(".ipkg-unsound-")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let moved = aside.path().join("tree");
        fs::rename(dest, &moved).map_err(|e| Error::io(dest, e))?;
        super::lifecycle::unpack::remove_tree(&moved)?;
    }
    let tmp = tempfile::Builder::new()
        .prefix(".ipkg-cache-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let staged = tmp.path().join("tree");
    build(&staged)?;
    cache::seal(&staged).map_err(|e| Error::io(&staged, e))?;
    match super::content::get::rename_noreplace(&staged, dest) {
        Ok(()) => Ok(dest.to_path_buf()),
        // Another run made the same CID first: the same bytes, if sound.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cache::is_sound(dest) => {
            super::lifecycle::unpack::remove_tree(&staged)?;
            Ok(dest.to_path_buf())
        }
        Err(e) => Err(Error::io(dest, e)),
    }
}

/// Where a `.tar[.gz]` rootfs is unpacked.
fn rootfs_dir(layout: &Layout, cid: &Cid) -> PathBuf {
    let v1 = Cid::new_v1(cid.codec(), *cid.hash());
    layout
        .state_root()
        .join("execute/rootfs")
        .join(v1.to_string())
}

/// A rootfs: a tree is materialised as is, a file is unpacked as a tar or
/// tar.gz archive.
fn materialise_rootfs(
    layout: &Layout,
    store: &BlockStore,
    cid: &Cid,
    path: &str,
) -> Result<PathBuf, Error> {
    // Already materialised (and sound): no need for the blocks.
    if path.is_empty() {
        for dir in [run_dir(layout, cid), rootfs_dir(layout, cid)] {
            if dir.is_dir() && cache::is_sound(&dir) {
                return Ok(dir);
            }
        }
    }
    let cid = reader::resolve_path(&store, cid, path)?;
    let stat = reader::stat(&store, &cid)?;
    if stat.kind.is_dir() {
        return materialise(layout, store, &cid);
    }
    if !stat.kind.is_file() {
        return Err(Error::Usage(format!(
            "rootfs `{cid}` is a symlink: give a directory or a `.tar.gz` file"
        )));
    }
    let dest = rootfs_dir(layout, &cid);
    cached_or_build(&dest, |staged| {
        let file = FileReader::new(store, &cid)?;
        tarball::unpack(file, staged, &cid.to_string())
    })
}

/// The command to run in a package, relative to it: `path` when given, `""`
/// (the file itself) for a file, else the only command of its `ipkg.toml`,
/// or the one named like the package.
fn package_command(dir: &Path, path: &str, shown: &str) -> Result<String, Error> {
    let no_command = |reason: String| Error::NoCommand {
        program: shown.to_string(),
        reason,
    };
    let meta = dir.symlink_metadata().map_err(|e| Error::io(dir, e))?;
    if meta.is_file() {
        if !path.is_empty() {
            return Err(no_command("it is a file, not a directory".into()));
        }
        return Ok(String::new());
    }
    if !path.is_empty() {
        check_in_tree(dir, path).map_err(no_command)?;
        return Ok(path.to_string());
    }
    let manifest = dir.join("ipkg.toml");
    let text = fs::read_to_string(&manifest).map_err(|_| {
        no_command("no `ipkg.toml` to name its command: give one as `CID/path/to/program`".into())
    })?;
    let m = crate::trust::manifest::Manifest::parse(&text, &manifest)?;
    let pick = if m.commands.len() == 1 {
        m.commands.values().next()
    } else {
        m.commands.get(&m.package.name)
    };
    match pick {
        Some(p) => {
            check_in_tree(dir, p).map_err(no_command)?;
            Ok(p.trim_start_matches("./").to_string())
        }
        None => Err(no_command(format!(
            "it has several commands ({}): name one as `{shown}/PATH`",
            m.commands.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `path` names something inside `dir` (resolving symlinks within it).
fn check_in_tree(dir: &Path, path: &str) -> Result<(), String> {
    let full = dir.join(path.trim_start_matches('/'));
    let real = full
        .canonicalize()
        .map_err(|_| format!("`{path}` does not exist in it"))?;
    let root = dir
        .canonicalize()
        .map_err(|_| format!("`{}` cannot be read", dir.display()))?;
    if !real.starts_with(&root) {
        return Err(format!("`{path}` leads outside it"));
    }
    Ok(())
}

/// `command` exists in the rootfs, following its symlinks as the sandbox
/// would (absolute targets are relative to the rootfs).
fn check_in_rootfs(root: &Path, command: &str, shown: &str) -> Result<(), Error> {
    let missing = || Error::NoCommand {
        program: shown.to_string(),
        reason: format!("the root file system has no `{command}`"),
    };
    let mut path = command.trim_start_matches('/').to_string();
    for _ in 0..40 {
        let host = root.join(&path);
        let meta = host.symlink_metadata().map_err(|_| missing())?;
        if !meta.file_type().is_symlink() {
            return Ok(());
        }
        let target = fs::read_link(&host).map_err(|_| missing())?;
        let target = target.to_string_lossy();
        path = if let Some(abs) = target.strip_prefix('/') {
            abs.to_string()
        } else {
            let parent = Path::new(&path).parent().unwrap_or(Path::new(""));
            normalise(&parent.join(target.as_ref()))
        };
    }
    Err(missing())
}

fn normalise(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.join("/")
}

/// The memo key: SHA-256 over a canonical JSON of what determines the result.
fn memo_key(r: &Resolved, args: &[String], limits: &ExecLimits) -> String {
    let doc = serde_json::json!({
        "v": 1,
        "program": r.program_id,
        "rootfs": r.rootfs.map(|c| Cid::new_v1(c.codec(), *c.hash()).to_string()),
        "input": r.input.map(|c| Cid::new_v1(c.codec(), *c.hash()).to_string()),
        "args": args,
        "timeout_ms": limits.timeout.map(|t| t.as_millis() as u64),
        "memory": limits.memory,
        "pids": limits.pids,
        "max_output": limits.max_output,
    });
    let digest = Sha256::digest(doc.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MemoEntry {
    output: String,
    code: i32,
}

/// A memoised result whose output is still whole in the store.
fn memo_get(dir: &Path, key: &str, store: &BlockStore) -> Option<(Cid, i32)> {
    let text = fs::read_to_string(dir.join(key)).ok()?;
    let entry: MemoEntry = serde_json::from_str(&text).ok()?;
    let cid = crate::content::cid::parse(&entry.output).ok()?;
    dag_complete(store, &cid).then_some((cid, entry.code))
}

/// Every block under `root` is in the store.
fn dag_complete(store: &BlockStore, root: &Cid) -> bool {
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if cid.hash().code() == crate::content::cid::IDENTITY {
            continue;
        }
        match store.get(&cid) {
            Ok(data) => match links_of(&cid, &data) {
                Ok(children) => stack.extend(children),
                Err(_) => return false,
            },
            Err(GetError::Missing(_) | GetError::Corrupt { .. } | GetError::Io { .. }) => {
                return false;
            }
        }
    }
    true
}

fn memo_put(dir: &Path, key: &str, output: &Cid, code: i32) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let entry = MemoEntry {
        output: output.to_string(),
        code,
    };
    let text =
        serde_json::to_string(&entry).map_err(|e| Error::io(dir.join(key), io::Error::other(e)))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(dir.join(key))
        .map_err(|e| Error::io(dir.join(key), e.error))?;
    Ok(())
}

//! Lazy mounts: a read-only FUSE view of a UnixFS DAG whose blocks are
//! fetched on first read (`ipkg mount`, `ipkg run --lazy`).
//!
//! Owns: the FUSE file system ([`fs`]), random-access file reads
//! ([`file`]), the block fetcher with read-ahead ([`blocks`]), the records of
//! live mounts under `<prefix>/.ipkg/mounts/` and the clean-up of mounts
//! whose ipkg died, and lazy runs ([`run`]). Must not touch installed state:
//! a lazy run installs nothing, and blocks it fetches land in the store as a
//! cache that `gc` may drop.
//!
//! Every byte the kernel is given comes from a block verified against its
//! CID; a block that cannot be had or fails verification is `EIO` for that
//! read, never wrong bytes. Reads are bounded by the sources' deadlines, so
//! a dead gateway fails a read instead of hanging it.
//!
//! Clean-up: every mount is recorded under `<prefix>/.ipkg/mounts/` with the
//! pid and start time of the ipkg serving it. When that ipkg is killed, the
//! next ipkg command finds the record ([`reap_stale`], one `readdir` when
//! there is nothing to do) and detaches the dead mount; `ipkg doctor` does
//! the same for any ipkg FUSE mount it finds dead in `/proc/self/mountinfo`.
//! (`fusermount3`'s `auto_unmount` is not used: its watchdog does not
//! survive the process-group signals a terminal or `timeout` sends, and it
//! needs `allow_other`, which a user may not be allowed.)

pub mod blocks;
mod file;
mod fs;
pub mod run;

use std::collections::HashSet;
use std::fs as stdfs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fuser::{BackgroundSession, MountOption, SessionACL};

use crate::content::Cid;
use crate::sources::store::BlockStore;
use crate::sources::{BlockSource, CarSource};

use self::blocks::LazyBlocks;
use super::{Error, Layout};

/// Threads answering the kernel: reads of different files (and of a file
/// and its read-ahead) proceed while one waits for the network.
const FUSE_THREADS: usize = 4;

/// The file system subtype (`fuse.ipkg` in `/proc/mounts` when mounted through
/// `fusermount3`; a direct mount by root shows plain `fuse`).
const SUBTYPE: &str = "ipkg";

/// `<prefix>/.ipkg/mounts`: one record per live mount.
pub fn records_dir(layout: &Layout) -> PathBuf {
    layout.state_root().join("mounts")
}

/// `<prefix>/.ipkg/lazy`: mount points of lazy runs (mode 0700).
pub fn lazy_dir(layout: &Layout) -> PathBuf {
    layout.state_root().join("lazy")
}

/// `<prefix>/.ipkg/profiles/<cid>`: blocks a lazy run of a tree read, in
/// order, fetched first by the next lazy run of it.
pub fn profile_path(layout: &Layout, tree: &Cid) -> PathBuf {
    layout.state_root().join("profiles").join(tree.to_string())
}

/// Blocks for a mount: the store, then a CAR file if given, then the
/// configured network sources.
pub fn lazy_blocks(layout: &Layout, car: Option<&Path>) -> Result<Arc<LazyBlocks>, Error> {
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    // Checked once here, so the rebuilds below cannot fail on the config.
    crate::ops::resolve::fetch::configured_sources(layout)?;
    let layout = layout.clone();
    let car = car.map(Path::to_path_buf);
    let rebuild = move || {
        let mut sources: Vec<Box<dyn BlockSource>> = Vec::new();
        if let Some(car) = &car {
            sources.push(Box::new(CarSource { path: car.clone() }));
        }
        sources.extend(crate::ops::resolve::fetch::configured_sources(&layout).unwrap_or_default());
        sources
    };
    Ok(LazyBlocks::new(store, Box::new(rebuild)))
}

/// A live mount; dropping it unmounts.
pub struct Mounted {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    record: PathBuf,
    blocks: Arc<LazyBlocks>,
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn blocks(&self) -> &Arc<LazyBlocks> {
        &self.blocks
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.blocks.shutdown();
        let lazy = self
            .mountpoint
            .parent()
            .is_some_and(|p| p.ends_with(".ipkg/lazy"));
        if let Some(s) = self.session.take() {
            // The kernel may still hold the mount busy (a child left running
            // in the background): detach it then.
            if s.umount_and_join().is_err() {
                detach(&self.mountpoint);
            }
        }
        let _ = stdfs::remove_file(&self.record);
        if lazy {
            let _ = stdfs::remove_dir(&self.mountpoint);
        }
    }
}

/// Mount `root` read-only at `mountpoint`, served from a background thread
/// until the returned guard is dropped. `exec` lists paths (relative to the
/// root) shown as executable whatever their recorded mode.
pub fn mount_background(
    layout: &Layout,
    blocks: Arc<LazyBlocks>,
    root: &Cid,
    mountpoint: &Path,
    exec: HashSet<String>,
) -> Result<Mounted, Error> {
    let session = new_session(&blocks, root, mountpoint, exec)?;
    let record = write_record(layout, mountpoint)?;
    let session = session.spawn().map_err(|e| {
        let _ = stdfs::remove_file(&record);
        Error::io(mountpoint, e)
    })?;
    Ok(Mounted {
        session: Some(session),
        mountpoint: mountpoint.to_path_buf(),
        record,
        blocks,
    })
}

/// Mount `root` at `mountpoint` and serve it until it is unmounted
/// (`ipkg unmount`, `fusermount3 -u`) or ipkg gets SIGINT, SIGTERM or SIGHUP.
pub fn mount_foreground(
    layout: &Layout,
    blocks: Arc<LazyBlocks>,
    root: &Cid,
    mountpoint: &Path,
    on_ready: &dyn Fn(),
) -> Result<(), Error> {
    // Block the signals in every thread made from here on; one thread waits
    // for them and unmounts, which ends the session cleanly.
    let set = signal_set(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP]);
    // SAFETY: `set` is a valid, initialised signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let mut session = new_session(&blocks, root, mountpoint, HashSet::new())?;
    let record = write_record(layout, mountpoint)?;
    let mut unmounter = session.unmount_callable();
    let mp = mountpoint.to_path_buf();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is valid; `sig` is written by sigwait.
        unsafe { libc::sigwait(&set, &mut sig) };
        if unmounter.unmount().is_err() {
            detach(&mp);
        }
    });
    on_ready();
    let result = session.run().map_err(|e| Error::io(mountpoint, e));
    blocks.shutdown();
    let _ = stdfs::remove_file(&record);
    result
}

fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset with valid numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

fn new_session(
    blocks: &Arc<LazyBlocks>,
    root: &Cid,
    mountpoint: &Path,
    exec: HashSet<String>,
) -> Result<fuser::Session<fs::LazyFs>, Error> {
    let fs = fs::LazyFs::new(Arc::clone(blocks), root, exec).map_err(|e| Error::Mount {
        what: root.to_string(),
        reason: format!("its root cannot be read: {e}"),
    })?;
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
        MountOption::FSName(format!("ipkg:{root}")),
        MountOption::Subtype(SUBTYPE.into()),
    ];
    cfg.n_threads = Some(FUSE_THREADS);
    // SAFETY: geteuid cannot fail.
    let root_user = unsafe { libc::geteuid() } == 0;
    if root_user {
        // Root's mounts must be readable by the unprivileged uid a sandbox
        // maps root to; the mount point's 0700 parent keeps others out.
        cfg.acl = SessionACL::All;
    }
    fuser::Session::new(fs, mountpoint, &cfg).map_err(|e| Error::Mount {
        what: root.to_string(),
        reason: mount_failure(&e, root_user),
    })
}

fn mount_failure(e: &std::io::Error, root_user: bool) -> String {
    if !Path::new("/dev/fuse").exists() {
        return "this machine has no `/dev/fuse` (load the `fuse` module)".into();
    }
    if !root_user && !has_fusermount() {
        return format!(
            "{e}; mounting as a user needs `fusermount3` (Debian: `apt install fuse3`)"
        );
    }
    e.to_string()
}

fn has_fusermount() -> bool {
    which::which("fusermount3").is_ok()
}

static RECORD_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<pid>.<n>`: `pid start-time mountpoint`, so a later ipkg can tell a
/// live mount from one whose ipkg died (pids are reused; start times are not).
fn write_record(layout: &Layout, mountpoint: &Path) -> Result<PathBuf, Error> {
    let dir = records_dir(layout);
    stdfs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let pid = std::process::id();
    let n = RECORD_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{pid}.{n}"));
    let abs = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    let text = format!("{pid} {} {}\n", start_time(pid).unwrap_or(0), abs.display());
    // Atomic: a reaper that read half a record would drop it as garbage and
    // never detach the mount it names.
    super::pins::write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Field 22 of `/proc/<pid>/stat`: when the process started.
fn start_time(pid: u32) -> Option<u64> {
    let stat = stdfs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: skip past the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Detach the mounts whose ipkg is gone. Called at the start of every
/// command: without records it costs one failed `readdir`.
pub fn reap_stale(layout: &Layout) -> Vec<PathBuf> {
    let dir = records_dir(layout);
    let Ok(entries) = stdfs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut reaped = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Ok(text) = stdfs::read_to_string(&path) else {
            continue;
        };
        let mut parts = text.trim_end_matches('\n').splitn(3, ' ');
        let (Some(pid), Some(start), Some(mp)) = (parts.next(), parts.next(), parts.next()) else {
            let _ = stdfs::remove_file(&path);
            continue;
        };
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            let _ = stdfs::remove_file(&path);
            continue;
        };
        if start_time(pid) == Some(start) {
            continue;
        }
        let mp = PathBuf::from(mp);
        detach(&mp);
        if mp.starts_with(lazy_dir(layout)) {
            let _ = stdfs::remove_dir(&mp);
        }
        let _ = stdfs::remove_file(&path);
        reaped.push(mp);
    }
    reaped
}

/// ipkg FUSE mounts in this mount namespace that no live ipkg serves
/// (reading them fails with `ENOTCONN`); with `fix`, detached.
pub fn dead_mounts(fix: bool) -> Vec<PathBuf> {
    let Ok(info) = stdfs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in info.lines() {
        // `... mountpoint options ... - fstype source super-options`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if !is_ipkg_mount(right) {
            continue;
        }
        let Some(mp) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mp = PathBuf::from(unescape_mountinfo(mp));
        if let Err(e) = stdfs::metadata(&mp)
            && e.raw_os_error() == Some(libc::ENOTCONN)
        {
            if fix {
                detach(&mp);
            }
            out.push(mp);
        }
    }
    out
}

/// Whether the part of a `/proc/self/mountinfo` line after ` - ` (`fstype
/// source options`) is an ipkg mount: type `fuse` (a direct mount, as root)
/// or `fuse.ipkg` (through `fusermount3`), source `ipkg:<cid>`.
fn is_ipkg_mount(right: &str) -> bool {
    let mut f = right.split_whitespace();
    let fstype = f.next().unwrap_or("");
    let source = f.next().unwrap_or("");
    (fstype == "fuse" || fstype == format!("fuse.{SUBTYPE}")) && source.starts_with("ipkg:")
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Unmount `mountpoint` (`ipkg unmount`).
pub fn unmount(mountpoint: &Path) -> Result<(), Error> {
    let mounted = |p: &Path| {
        let abs = stdfs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        stdfs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
            info.lines().any(|l| {
                l.split_once(" - ").is_some_and(|(left, right)| {
                    is_ipkg_mount(right)
                        && left
                            .split_whitespace()
                            .nth(4)
                            .is_some_and(|m| Path::new(&unescape_mountinfo(m)) == abs)
                })
            })
        })
    };
    if !mounted(mountpoint) {
        return Err(Error::Mount {
            what: mountpoint.display().to_string(),
            reason: "no ipkg mount is there".into(),
        });
    }
    detach(mountpoint);
    if mounted(mountpoint) {
        return Err(Error::Mount {
            what: mountpoint.display().to_string(),
            reason: "it could not be unmounted".into(),
        });
    }
    Ok(())
}

/// Lazily unmount (`MNT_DETACH`): as root with umount2, else through the
/// setuid `fusermount3 -u -z`. Errors are ignored: the caller checks.
pub fn detach(mountpoint: &Path) {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()) {
            // SAFETY: `c` is a valid NUL-terminated path.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
                return;
            }
        }
    }
    for tool in ["fusermount3", "fusermount"] {
        let ok = std::process::Command::new(tool)
            .args(["-u", "-q", "-z", "--"])
            .arg(mountpoint)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
    }
}

/// A UnixFS rootfs (`CID`, or a directory at `path` inside it) mounted
/// lazily under `<prefix>/.ipkg/lazy/` for a pure run; the guard unmounts.
pub fn mount_rootfs(layout: &Layout, cid: &Cid, path: &str) -> Result<Mounted, Error> {
    let blocks = lazy_blocks(layout, None)?;
    let dir = crate::content::reader::resolve_path(blocks.as_ref(), cid, path)?;
    let stat = crate::content::reader::stat(blocks.as_ref(), &dir)?;
    if !stat.kind.is_dir() {
        return Err(Error::Mount {
            what: dir.to_string(),
            reason: "only a UnixFS directory can be mounted lazily (a `.tar` rootfs is unpacked: \
                     drop `--lazy`)"
                .into(),
        });
    }
    let mountpoint = run::make_mountpoint(layout)?;
    mount_background(layout, blocks, &dir, &mountpoint, HashSet::new()).inspect_err(|_| {
        let _ = stdfs::remove_dir(&mountpoint);
    })
}

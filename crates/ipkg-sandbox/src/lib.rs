//! Sandboxes: run a program under bubblewrap with only what it needs.
//!
//! The sandbox layer of [ipkg](https://crates.io/crates/ipkg), usable on its own;
//! ipkg re-exports it as `ipkg::sandbox`.
//!
//! This layer sits beside ipkg's `sources`: it does I/O (it spawns `bwrap`,
//! writes cgroup files) and knows nothing about packages, stores or CIDs.
//! The caller (ipkg's `ops`) decides *what* a sandbox sees; this crate only
//! builds the `bwrap` command line, applies limits, waits and reports.
//!
//! ```no_run
//! use std::time::Duration;
//! use ipkg_sandbox::{Limits, Sandbox};
//!
//! let outcome = Sandbox::new()
//!     .ro_bind("/srv/rootfs", "/")
//!     .bind("/tmp/out", "/output")
//!     .tmpfs("/tmp")
//!     .proc("/proc")
//!     .dev("/dev")
//!     .env("PATH", "/bin:/sbin")
//!     .limits(Limits { timeout: Some(Duration::from_secs(10)), ..Limits::default() })
//!     .run("/sbin/init", &["echo", "hi"])?;
//! assert!(outcome.success());
//! # Ok::<(), ipkg_sandbox::SandboxError>(())
//! ```
//!
//! # What every sandbox gets
//!
//! New user, PID, IPC, UTS and (when possible) cgroup namespaces, and a new
//! network namespace with only a loopback device unless
//! [`Sandbox::share_net`] is set. An empty root: nothing of the host is visible
//! except what the caller mounts. The environment is exactly what the caller
//! sets (bubblewrap itself runs with a cleared environment). The sandbox is
//! killed when bubblewrap dies (`--die-with-parent`), and bubblewrap is killed
//! when the calling thread dies (`PR_SET_PDEATHSIG`), so the sandbox dies with
//! ipkg. `--new-session` is on by default, so a program cannot push keystrokes
//! into the caller's terminal (`TIOCSTI`).
//!
//! # Limits, and how each is enforced
//!
//! - **timeout**: ipkg waits on a pidfd and SIGKILLs bubblewrap's child (by
//!   pidfd: it only dies with its parent once set up) and bubblewrap when the
//!   time is up; the PID namespace dies with its init.
//! - **memory** and **pids**: a cgroup when ipkg can make one (cgroup v2 with
//!   the controllers delegated to the caller's cgroup, or a writable cgroup v1
//!   `memory`/`pids` hierarchy, which is what root usually has). The cgroup
//!   holds bubblewrap and everything under it; `memory.events`/`pids.events`
//!   tell precisely whether a limit was hit.
//! - Without a cgroup (an unprivileged user without systemd delegation):
//!   `RLIMIT_AS` (per process) and `RLIMIT_NPROC`. Both are set with
//!   `prlimit(2)` on bubblewrap's child *after* it has entered its own user
//!   namespace and before it runs the program (bubblewrap waits on
//!   `--block-fd`). Since Linux 5.14 `RLIMIT_NPROC` counts processes per user
//!   *per user namespace*, so the count is the sandbox's own and the caller's
//!   other processes do not eat into it. The kernel exempts real uid 0 from
//!   `RLIMIT_NPROC`, so root without a writable cgroup has no process limit;
//!   [`probe`] reports that. A full sandbox is seen by counting the entries
//!   of its own `/proc` (zombies included, as the kernel counts them), but a
//!   fork bomb that kills its own shell may end before a look; a hit
//!   `RLIMIT_AS` cannot be seen from outside (allocations just fail). So
//!   under [`Enforcement::Rlimit`] callers treat a failure while a limit was
//!   in force as a probable hit (ipkg: `ops::execute::limit_reason`).
//! - A process limit that is reached (cgroup `pids.events`, or the count)
//!   ends the run at once: the program could not do what it meant to, and a
//!   fork bomb should not linger until the timeout.
//! - **file size**: `RLIMIT_FSIZE` on bubblewrap and everything under it; a
//!   write past it kills the writer with `SIGXFSZ`, which
//!   [`RunOutcome::file_size_exceeded`] reports. Callers that cap a whole
//!   output directory measure it afterwards as well.

mod cgroup;
mod probe;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use probe::{Probe, find_bwrap, probe};

/// Why a sandbox could not run (not: the program in it failed).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("bubblewrap (`bwrap`) is not installed or not on `PATH`")]
    BwrapMissing,
    #[error("cannot start `{}`", bwrap.display())]
    Spawn {
        bwrap: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "bubblewrap could not create the sandbox (exit status {code}): user namespaces may be unavailable"
    )]
    Setup { code: i32 },
    #[error("bubblewrap cannot create namespaces here: {reason}")]
    NoNamespaces { reason: String },
    #[error("the sandbox needs `{}`, which does not exist", path.display())]
    MissingPath { path: PathBuf },
    #[error("waiting for the sandbox failed")]
    Wait(#[source] io::Error),
}

impl SandboxError {
    /// A next step for the user.
    pub fn hint(&self) -> Option<String> {
        match self {
            SandboxError::BwrapMissing => Some(
                "install bubblewrap (`apt-get install bubblewrap`, `dnf install bubblewrap`), or point `IPKG_BWRAP` at it"
                    .into(),
            ),
            SandboxError::Setup { .. } | SandboxError::NoNamespaces { .. } => Some(
                "see bubblewrap's message above; run `ipkg doctor`. Unprivileged user namespaces must be allowed (`sysctl kernel.unprivileged_userns_clone=1`, and on Ubuntu `kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor profile for bwrap)"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Limits on one run. `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Wall-clock time before the sandbox is killed.
    pub timeout: Option<Duration>,
    /// Bytes of memory: the whole sandbox under a cgroup, each process under
    /// `RLIMIT_AS`.
    pub memory: Option<u64>,
    /// Processes (and threads) the program may have at once, itself included.
    pub pids: Option<u32>,
    /// Bytes any one file written in the sandbox may reach (`RLIMIT_FSIZE`).
    pub file_size: Option<u64>,
}

/// How memory and process limits were enforced in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// No memory or process limit was asked for.
    None,
    /// A cgroup (exact, and hits are known).
    Cgroup,
    /// `RLIMIT_AS` and `RLIMIT_NPROC` (see the module doc).
    Rlimit,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// bubblewrap's exit status, which is the program's.
    pub status: ExitStatus,
    /// The timeout was reached and the sandbox killed.
    pub timed_out: bool,
    /// The memory limit was hit (only known under a cgroup).
    pub memory_exceeded: bool,
    /// The process limit was hit.
    pub pids_exceeded: bool,
    /// A process was killed for writing past the file size limit.
    pub file_size_exceeded: bool,
    /// How memory and process limits were enforced.
    pub enforcement: Enforcement,
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
}

impl RunOutcome {
    /// The program exited with status 0 and no limit was hit.
    pub fn success(&self) -> bool {
        self.status.success() && !self.limit_hit()
    }

    /// Whether any limit was hit.
    pub fn limit_hit(&self) -> bool {
        self.timed_out || self.memory_exceeded || self.pids_exceeded || self.file_size_exceeded
    }

    /// The exit code a shell would show: the code, or 128 + the signal.
    pub fn code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    RoBind(PathBuf, PathBuf),
    Bind(PathBuf, PathBuf),
    DevBind(PathBuf, PathBuf),
    Tmpfs(PathBuf, Option<u64>),
    Dir(PathBuf),
    Symlink(OsString, PathBuf),
    Proc(PathBuf),
    Dev(PathBuf),
    RemountRo(PathBuf),
}

/// Where the program's stdin, stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stream {
    /// The caller's own.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// The caller's stderr (for stdout: keeps the caller's stdout for data).
    Stderr,
}

/// A bubblewrap sandbox, built up then run once per [`Sandbox::run`].
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: Option<PathBuf>,
    ops: Vec<Op>,
    env: Vec<(OsString, OsString)>,
    share_net: bool,
    chdir: Option<PathBuf>,
    limits: Limits,
    uid: Option<u32>,
    gid: Option<u32>,
    hostname: Option<String>,
    new_session: bool,
    stdin: Stream,
    stdout: Stream,
    stderr: Stream,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// An empty sandbox: no mounts, no environment, no network, no limits.
    pub fn new() -> Sandbox {
        Sandbox {
            bwrap: None,
            ops: Vec::new(),
            env: Vec::new(),
            share_net: false,
            chdir: None,
            limits: Limits::default(),
            uid: None,
            gid: None,
            hostname: None,
            new_session: true,
            stdin: Stream::Inherit,
            stdout: Stream::Inherit,
            stderr: Stream::Inherit,
        }
    }

    /// Use this `bwrap` instead of looking for one ([`find_bwrap`]).
    pub fn bwrap(mut self, path: impl Into<PathBuf>) -> Self {
        self.bwrap = Some(path.into());
        self
    }

    /// Mount host `host` read-only at `inside`. Mounts apply in the order given.
    pub fn ro_bind(mut self, host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::RoBind(host.into(), inside.into()));
        self
    }

    /// Mount host `host` read-write at `inside`.
    pub fn bind(mut self, host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::Bind(host.into(), inside.into()));
        self
    }

    /// Mount a host device node or directory of them (`/dev/null`, `/dev/dri`).
    pub fn dev_bind(mut self, host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::DevBind(host.into(), inside.into()));
        self
    }

    /// A fresh, private tmpfs at `inside`.
    pub fn tmpfs(mut self, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::Tmpfs(inside.into(), None));
        self
    }

    /// A fresh tmpfs at `inside` that holds at most `bytes`.
    pub fn tmpfs_sized(mut self, inside: impl Into<PathBuf>, bytes: u64) -> Self {
        self.ops.push(Op::Tmpfs(inside.into(), Some(bytes)));
        self
    }

    /// An empty directory at `inside` (on whatever is mounted there).
    pub fn dir(mut self, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::Dir(inside.into()));
        self
    }

    /// A symlink at `inside` pointing to `target`.
    pub fn symlink(mut self, target: impl Into<OsString>, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::Symlink(target.into(), inside.into()));
        self
    }

    /// A `/proc` for the sandbox's own PID namespace.
    pub fn proc(mut self, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::Proc(inside.into()));
        self
    }

    /// A minimal `/dev`: null, zero, full, random, urandom, tty, pts, shm.
    pub fn dev(mut self, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::Dev(inside.into()));
        self
    }

    /// Make `inside` (already mounted) read-only, e.g. a tmpfs root once filled.
    pub fn remount_ro(mut self, inside: impl Into<PathBuf>) -> Self {
        self.ops.push(Op::RemountRo(inside.into()));
        self
    }

    /// Set an environment variable inside. Nothing else is inherited.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Keep the host's network (default: a private namespace with loopback only).
    pub fn share_net(mut self, share: bool) -> Self {
        self.share_net = share;
        self
    }

    /// The working directory inside (default: `/`).
    pub fn chdir(mut self, inside: impl Into<PathBuf>) -> Self {
        self.chdir = Some(inside.into());
        self
    }

    /// The uid and gid the program sees (default: the caller's).
    pub fn ids(mut self, uid: u32, gid: u32) -> Self {
        self.uid = Some(uid);
        self.gid = Some(gid);
        self
    }

    /// The hostname inside (default: bubblewrap's, the host's name).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// Run in a new session (default: yes; see the module doc).
    pub fn new_session(mut self, yes: bool) -> Self {
        self.new_session = yes;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn stdin(mut self, s: Stream) -> Self {
        self.stdin = s;
        self
    }

    pub fn stdout(mut self, s: Stream) -> Self {
        self.stdout = s;
        self
    }

    pub fn stderr(mut self, s: Stream) -> Self {
        self.stderr = s;
        self
    }

    /// The bubblewrap arguments this sandbox runs `program args` with, without
    /// the file descriptors a run adds (for benchmarks and `--verbose`).
    pub fn bwrap_args(&self, program: &OsStr, args: &[&OsStr]) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let mut push = |s: &OsStr| v.push(s.to_os_string());
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
        ] {
            push(OsStr::new(flag));
        }
        if !self.share_net {
            push(OsStr::new("--unshare-net"));
        }
        if self.new_session {
            push(OsStr::new("--new-session"));
        }
        if let Some(uid) = self.uid {
            push(OsStr::new("--uid"));
            push(OsStr::new(&uid.to_string()));
        }
        if let Some(gid) = self.gid {
            push(OsStr::new("--gid"));
            push(OsStr::new(&gid.to_string()));
        }
        if let Some(h) = &self.hostname {
            push(OsStr::new("--hostname"));
            push(OsStr::new(h));
        }
        for op in &self.ops {
            match op {
                Op::RoBind(h, i) => {
                    push(OsStr::new("--ro-bind"));
                    push(h.as_os_str());
                    push(i.as_os_str());
                }
                Op::Bind(h, i) => {
                    push(OsStr::new("--bind"));
                    push(h.as_os_str());
                    push(i.as_os_str());
                }
                Op::DevBind(h, i) => {
                    push(OsStr::new("--dev-bind"));
                    push(h.as_os_str());
                    push(i.as_os_str());
                }
                Op::Tmpfs(i, size) => {
                    if let Some(size) = size {
                        push(OsStr::new("--size"));
                        push(OsStr::new(&size.to_string()));
                    }
                    push(OsStr::new("--tmpfs"));
                    push(i.as_os_str());
                }
                Op::Dir(i) => {
                    push(OsStr::new("--dir"));
                    push(i.as_os_str());
                }
                Op::Symlink(t, i) => {
                    push(OsStr::new("--symlink"));
                    push(t);
                    push(i.as_os_str());
                }
                Op::Proc(i) => {
                    push(OsStr::new("--proc"));
                    push(i.as_os_str());
                }
                Op::Dev(i) => {
                    push(OsStr::new("--dev"));
                    push(i.as_os_str());
                }
                Op::RemountRo(i) => {
                    push(OsStr::new("--remount-ro"));
                    push(i.as_os_str());
                }
            }
        }
        if let Some(dir) = &self.chdir {
            push(OsStr::new("--chdir"));
            push(dir.as_os_str());
        }
        push(OsStr::new("--"));
        push(program);
        for a in args {
            push(a);
        }
        v
    }

    /// Run `program` (a path inside the sandbox) with `args` and wait for it.
    ///
    /// An `Ok` outcome says how the program ended, including when a limit
    /// stopped it; `Err` means the sandbox itself could not be set up.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
    ) -> Result<RunOutcome, SandboxError> {
        let bwrap = match &self.bwrap {
            Some(b) => b.clone(),
            None => find_bwrap().ok_or(SandboxError::BwrapMissing)?,
        };
        // bubblewrap's own message for a missing bind source is terse; say which.
        for op in &self.ops {
            if let Op::RoBind(h, _) | Op::Bind(h, _) | Op::DevBind(h, _) = op
                && h.symlink_metadata().is_err()
            {
                return Err(SandboxError::MissingPath { path: h.clone() });
            }
        }
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let mut argv = self.bwrap_args(OsStr::new(program), &args);

        let limits = self.limits;
        let wants_cgroup = limits.memory.is_some() || limits.pids.is_some();
        let cgroup = if wants_cgroup {
            cgroup::Cgroup::create(&limits)
        } else {
            None
        };
        let enforcement = match (&cgroup, wants_cgroup) {
            (_, false) => Enforcement::None,
            (Some(_), true) => Enforcement::Cgroup,
            (None, true) => Enforcement::Rlimit,
        };
        let use_rlimits = enforcement == Enforcement::Rlimit;

        // `--info-fd` tells us bubblewrap's child's pid (and that the
        // namespaces were made); `--block-fd` holds the child until its
        // rlimits are set.
        let (info_r, info_w) = pipe().map_err(|e| SandboxError::Spawn {
            bwrap: bwrap.clone(),
            source: e,
        })?;
        let block = if use_rlimits {
            Some(pipe().map_err(|e| SandboxError::Spawn {
                bwrap: bwrap.clone(),
                source: e,
            })?)
        } else {
            None
        };
        let mut pre: Vec<OsString> =
            vec!["--info-fd".into(), info_w.as_raw_fd().to_string().into()];
        if let Some((block_r, _)) = &block {
            pre.push("--block-fd".into());
            pre.push(block_r.as_raw_fd().to_string().into());
        }
        pre.append(&mut argv);
        let argv = pre;

        let mut cmd = Command::new(&bwrap);
        cmd.args(&argv)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(stdio(self.stdin)?);
        cmd.stdout(stdio(self.stdout)?);
        cmd.stderr(stdio(self.stderr)?);

        let keep_fds: Vec<i32> = std::iter::once(info_w.as_raw_fd())
            .chain(block.as_ref().map(|(r, _)| r.as_raw_fd()))
            .collect();
        let procs_files = cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default();
        let fsize = limits.file_size;
        // SAFETY: the closure only makes async-signal-safe system calls on
        // values prepared before the fork.
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // The caller died between fork and prctl.
                    libc::_exit(1);
                }
                for fd in &keep_fds {
                    let flags = libc::fcntl(*fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(*fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for file in &procs_files {
                    cgroup::join(file)?;
                }
                if let Some(bytes) = fsize {
                    let lim = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SandboxError::BwrapMissing
            } else {
                SandboxError::Spawn {
                    bwrap: bwrap.clone(),
                    source: e,
                }
            }
        })?;
        drop(info_w);
        let block_w = block.map(|(r, w)| {
            drop(r);
            w
        });

        // bubblewrap writes `{"child-pid": N}` and closes the pipe, or exits.
        let inner_pid = read_child_pid(info_r);
        if let (Some(pid), Some(mut w)) = (inner_pid, block_w) {
            if let Some(bytes) = limits.memory {
                prlimit(pid, libc::RLIMIT_AS, bytes);
            }
            if let Some(n) = limits.pids {
                // + 1: bubblewrap's init (PID 1 of the sandbox) counts too.
                prlimit(pid, libc::RLIMIT_NPROC, u64::from(n) + 1);
            }
            let _ = w.write_all(b"go");
        }

        let mut sampler = match (enforcement, limits.pids, inner_pid) {
            (Enforcement::Rlimit, Some(n), Some(pid)) => {
                Some(ProcSampler::new(pid, n as usize + 1))
            }
            _ => None,
        };
        let pidfd = pidfd_open(child.id() as i32);
        let inner_pidfd = inner_pid.and_then(pidfd_open);
        let deadline = limits.timeout.map(|t| start + t);
        // A process limit that is reached ends the run: the program could not
        // do what it meant to, and a fork bomb should not linger until the
        // timeout.
        let watch_pids = limits.pids.is_some() && (sampler.is_some() || cgroup.is_some());
        let mut timed_out = false;
        let mut pids_hit = false;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(SandboxError::Wait)? {
                break status;
            }
            if let Some(s) = sampler.as_mut() {
                s.sample();
                pids_hit = s.hit;
            } else if watch_pids && let Some(c) = &cgroup {
                pids_hit = c.pids_exceeded();
            }
            let now = Instant::now();
            let out_of_time = deadline.is_some_and(|d| now >= d);
            if out_of_time || pids_hit {
                timed_out = out_of_time && !pids_hit;
                // bubblewrap's child only dies with its parent once it is set
                // up: kill it first, by pidfd so a reused pid is never hit.
                if let Some(fd) = &inner_pidfd {
                    pidfd_kill(fd);
                }
                let _ = child.kill();
                if let Some(c) = &cgroup {
                    c.kill_all();
                }
                break child.wait().map_err(SandboxError::Wait)?;
            }
            let mut wait = deadline.map_or(Duration::from_secs(3600), |d| d - now);
            if sampler.is_some() {
                // Fork bombs burst at once and may burn out within
                // milliseconds: look closely at first.
                let step = if now - start < Duration::from_millis(500) {
                    1
                } else {
                    5
                };
                wait = wait.min(Duration::from_millis(step));
            } else if watch_pids {
                wait = wait.min(Duration::from_millis(10));
            }
            match &pidfd {
                Some(fd) => poll_readable(fd, wait),
                None => std::thread::sleep(wait.min(Duration::from_millis(5))),
            }
        };
        let elapsed = start.elapsed();

        if inner_pid.is_none() && !status.success() && !timed_out {
            // Say why when it is the usual reason: no user namespaces.
            if let Err(reason) = probe::userns_check(&bwrap) {
                return Err(SandboxError::NoNamespaces { reason });
            }
            return Err(SandboxError::Setup {
                code: status.code().unwrap_or(1),
            });
        }
        let (memory_exceeded, cg_pids) = match &cgroup {
            Some(c) => (c.memory_exceeded(), c.pids_exceeded()),
            None => (false, false),
        };
        let code = status.code().unwrap_or(0);
        let file_size_exceeded = fsize.is_some()
            && (status.signal() == Some(libc::SIGXFSZ) || code == 128 + libc::SIGXFSZ);
        Ok(RunOutcome {
            status,
            timed_out,
            memory_exceeded,
            pids_exceeded: cg_pids || pids_hit,
            file_size_exceeded,
            enforcement,
            elapsed,
        })
    }
}

fn stdio(s: Stream) -> Result<Stdio, SandboxError> {
    Ok(match s {
        Stream::Inherit => Stdio::inherit(),
        Stream::Null => Stdio::null(),
        Stream::Stderr => {
            // SAFETY: dup returns a new descriptor we own, or -1.
            let dup = unsafe { libc::dup(io::stderr().as_raw_fd()) };
            if dup < 0 {
                return Err(SandboxError::Wait(io::Error::last_os_error()));
            }
            // SAFETY: `dup` is a fresh descriptor owned by nobody else.
            Stdio::from(unsafe { OwnedFd::from_raw_fd(dup) })
        }
    })
}

fn pipe() -> io::Result<(OwnedFd, File)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here only.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// Read bubblewrap's `--info-fd` JSON and return `child-pid`, or `None` when
/// bubblewrap exited before making its child.
fn read_child_pid(fd: OwnedFd) -> Option<i32> {
    let mut text = String::new();
    File::from(fd).read_to_string(&mut text).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value
        .get("child-pid")?
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
}

fn prlimit(pid: i32, resource: libc::__rlimit_resource_t, value: u64) {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `lim` is a valid rlimit; a failure leaves the limit unset, which
    // the sampler and the caller's checks still cover.
    unsafe {
        libc::prlimit(pid, resource, &lim, std::ptr::null_mut());
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: a fresh descriptor owned here only.
        Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: pidfd_send_signal takes a pidfd, a signal, no siginfo, no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

fn poll_readable(fd: &OwnedFd, wait: Duration) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    unsafe {
        libc::poll(&mut p, 1, ms);
    }
}

/// Counts the processes of the sandbox, zombies included as the kernel
/// counts them, to tell when `RLIMIT_NPROC` was reached: the kernel does not
/// say. It reads the sandbox's own `/proc` (through `/proc/PID/root`), which
/// lists exactly the sandbox's PID namespace, once bubblewrap has mounted it
/// there. Only used under rlimits.
struct ProcSampler {
    root: i32,
    proc_dir: PathBuf,
    /// The sandbox's `/proc` is in place (before that, `/proc/PID/root` is
    /// still the host's root).
    ready: bool,
    limit: usize,
    hit: bool,
}

impl ProcSampler {
    fn new(root: i32, limit: usize) -> ProcSampler {
        ProcSampler {
            root,
            proc_dir: PathBuf::from(format!("/proc/{root}/root/proc")),
            ready: false,
            limit,
            hit: false,
        }
    }

    fn sample(&mut self) {
        if self.hit {
            return;
        }
        if !self.ready {
            // PID 1 of the procfs seen there is the sandbox's own init.
            let theirs = std::fs::read_link(format!("/proc/{}/ns/pid", self.root));
            let seen = std::fs::read_link(self.proc_dir.join("1/ns/pid"));
            match (theirs, seen) {
                (Ok(a), Ok(b)) if a == b => self.ready = true,
                _ => return,
            }
        }
        let Ok(dir) = std::fs::read_dir(&self.proc_dir) else {
            return;
        };
        let count = dir
            .flatten()
            .filter(|e| {
                e.file_name()
                    .as_encoded_bytes()
                    .iter()
                    .all(u8::is_ascii_digit)
            })
            .count();
        if count >= self.limit {
            self.hit = true;
        }
    }
}

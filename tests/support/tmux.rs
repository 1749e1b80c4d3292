//! A private tmux server for one terminal session of a test.
//!
//! Every [`Tmux`] gets a socket path of its own (a fresh directory under the
//! test's temporary root, numbered by a process-wide counter), so no two
//! sessions, in one test or across tests, ever share a server. Dropping it
//! (or [`Tmux::kill`]) runs `kill-server` and then waits until the server
//! process is really gone: `kill-server` returns before the server has
//! exited, and a new server on the same socket at that moment dies with
//! `server exited unexpectedly`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Output, run};

/// How long a killed server may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `tmux` runs here; records a skip (key `tmux`, a failure under CI)
/// when it does not.
pub fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        super::skip("tmux", "tmux is not installed (.ci/run installs it)");
    }
    ok
}

/// One tmux server on its own socket; killed (and waited for) on drop.
pub struct Tmux {
    socket: PathBuf,
    server_pid: Option<u32>,
}

impl Tmux {
    /// A server-to-be on a fresh socket in a new directory under `parent`
    /// (a test's temporary directory: socket paths must stay short).
    pub fn new(parent: &Path) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("tmux{n}"));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("creating the tmux directory {}: {e}", dir.display()));
        Tmux {
            socket: dir.join("sock"),
            server_pid: None,
        }
    }

    /// The directory the socket lives in (free for the test's own files).
    pub fn dir(&self) -> &Path {
        self.socket.parent().expect("the socket is in a directory")
    }

    /// `tmux -S SOCKET -f /dev/null`, to add a command to.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .stdin(Stdio::null());
        cmd
    }

    /// Start the server with `cmd` (from [`Tmux::command`], with
    /// `new-session -d …` added) and remember its pid.
    #[track_caller]
    pub fn start(&mut self, cmd: Command) {
        assert!(self.server_pid.is_none(), "this tmux server already runs");
        run(cmd, None).success();
        let pid = self.run(&["display-message", "-p", "#{pid}"]);
        pid.success();
        let pid = pid.stdout_trimmed().parse::<u32>().unwrap_or_else(|e| {
            panic!("tmux server pid {:?}: {e}", pid.stdout_trimmed());
        });
        self.server_pid = Some(pid);
    }

    /// Run `tmux -S SOCKET ARGS…` against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd, None)
    }

    /// `capture-pane -p` plus `extra` arguments: the visible screen.
    pub fn screen(&self, extra: &[&str]) -> String {
        let mut args = vec!["capture-pane", "-p"];
        args.extend_from_slice(extra);
        self.run(&args).stdout
    }

    /// `kill-server`, then wait until the server process has exited.
    pub fn kill(&mut self) {
        let Some(pid) = self.server_pid.take() else {
            return;
        };
        let _ = self.command().arg("kill-server").output();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while alive(pid) {
            if Instant::now() > deadline {
                // Not gone after kill-server: make sure, then report it.
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!(
                    "tmux server {pid} ({}) still runs {EXIT_TIMEOUT:?} after kill-server",
                    self.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Best effort only: a second panic would abort the test binary.
            if let Some(pid) = self.server_pid.take() {
                let _ = self.command().arg("kill-server").output();
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        } else {
            self.kill();
        }
    }
}

/// Whether process `pid` still runs (a zombie nobody reaped counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        Err(_) => false,
    }
}

//! `ipkg serve` run by a test: started on a free loopback port, killed on
//! drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};

use super::TestEnv;

/// A running `ipkg serve`.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub addr: SocketAddr,
}

impl Served {
    /// The server's process ID (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `ipkg serve --listen 127.0.0.1:0 EXTRA…` in `env` and wait for the
/// URL it prints.
pub fn serve(env: &TestEnv, extra: &[&str]) -> Served {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = env
        .ipkg_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting ipkg serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("reading the URL ipkg serve prints");
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://"), "ipkg serve printed {url:?}");
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address");
    Served { child, url, addr }
}

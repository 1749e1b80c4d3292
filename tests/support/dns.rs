//! A real DNS server for DNSLink tests: dnsmasq on 127.0.0.1 with a free
//! port, answering only the TXT records a test gives it (no upstream, no
//! hosts file, no system config). Killed on drop.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dnsmasq {
    child: Child,
    pub port: u16,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether dnsmasq is installed; records a skip (key `dnsmasq`, a failure
/// under CI) when it is not.
pub fn dnsmasq_available() -> bool {
    let ok = Command::new("dnsmasq")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        super::skip(
            "dnsmasq",
            "dnsmasq is not installed (.ci/run installs dnsmasq-base)",
        );
    }
    ok
}

impl Dnsmasq {
    /// Serve `records` (`(name, text)` TXT records) on 127.0.0.1.
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        Dnsmasq::start_on(None, "127.0.0.1", free_udp_port(), records)
    }

    /// Serve on `addr:port`, inside network namespace `netns` when given.
    pub fn start_on(
        netns: Option<&str>,
        addr: &str,
        port: u16,
        records: &[(&str, &str)],
    ) -> Dnsmasq {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "dnsmasq"]);
                c
            }
            None => Command::new("dnsmasq"),
        };
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--pid-file=",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--listen-address={addr}"));
        for (name, text) in records {
            cmd.arg(format!("--txt-record={name},{text}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dnsmasq");
        let d = Dnsmasq { child, port };
        // Ready when it answers on the port (a bound UDP port cannot be
        // bound again).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if netns.is_some() {
                // Not visible from here: give it a moment.
                std::thread::sleep(Duration::from_millis(300));
                return d;
            }
            if UdpSocket::bind((addr, port)).is_err() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("dnsmasq did not start on port {port}");
    }

    /// `127.0.0.1:PORT`, for `dns-servers`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

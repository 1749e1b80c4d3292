//! Two "hosts" for a test: network namespaces joined by a veth pair, with
//! addresses from 192.0.2.0/24 (TEST-NET-1, RFC 5737: documentation only,
//! never routed). Nothing else is connected to them and they have no default
//! route, so their traffic cannot leave the pair. Removed on drop.

use std::ffi::OsStr;
use std::process::Command;

pub struct NetPair {
    pub a: String,
    pub b: String,
    /// The address of host `a` (192.0.2.1).
    pub a_addr: &'static str,
    /// The address of host `b` (192.0.2.2).
    pub b_addr: &'static str,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetPair {
    /// Make the pair, or say why it cannot be made: `None` (with the reason
    /// printed) outside CI; a panic under CI, where tests run as root.
    pub fn create(tag: &str) -> Option<NetPair> {
        let id = format!("{tag}{}", std::process::id() % 100_000);
        let pair = NetPair {
            a: format!("ipkg-{id}-a"),
            b: format!("ipkg-{id}-b"),
            a_addr: "192.0.2.1",
            b_addr: "192.0.2.2",
        };
        let (va, vb) = (format!("v{id}a"), format!("v{id}b"));
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &pair.a])?;
            ip(&["netns", "add", &pair.b])?;
            ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
            ip(&["link", "set", &va, "netns", &pair.a])?;
            ip(&["link", "set", &vb, "netns", &pair.b])?;
            for (ns, dev, addr) in [(&pair.a, &va, pair.a_addr), (&pair.b, &vb, pair.b_addr)] {
                ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
                ip(&["-n", ns, "link", "set", dev, "up"])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        match setup() {
            Ok(()) => Some(pair),
            Err(why) => {
                drop(pair);
                // SAFETY: geteuid cannot fail.
                let key = if unsafe { libc::geteuid() } == 0 {
                    "netns"
                } else {
                    "root"
                };
                super::skip(
                    key,
                    format!("cannot create network namespaces ({why}); run as root"),
                );
                None
            }
        }
    }

    /// `cmd`, run inside namespace `ns` (same program, arguments,
    /// environment and directory).
    pub fn exec(ns: &str, cmd: &Command) -> Command {
        let mut out = Command::new("ip");
        out.args(["netns", "exec", ns]).arg(cmd.get_program());
        out.args(cmd.get_args());
        out.env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                out.env(k, v);
            }
        }
        if let Some(d) = cmd.get_current_dir() {
            out.current_dir(d);
        }
        out
    }

    /// `program args…` inside namespace `ns`, inheriting the environment.
    pub fn command<I, S>(ns: &str, program: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]).args(args);
        c
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of the veth, and so the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

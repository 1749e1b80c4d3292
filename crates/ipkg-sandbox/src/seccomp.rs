//! A seccomp filter that keeps setuid and setgid bits from being set, given
//! to bubblewrap with `--seccomp`, as systemd's `RestrictSUIDSGID=` does.
//!
//! The sandbox keeps the caller's uid on the host, so a program run by root
//! could otherwise `chmod u+s` a copy of a shell in a writable bind and
//! leave a setuid-root binary behind for any local user. `nosuid` mounts do
//! not help there: they stop setuid taking effect inside, not the bit being
//! set on a host file. The filter returns `EPERM` for `chmod`, `fchmod`,
//! `fchmodat`, `fchmodat2`, `mknod`, `mknodat` with `S_ISUID` or `S_ISGID` in
//! the mode, and for `open`, `openat`, `creat` that create a file
//! (`O_CREAT`, `O_TMPFILE`) with either bit. `openat2` (whose mode is in a
//! struct the filter cannot read) and `io_uring_setup` (whose requests it
//! cannot see) fail with `ENOSYS`, which C libraries fall back from. On
//! x86_64, x32 system calls fail the same way and the i386 ones are checked
//! with their own numbers. Other architectures get no filter (bubblewrap's
//! own protections and the callers' clean-up still apply).

/// One BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET: u16 = 0x06; // BPF_RET | BPF_K

const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
fn arg(n: u32) -> u32 {
    // The low 32 bits of argument n (little-endian).
    16 + 8 * n
}

const SUID_SGID: u32 = 0o6000;
/// `O_CREAT | __O_TMPFILE`, the same on x86 and arm64.
const CREATES: u32 = 0o100 | 0o20000000;

/// One architecture's system call numbers (`None`: not on that one).
struct Table {
    arch: u32,
    chmod: Option<u32>,
    fchmod: u32,
    fchmodat: u32,
    fchmodat2: u32,
    mknod: Option<u32>,
    mknodat: u32,
    open: Option<u32>,
    openat: u32,
    creat: Option<u32>,
    openat2: u32,
    io_uring_setup: u32,
    /// x32: numbers with this bit set are refused.
    x32_bit: Option<u32>,
}

const X86_64: Table = Table {
    arch: 0xC000_003E,
    chmod: Some(90),
    fchmod: 91,
    fchmodat: 268,
    fchmodat2: 452,
    mknod: Some(133),
    mknodat: 259,
    open: Some(2),
    openat: 257,
    creat: Some(85),
    openat2: 437,
    io_uring_setup: 425,
    x32_bit: Some(0x4000_0000),
};

const I386: Table = Table {
    arch: 0x4000_0003,
    chmod: Some(15),
    fchmod: 94,
    fchmodat: 306,
    fchmodat2: 452,
    mknod: Some(14),
    mknodat: 297,
    open: Some(5),
    openat: 295,
    creat: Some(8),
    openat2: 437,
    io_uring_setup: 425,
    x32_bit: None,
};

const AARCH64: Table = Table {
    arch: 0xC000_00B7,
    chmod: None,
    fchmod: 52,
    fchmodat: 53,
    fchmodat2: 452,
    mknod: None,
    mknodat: 33,
    open: None,
    openat: 56,
    creat: None,
    openat2: 437,
    io_uring_setup: 425,
    x32_bit: None,
};

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The rules of one architecture, ending in `ret ALLOW`. Each rule is a
/// block that decides by itself when the number matches and is jumped over
/// otherwise.
fn section(t: &Table) -> Vec<Insn> {
    let mut p = Vec::new();
    if let Some(bit) = t.x32_bit {
        p.push(ins(LD_ABS, 0, 0, NR));
        p.push(ins(JGE, 0, 1, bit));
        p.push(ins(RET, 0, 0, ERRNO | libc::ENOSYS as u32));
    }
    // The mode is argument `mode`; with `flags`, only when it creates.
    let mut rule = |nr: u32, mode: u32, flags: Option<u32>| {
        let body_len = if flags.is_some() { 6 } else { 4 };
        p.push(ins(LD_ABS, 0, 0, NR));
        p.push(ins(JEQ, 0, body_len, nr));
        if let Some(f) = flags {
            p.push(ins(LD_ABS, 0, 0, arg(f)));
            p.push(ins(JSET, 0, 3, CREATES));
        }
        p.push(ins(LD_ABS, 0, 0, arg(mode)));
        p.push(ins(JSET, 0, 1, SUID_SGID));
        p.push(ins(RET, 0, 0, ERRNO | libc::EPERM as u32));
        p.push(ins(RET, 0, 0, ALLOW));
    };
    if let Some(nr) = t.chmod {
        rule(nr, 1, None);
    }
    rule(t.fchmod, 1, None);
    rule(t.fchmodat, 2, None);
    rule(t.fchmodat2, 2, None);
    if let Some(nr) = t.mknod {
        rule(nr, 1, None);
    }
    rule(t.mknodat, 2, None);
    if let Some(nr) = t.open {
        rule(nr, 2, Some(1));
    }
    rule(t.openat, 3, Some(2));
    if let Some(nr) = t.creat {
        rule(nr, 1, None);
    }
    for nr in [t.openat2, t.io_uring_setup] {
        p.push(ins(LD_ABS, 0, 0, NR));
        p.push(ins(JEQ, 0, 1, nr));
        p.push(ins(RET, 0, 0, ERRNO | libc::ENOSYS as u32));
    }
    p.push(ins(RET, 0, 0, ALLOW));
    p
}

/// The architectures this build's programs may call the kernel as.
fn tables() -> &'static [&'static Table] {
    if cfg!(target_arch = "x86_64") {
        &[&X86_64, &I386]
    } else if cfg!(target_arch = "aarch64") {
        &[&AARCH64]
    } else {
        &[]
    }
}

/// The compiled filter as bubblewrap reads it from `--seccomp FD` (an array
/// of `struct sock_filter`), or `None` on an architecture without a table.
pub(super) fn program() -> Option<Vec<u8>> {
    let tables = tables();
    if tables.is_empty() {
        return None;
    }
    let mut prog = Vec::new();
    for t in tables {
        let body = section(t);
        prog.push(ins(LD_ABS, 0, 0, ARCH));
        prog.push(ins(JEQ, 0, u8::try_from(body.len()).ok()?, t.arch));
        prog.extend(body);
    }
    // An architecture the kernel should never report here.
    prog.push(ins(RET, 0, 0, ERRNO | libc::ENOSYS as u32));
    let mut bytes = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    Some(bytes)
}

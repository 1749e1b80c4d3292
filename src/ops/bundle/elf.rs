//! What the dynamic loader reads from an ELF file: its class and machine, its
//! loader (`PT_INTERP`), the libraries it needs (`DT_NEEDED`) and where it asks
//! for them to be searched (`DT_RPATH`, `DT_RUNPATH`). Parsed with goblin from
//! the program headers, so stripped section headers do not matter.

use std::path::Path;

use goblin::elf::Elf;

/// The parts of an ELF file that decide how it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dynamic {
    /// 64-bit (`ELFCLASS64`) or 32-bit.
    pub is_64: bool,
    /// `e_machine`: a library is usable only with the same class and machine.
    pub machine: u16,
    /// `PT_INTERP`, the loader an executable asks for; `None` for libraries
    /// and static programs.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` entries (ignored by the loader when `DT_RUNPATH` is present).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries.
    pub runpath: Vec<String>,
}

/// Parse `bytes` (the whole file); `Err` says why it is not a usable ELF file.
pub fn parse(bytes: &[u8]) -> Result<Dynamic, String> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(if bytes.starts_with(b"#!") {
            "it is a script, not an ELF program; bundle its interpreter instead".into()
        } else {
            "it is not an ELF file".into()
        });
    }
    let elf = Elf::parse(bytes).map_err(|e| format!("cannot parse its ELF headers: {e}"))?;
    let split = |v: &[&str]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok(Dynamic {
        is_64: elf.is_64,
        machine: elf.header.e_machine,
        interpreter: elf.interpreter.map(str::to_owned),
        needed: elf.libraries.iter().map(|s| (*s).to_owned()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
    })
}

/// Whether `path` is an ELF file of the given class and machine (the loader
/// skips candidates that are not, and so does the search).
pub fn matches(path: &Path, is_64: bool, machine: u16) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if f.read_exact(&mut head).is_err() || !head.starts_with(b"\x7fELF") {
        return false;
    }
    let class_ok = head[4] == if is_64 { 2 } else { 1 };
    let m = match head[5] {
        1 => u16::from_le_bytes([head[18], head[19]]),
        _ => u16::from_be_bytes([head[18], head[19]]),
    };
    class_ok && m == machine
}

/// The Debian multiarch triplet of a machine, for the loader's default
/// directories.
pub fn multiarch(is_64: bool, machine: u16) -> Option<&'static str> {
    use goblin::elf::header::{EM_386, EM_AARCH64, EM_ARM, EM_RISCV, EM_X86_64};
    Some(match (machine, is_64) {
        (EM_X86_64, true) => "x86_64-linux-gnu",
        (EM_AARCH64, true) => "aarch64-linux-gnu",
        (EM_RISCV, true) => "riscv64-linux-gnu",
        (EM_386, false) => "i386-linux-gnu",
        (EM_ARM, false) => "arm-linux-gnueabihf",
        _ => return None,
    })
}

/// The `ipkg.toml` target of a machine.
pub fn target(is_64: bool, machine: u16) -> Option<&'static str> {
    use goblin::elf::header::{EM_386, EM_AARCH64, EM_ARM, EM_RISCV, EM_X86_64};
    Some(match (machine, is_64) {
        (EM_X86_64, true) => "x86_64-linux",
        (EM_AARCH64, true) => "aarch64-linux",
        (EM_RISCV, true) => "riscv64-linux",
        (EM_386, false) => "i686-linux",
        (EM_ARM, false) => "armv7-linux",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_scripts_and_junk() {
        assert!(
            parse(b"#!/bin/sh\necho hi\n")
                .unwrap_err()
                .contains("script")
        );
        assert!(parse(b"MZ\x90\x00").unwrap_err().contains("not an ELF"));
        assert!(parse(b"\x7fELF\x02").is_err());
    }

    #[test]
    fn reads_the_running_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let d = parse(&std::fs::read(&exe).unwrap()).unwrap();
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
        assert!(d.interpreter.is_some());
        assert!(matches(&exe, d.is_64, d.machine));
        assert!(!matches(&exe, d.is_64, d.machine.wrapping_add(1)));
    }
}

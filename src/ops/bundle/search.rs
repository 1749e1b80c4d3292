//! Finding a `DT_NEEDED` library the way the build machine's glibc loader
//! would (ld.so(8), "Rules"): the needing object's `DT_RPATH` (and the
//! executable's) when it has no `DT_RUNPATH`, then its `DT_RUNPATH`, then the
//! loader's cache (`ldconfig -p`), then the default directories. `$ORIGIN` is
//! expanded; entries using `$LIB` or `$PLATFORM` are skipped, and so is
//! `LD_LIBRARY_PATH` (a bundle should not depend on the shell it was made in).
//! Candidates of another ELF class or machine are passed over, as the loader
//! does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::elf;

/// Where the loader looks, beyond an object's own paths.
pub struct Search {
    is_64: bool,
    machine: u16,
    /// `ldconfig -p`: library name → paths, in the cache's order.
    cache: BTreeMap<String, Vec<PathBuf>>,
    defaults: Vec<PathBuf>,
}

/// The object whose `DT_NEEDED` entry is being resolved.
pub struct Needer<'a> {
    pub path: &'a Path,
    pub dynamic: &'a elf::Dynamic,
}

impl Search {
    /// The search for objects of this class and machine on this machine.
    pub fn new(is_64: bool, machine: u16) -> Search {
        let mut defaults = Vec::new();
        if let Some(triplet) = elf::multiarch(is_64, machine) {
            defaults.push(PathBuf::from(format!("/lib/{triplet}")));
            defaults.push(PathBuf::from(format!("/usr/lib/{triplet}")));
        }
        if is_64 {
            defaults.push("/lib64".into());
            defaults.push("/usr/lib64".into());
        }
        defaults.push("/lib".into());
        defaults.push("/usr/lib".into());
        Search {
            is_64,
            machine,
            cache: ld_so_cache(),
            defaults,
        }
    }

    /// Find `name` for `needer` (whose executable is `exe`); `Err` lists the
    /// places looked in.
    pub fn find(
        &self,
        name: &str,
        needer: &Needer<'_>,
        exe: &Needer<'_>,
    ) -> Result<PathBuf, Vec<String>> {
        let mut tried = Vec::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        if needer.dynamic.runpath.is_empty() {
            dirs.extend(expand(&needer.dynamic.rpath, needer.path));
            if exe.path != needer.path && exe.dynamic.runpath.is_empty() {
                dirs.extend(expand(&exe.dynamic.rpath, exe.path));
            }
        }
        dirs.extend(expand(&needer.dynamic.runpath, needer.path));
        for dir in &dirs {
            let p = dir.join(name);
            if elf::matches(&p, self.is_64, self.machine) {
                return Ok(p);
            }
            tried.push(dir.display().to_string());
        }
        for p in self.cache.get(name).into_iter().flatten() {
            if elf::matches(p, self.is_64, self.machine) {
                return Ok(p.clone());
            }
        }
        tried.push("the ld.so cache (`ldconfig -p`)".into());
        for dir in &self.defaults {
            let p = dir.join(name);
            if elf::matches(&p, self.is_64, self.machine) {
                return Ok(p);
            }
            tried.push(dir.display().to_string());
        }
        Err(tried)
    }
}

/// RPATH/RUNPATH entries as directories, `$ORIGIN` replaced by the object's
/// directory.
fn expand(entries: &[String], object: &Path) -> Vec<PathBuf> {
    let origin = object
        .parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned();
    entries
        .iter()
        .map(|e| e.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
        .filter(|e| !e.contains('$') && e.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// The loader's cache as `ldconfig -p` prints it; empty when there is none.
fn ld_so_cache() -> BTreeMap<String, Vec<PathBuf>> {
    let mut cache: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    // Not on an unprivileged user's PATH on Debian.
    for ldconfig in ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"] {
        let Ok(out) = Command::new(ldconfig).arg("-p").output() else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        parse_ldconfig(&String::from_utf8_lossy(&out.stdout), &mut cache);
        break;
    }
    cache
}

/// Lines such as `\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1`.
fn parse_ldconfig(text: &str, cache: &mut BTreeMap<String, Vec<PathBuf>>) {
    for line in text.lines() {
        let Some((left, path)) = line.split_once(" => ") else {
            continue;
        };
        let Some(name) = left.split_whitespace().next() else {
            continue;
        };
        cache
            .entry(name.to_owned())
            .or_default()
            .push(PathBuf::from(path.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldconfig_lines() {
        let mut c = BTreeMap::new();
        parse_ldconfig(
            "1234 libs found in cache `/etc/ld.so.cache'\n\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n\tlibz.so.1 (libc6) => /lib/i386-linux-gnu/libz.so.1\n",
            &mut c,
        );
        assert_eq!(
            c["libz.so.1"],
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib/i386-linux-gnu/libz.so.1")
            ]
        );
    }

    #[test]
    fn origin_is_expanded_and_lib_skipped() {
        let e = expand(
            &[
                "$ORIGIN/../lib".into(),
                "${ORIGIN}/x".into(),
                "/opt/$LIB".into(),
                "rel".into(),
            ],
            Path::new("/opt/app/bin/app"),
        );
        assert_eq!(
            e,
            vec![
                PathBuf::from("/opt/app/bin/../lib"),
                PathBuf::from("/opt/app/bin/x")
            ]
        );
    }
}

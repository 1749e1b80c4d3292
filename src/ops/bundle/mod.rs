//! `ipkg bundle`: turn ordinary dynamically linked programs into an
//! all-in-one package tree that needs nothing from the host but the kernel.
//!
//! Given executables, it follows the ELF `DT_NEEDED` chain of each with the
//! build machine's loader rules ([`search`]), then writes:
//!
//! ```text
//! OUT/ipkg.toml            [package], [commands] and a [bundle] record
//! OUT/bin/NAME             a static launcher (launcher.c), one per command
//! OUT/libexec/NAME         the program
//! OUT/lib/ld-linux….so.2   the loader its PT_INTERP names
//! OUT/lib/SONAME           every library, under the name it is needed by
//! ```
//!
//! The launcher runs `lib/<loader> --inhibit-cache --library-path lib
//! libexec/NAME "$@"`, so `/etc/ld.so.cache` and the host's `/lib` are never
//! read. The manifest's `[bundle]` table names each copied file's source path
//! and, when `dpkg -S` knows it, its Debian package.
//!
//! Refused, naming the file, with nothing written: setuid or setgid programs
//! (a copy would run without the privilege), scripts and non-ELF files,
//! programs of different machines, a library the search cannot find, and
//! libraries needed by absolute path. Everything is resolved before anything
//! is written; the tree is built in a temporary directory beside `OUT` and
//! renamed into place.
//!
//! Not covered (docs/bundle.md): what glibc loads by path at run time
//! (`dlopen` plugins, NSS modules, gconv, locale data), and programs that read
//! `/proc/self/exe` (it names the loader).
//!
//! The launcher is compiled at bundle time with the build machine's C
//! compiler (`$CC`, else `cc`) as a static program.

mod elf;
mod search;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ops::Error;
use crate::trust::manifest::{self, Manifest};

/// What to bundle.
#[derive(Debug, Clone)]
pub struct Request {
    /// The package directory to create (absent or empty).
    pub out: PathBuf,
    /// Command name → the executable it runs.
    pub commands: Vec<(String, PathBuf)>,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub license: Option<String>,
    pub homepage: Option<String>,
}

/// One file copied into the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Its path inside the package.
    pub path: String,
    /// Where it came from.
    pub source: PathBuf,
    pub debian_package: Option<String>,
    pub bytes: u64,
}

/// What [`bundle`] wrote.
#[derive(Debug, Clone)]
pub struct Bundled {
    pub manifest: Manifest,
    pub programs: Vec<Copied>,
    /// The loader first, then the libraries by name.
    pub libraries: Vec<Copied>,
    /// Bytes of all files written, launchers and manifest included.
    pub bytes: u64,
}

/// A program to bundle, parsed.
struct Program {
    command: String,
    source: PathBuf,
    dynamic: elf::Dynamic,
}

/// Make the package tree [`Request::out`] from the request's programs.
pub fn bundle(req: &Request) -> Result<Bundled, Error> {
    manifest::check_package_name(&req.name)
        .map_err(|m| Error::Usage(format!("package name `{}`: {m}", req.name)))?;
    semver::Version::parse(&req.version).map_err(|e| {
        Error::Usage(format!(
            "version `{}` is not a semantic version: {e}",
            req.version
        ))
    })?;
    if req.commands.is_empty() {
        return Err(Error::Usage("give at least one program to bundle".into()));
    }
    check_out(&req.out)?;

    let mut programs = Vec::new();
    let mut seen = BTreeSet::new();
    for (command, exe) in &req.commands {
        manifest::check_command_name(command)
            .map_err(|m| Error::Usage(format!("command name `{command}`: {m}")))?;
        if !seen.insert(command.clone()) {
            return Err(Error::Usage(format!("command `{command}` is given twice")));
        }
        programs.push(read_program(command, exe)?);
    }
    let first = &programs[0].dynamic;
    let (is_64, machine) = (first.is_64, first.machine);
    if let Some(p) = programs
        .iter()
        .find(|p| (p.dynamic.is_64, p.dynamic.machine) != (is_64, machine))
    {
        return Err(cannot(
            &p.source,
            format!(
                "it is for another machine than `{}`",
                programs[0].source.display()
            ),
        ));
    }
    let target = elf::target(is_64, machine).ok_or_else(|| {
        cannot(
            &programs[0].source,
            format!("ELF machine {machine} is not a target ipkg knows"),
        )
    })?;

    // The loader: one for all programs (the bundled libc belongs to it).
    let interps: BTreeSet<&str> = programs
        .iter()
        .filter_map(|p| p.dynamic.interpreter.as_deref())
        .collect();
    if interps.len() > 1 {
        return Err(Error::Usage(format!(
            "the programs ask for different loaders ({}); bundle them separately",
            interps.iter().copied().collect::<Vec<_>>().join(", ")
        )));
    }
    let interp = interps.into_iter().next().map(PathBuf::from);
    let libs = match &interp {
        Some(interp) => resolve_libraries(&programs, interp, is_64, machine)?,
        None => BTreeMap::new(),
    };

    let launcher = match &interp {
        Some(interp) => Some(build_launcher(interp)?),
        None => None,
    };

    // Origins, in one `dpkg -S` call.
    let mut sources: Vec<&Path> = programs.iter().map(|p| p.source.as_path()).collect();
    sources.extend(libs.values().map(PathBuf::as_path));
    sources.extend(interp.as_deref());
    let owners = debian_owners(&sources);

    // Write into a temporary directory beside OUT, then rename.
    let parent = req
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".ipkg-bundle-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let root = tmp.path();
    let mut bytes = 0u64;
    let mut copied_programs = Vec::new();
    let mut copied_libs = Vec::new();
    let mut commands = BTreeMap::new();
    for dir in ["bin", "libexec", "lib"] {
        fs::create_dir(root.join(dir)).map_err(|e| Error::io(root.join(dir), e))?;
    }
    let loader_path = interp.as_ref().map(|i| {
        format!(
            "lib/{}",
            i.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    });
    for p in &programs {
        // A static program needs no loader: it is the command itself.
        let dynamic = p.dynamic.interpreter.is_some();
        let path = if dynamic {
            format!("libexec/{}", p.command)
        } else {
            format!("bin/{}", p.command)
        };
        let n = copy(&p.source, &root.join(&path), 0o755)?;
        bytes += n;
        copied_programs.push(Copied {
            path: path.clone(),
            source: p.source.clone(),
            debian_package: owners.get(&p.source).cloned(),
            bytes: n,
        });
        let cmd_path = format!("bin/{}", p.command);
        if let Some(l) = launcher.as_ref().filter(|_| dynamic) {
            let dest = root.join(&cmd_path);
            fs::write(&dest, l).map_err(|e| Error::io(&dest, e))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(&dest, e))?;
            bytes += l.len() as u64;
        }
        commands.insert(p.command.clone(), cmd_path);
    }
    if let (Some(interp), Some(path)) = (&interp, &loader_path) {
        let n = copy(interp, &root.join(path), 0o755)?;
        bytes += n;
        copied_libs.push(Copied {
            path: path.clone(),
            source: interp.clone(),
            debian_package: owners.get(interp).cloned(),
            bytes: n,
        });
    }
    for (name, source) in &libs {
        let path = format!("lib/{name}");
        let n = copy(source, &root.join(&path), 0o644)?;
        bytes += n;
        copied_libs.push(Copied {
            path,
            source: source.clone(),
            debian_package: owners.get(source).cloned(),
            bytes: n,
        });
    }

    let text = manifest_text(
        req,
        target,
        &commands,
        loader_path.as_deref(),
        &copied_programs,
        &copied_libs,
    );
    let manifest_file = root.join("ipkg.toml");
    let m = Manifest::parse(&text, &manifest_file)?;
    let mut f = fs::File::create(&manifest_file).map_err(|e| Error::io(&manifest_file, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&manifest_file, e))?;
    bytes += text.len() as u64;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(root, e))?;

    let tmp = tmp.keep();
    // rename(2) replaces an empty directory; check_out allowed only that.
    if let Err(e) = fs::rename(&tmp, &req.out) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(Error::io(&req.out, e));
    }
    Ok(Bundled {
        manifest: m,
        programs: copied_programs,
        libraries: copied_libs,
        bytes,
    })
}

fn cannot(path: &Path, reason: impl Into<String>) -> Error {
    Error::CannotBundle {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// OUT must be absent or an empty directory.
fn check_out(out: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(out, e)),
        Ok(m) if m.is_dir() => {
            let mut entries = fs::read_dir(out).map_err(|e| Error::io(out, e))?;
            if entries.next().is_some() {
                Err(Error::DestExists {
                    path: out.to_path_buf(),
                })
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(Error::DestExists {
            path: out.to_path_buf(),
        }),
    }
}

fn read_program(command: &str, exe: &Path) -> Result<Program, Error> {
    // A bare name is looked up on PATH, as a shell would.
    let exe = if exe.components().count() == 1 && !exe.exists() {
        which::which(exe).map_err(|_| cannot(exe, "no such program on `PATH`"))?
    } else {
        exe.to_path_buf()
    };
    let meta = fs::metadata(&exe).map_err(|e| Error::io(&exe, e))?;
    if !meta.is_file() {
        return Err(cannot(&exe, "it is not a regular file"));
    }
    if meta.mode() & 0o4000 != 0 {
        return Err(cannot(
            &exe,
            "it is setuid: a bundled copy would run without its privilege",
        ));
    }
    if meta.mode() & 0o2000 != 0 {
        return Err(cannot(
            &exe,
            "it is setgid: a bundled copy would run without its privilege",
        ));
    }
    let bytes = fs::read(&exe).map_err(|e| Error::io(&exe, e))?;
    let dynamic = elf::parse(&bytes).map_err(|r| cannot(&exe, r))?;
    Ok(Program {
        command: command.to_owned(),
        source: exe,
        dynamic,
    })
}

/// Every library the programs load, by the name they are needed by, breadth
/// first as the loader loads them; the loader itself is left out.
fn resolve_libraries(
    programs: &[Program],
    interp: &Path,
    is_64: bool,
    machine: u16,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let search = search::Search::new(is_64, machine);
    let interp_real = fs::canonicalize(interp).map_err(|e| Error::io(interp, e))?;
    let interp_name = interp.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut parsed: BTreeMap<PathBuf, elf::Dynamic> = BTreeMap::new();
    for p in programs {
        let exe = search::Needer {
            path: &p.source,
            dynamic: &p.dynamic,
        };
        let mut queue: VecDeque<(PathBuf, elf::Dynamic)> = VecDeque::new();
        queue.push_back((p.source.clone(), p.dynamic.clone()));
        while let Some((path, dynamic)) = queue.pop_front() {
            for name in &dynamic.needed {
                if name.contains('/') {
                    return Err(cannot(
                        &path,
                        format!("it needs `{name}` by path, which cannot be relocated"),
                    ));
                }
                if found.contains_key(name) || Some(name) == interp_name.as_ref() {
                    continue;
                }
                let needer = search::Needer {
                    path: &path,
                    dynamic: &dynamic,
                };
                let lib =
                    search
                        .find(name, &needer, &exe)
                        .map_err(|searched| Error::MissingLibrary {
                            library: name.clone(),
                            needed_by: path.clone(),
                            searched,
                        })?;
                let real = fs::canonicalize(&lib).map_err(|e| Error::io(&lib, e))?;
                if real == interp_real {
                    continue;
                }
                let d = match parsed.get(&real) {
                    Some(d) => d.clone(),
                    None => {
                        let bytes = fs::read(&real).map_err(|e| Error::io(&real, e))?;
                        let d = elf::parse(&bytes).map_err(|r| cannot(&lib, r))?;
                        parsed.insert(real.clone(), d.clone());
                        d
                    }
                };
                found.insert(name.clone(), lib.clone());
                queue.push_back((lib, d));
            }
        }
    }
    Ok(found)
}

/// Compile the static launcher for this loader; its bytes.
fn build_launcher(interp: &Path) -> Result<Vec<u8>, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let src = dir.path().join("launcher.c");
    let out = dir.path().join("launcher");
    fs::write(&src, include_str!("launcher.c")).map_err(|e| Error::io(&src, e))?;
    let name = interp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg(format!(
            "-DIPKG_LOADER=\"lib/{}\"",
            name.replace(['"', '\\'], "")
        ));
    // `--argv0` (glibc 2.33) lets the program see the command's name.
    let help = Command::new(interp).arg("--help").output();
    if help.is_ok_and(|h| String::from_utf8_lossy(&h.stdout).contains("--argv0")) {
        cmd.arg("-DIPKG_ARGV0");
    }
    cmd.arg(&src);
    let result = cmd.output().map_err(|e| Error::Refused {
        message: format!(
            "cannot run the C compiler `{}` to build the static launcher: {e} (install gcc and libc6-dev, or set `CC`)",
            Path::new(&cc).display()
        ),
    })?;
    if !result.status.success() {
        return Err(Error::Refused {
            message: format!(
                "the C compiler `{}` could not build the static launcher (a static libc, e.g. libc6-dev, is needed):\n{}",
                Path::new(&cc).display(),
                String::from_utf8_lossy(&result.stderr).trim()
            ),
        });
    }
    fs::read(&out).map_err(|e| Error::io(&out, e))
}

/// Copy `from` (following symlinks) to `to` with `mode`; the bytes copied.
fn copy(from: &Path, to: &Path, mode: u32) -> Result<u64, Error> {
    let n = fs::copy(from, to).map_err(|e| Error::io(from, e))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(to, e))?;
    Ok(n)
}

/// `dpkg -S` for each path (also under its other spelling across the /usr
/// merge, and its canonical path); empty without dpkg.
fn debian_owners(paths: &[&Path]) -> BTreeMap<PathBuf, String> {
    let mut candidates: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for p in paths {
        let mut c = vec![p.to_string_lossy().into_owned()];
        if let Ok(real) = fs::canonicalize(p) {
            c.push(real.to_string_lossy().into_owned());
        }
        for s in c.clone() {
            if let Some(rest) = s.strip_prefix("/usr/") {
                c.push(format!("/{rest}"));
            } else {
                c.push(format!("/usr{s}"));
            }
        }
        c.dedup();
        candidates.insert(p.to_path_buf(), c);
    }
    let all: BTreeSet<&String> = candidates.values().flatten().collect();
    let Ok(out) = Command::new("dpkg").arg("-S").args(all).output() else {
        return BTreeMap::new();
    };
    let mut owner_of: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with("diversion ") {
            continue;
        }
        if let Some((pkgs, path)) = line.split_once(": ") {
            owner_of.insert(path.to_owned(), pkgs.to_owned());
        }
    }
    candidates
        .into_iter()
        .filter_map(|(p, c)| {
            c.iter()
                .find_map(|s| owner_of.get(s))
                .map(|o| (p, o.clone()))
        })
        .collect()
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be.
fn k(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_owned()
    } else {
        q(s)
    }
}

fn manifest_text(
    req: &Request,
    target: &str,
    commands: &BTreeMap<String, String>,
    loader: Option<&str>,
    programs: &[Copied],
    libraries: &[Copied],
) -> String {
    let mut t = String::from("# Written by `ipkg bundle`.\n[package]\n");
    t += &format!("name = {}\nversion = {}\n", q(&req.name), q(&req.version));
    for (key, value) in [
        ("description", &req.description),
        ("license", &req.license),
        ("homepage", &req.homepage),
    ] {
        if let Some(v) = value {
            t += &format!("{key} = {}\n", q(v));
        }
    }
    t += &format!("targets = [{}]\n\n[commands]\n", q(target));
    for (c, p) in commands {
        t += &format!("{} = {}\n", k(c), q(p));
    }
    let Some(loader) = loader else {
        return t;
    };
    let entry = |c: &Copied| {
        let mut e = format!(
            "{} = {{ source = {}",
            q(&c.path),
            q(&c.source.to_string_lossy())
        );
        if let Some(d) = &c.debian_package {
            e += &format!(", debian-package = {}", q(d));
        }
        e + " }\n"
    };
    t += &format!("\n[bundle]\nloader = {}\n\n[bundle.programs]\n", q(loader));
    for c in programs {
        t += &entry(c);
    }
    t += "\n[bundle.libraries]\n";
    for c in libraries {
        t += &entry(c);
    }
    t
}

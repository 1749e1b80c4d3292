//! `ipkg pack` and `ipkg init`: turn a package directory into its CID.
//!
//! Packing reads `DIR/ipkg.toml`, checks the tree against it (through
//! [`collect_tree`], a [`TreeView`] collected from disk first so that I/O errors are
//! reported with their path, not as a missing entry), then imports the tree
//! with the `unixfs-v1-2025` profile and normalised modes
//! ([`ModePolicy::Normalised`]).
//!
//! What is packed: everything under `DIR`, hidden names included, except
//! entries named `.git` at any depth. The same tree always gives the same CID;
//! `docs/pack.md` gives the Kubo command that reproduces it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::content::BlockSink;
use crate::content::cid::Cid;
use crate::content::profile::Profile;
use crate::trust::manifest::{EntryKind, Manifest, MemTree, TreeSummary, check_command_name};

use super::{Error, Progress};
use crate::ops::content::add::{AddOptions, ModePolicy, add_path};

/// The manifest's file name at the root of a package.
pub const MANIFEST: &str = "ipkg.toml";

/// Names `ipkg pack` leaves out wherever they appear.
pub const SKIPPED: &[&str] = &[".git"];

/// The import settings of a package: `unixfs-v1-2025` with hidden files.
pub fn pack_options() -> AddOptions {
    AddOptions {
        profile: Profile {
            hidden: true,
            ..Profile::v1_2025()
        },
        modes: ModePolicy::Normalised,
        skip_names: SKIPPED,
    }
}

/// Collect a package directory into memory (skipping [`SKIPPED`]) so that the
/// manifest can be checked against it; the first I/O error names its path.
pub fn collect_tree(root: &Path) -> Result<MemTree, Error> {
    let mut tree = MemTree::new();
    walk(&mut tree, root, "")?;
    Ok(tree)
}

fn walk(tree: &mut MemTree, dir: &Path, rel: &str) -> Result<(), Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        names.push(entry.map_err(|e| Error::io(dir, e))?.file_name());
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name = name.to_str().ok_or_else(|| Error::Unsafe {
            path: path.display().to_string(),
            reason: "the file name is not valid UTF-8".into(),
        })?;
        if SKIPPED.contains(&name) {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
            let target = target.to_str().ok_or_else(|| Error::Unsafe {
                path: path.display().to_string(),
                reason: "the symlink target is not valid UTF-8".into(),
            })?;
            EntryKind::Symlink {
                target: target.to_owned(),
            }
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File {
                executable: meta.permissions().mode() & 0o100 != 0,
                size: meta.len(),
            }
        } else {
            let kind = if ft.is_fifo() {
                "named pipe"
            } else if ft.is_socket() {
                "socket"
            } else {
                "device"
            };
            return Err(Error::UnsupportedFileType { path, kind });
        };
        let is_dir = kind == EntryKind::Dir;
        tree.insert(&child, kind);
        if is_dir {
            walk(tree, &path, &child)?;
        }
    }
    Ok(())
}

/// Read and parse `DIR/ipkg.toml`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoManifest { path });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    Ok(Manifest::parse(&text, &path)?)
}

/// A packed package.
#[derive(Debug, Clone)]
pub struct Packed {
    pub manifest: Manifest,
    pub cid: Cid,
    pub summary: TreeSummary,
}

/// Check `dir` against its manifest and import it into `sink`.
pub fn pack(
    dir: &Path,
    sink: &mut dyn BlockSink,
    progress: &dyn Progress,
) -> Result<Packed, Error> {
    let manifest = read_manifest(dir)?;
    let meta = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "`{}` is not a directory: `ipkg pack` takes a package directory",
            dir.display()
        )));
    }
    let tree = collect_tree(dir)?;
    let summary = manifest.validate_tree(&tree, &dir.join(MANIFEST))?;
    progress.start("Packing", Some(summary.total_bytes));
    let imported = add_path(dir, &pack_options(), sink, progress)?;
    progress.finish();
    Ok(Packed {
        manifest,
        cid: imported.cid,
        summary,
    })
}

/// Options for `ipkg init`.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// What `ipkg init` wrote.
#[derive(Debug, Clone)]
pub struct Scaffold {
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// Write a starting `ipkg.toml` in `dir` (never replacing one), with commands
/// for the executables in `dir/bin` and targets guessed from their ELF headers.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<Scaffold, Error> {
    let path = dir.join(MANIFEST);
    if path.symlink_metadata().is_ok() {
        return Err(Error::DestExists { path });
    }
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => guess_name(dir),
    };
    let version = opts.version.clone().unwrap_or_else(|| "0.1.0".into());
    let mut commands = Vec::new();
    let mut targets = std::collections::BTreeSet::new();
    let bin = dir.join("bin");
    if let Ok(entries) = fs::read_dir(&bin) {
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for file in names {
            let Some(cmd) = file.to_str() else { continue };
            let p = bin.join(cmd);
            // Follows symlinks: a link to an executable is a command too.
            let Ok(meta) = fs::metadata(&p) else { continue };
            if !meta.is_file()
                || meta.permissions().mode() & 0o111 == 0
                || check_command_name(cmd).is_err()
            {
                continue;
            }
            commands.push(cmd.to_owned());
            if let Some(t) = elf_target(&p) {
                targets.insert(t);
            }
        }
    }
    let targets: Vec<&str> = if targets.is_empty() {
        vec!["any"]
    } else {
        targets.into_iter().collect()
    };
    let mut text = String::new();
    text.push_str("[package]\n");
    text.push_str(&format!("name = {}\n", toml_str(&name)));
    text.push_str(&format!("version = {}\n", toml_str(&version)));
    text.push_str("# description = \"One line about the program\"\n");
    text.push_str("# license = \"MIT\"\n");
    text.push_str(&format!(
        "targets = [{}]\n",
        targets
            .iter()
            .map(|t| toml_str(t))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    text.push_str("\n[commands]\n");
    if commands.is_empty() {
        text.push_str("# name = \"bin/program\"\n");
    }
    for c in &commands {
        text.push_str(&format!(
            "{} = {}\n",
            toml_key(c),
            toml_str(&format!("bin/{c}"))
        ));
    }
    // Check what we are about to write parses, so `init` never leaves a
    // manifest that `pack` refuses for its syntax.
    let manifest = Manifest::parse(&text, &path)?;
    super::keystore::write_private_new(&path, text.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::DestExists { path: path.clone() }
        } else {
            Error::io(&path, e)
        }
    })?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io(&path, e))?;
    Ok(Scaffold { path, manifest })
}

/// The directory's name, lowercased, with anything else turned into `-`.
fn guess_name(dir: &Path) -> String {
    let base = fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_matches('-').to_owned();
    name.truncate(64);
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "package".into()
    } else {
        name
    }
}

/// The target of an ELF executable for Linux, from its `e_machine`.
fn elf_target(path: &Path) -> Option<&'static str> {
    use std::io::Read;
    let mut head = [0u8; 20];
    fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    let machine = match head[5] {
        1 => u16::from_le_bytes([head[18], head[19]]),
        _ => u16::from_be_bytes([head[18], head[19]]),
    };
    Some(match machine {
        0x3e => "x86_64-linux",
        0xb7 => "aarch64-linux",
        0x28 => "armv7-linux",
        0xf3 => "riscv64-linux",
        0x03 => "i686-linux",
        _ => return None,
    })
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_key(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        s.to_owned()
    } else {
        toml_str(s)
    }
}

//! `ipkg verify`: check installed packages against their CIDs.
//!
//! The package DAG is read from the block store (every block is re-hashed
//! against its CID on the way) and compared, entry by entry, with the
//! unpacked tree on disk: each file's bytes and executable bit, each
//! symlink's target, and any file on disk that the DAG does not have. The
//! links (`<prefix>/<name>` and the commands in the bin dir) are checked too.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use crate::content::BlockGet;

use super::install::Session;
use super::installed::{self, Receipt};
use super::unpack::{self, Entry, same_bytes};
use super::{Error, Layout, Ui, journal};

/// One thing that is not as installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A path inside the package, or a link.
    pub path: String,
    /// `changed`, `missing`, `extra`, `mode` or `link`.
    pub kind: &'static str,
    pub detail: String,
}

/// The result for one package.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub name: String,
    pub version: String,
    pub cid: String,
    pub files: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
}

/// Verify `names` (every installed package when empty).
pub fn verify(layout: &Layout, names: &[String], ui: &dyn Ui) -> Result<Vec<Verified>, Error> {
    let session = Session::open(layout, ui)?;
    let receipts = installed::load_named(layout, names)?;
    let mut out = Vec::new();
    for r in receipts {
        out.push(verify_one(layout, &session.store, &r)?);
    }
    Ok(out)
}

fn verify_one(layout: &Layout, store: &dyn BlockGet, r: &Receipt) -> Result<Verified, Error> {
    let cur = r.current()?;
    let cid = cur.package_cid()?;
    let mut v = Verified {
        name: r.name.clone(),
        version: cur.version.to_string(),
        cid: cur.package.clone(),
        files: 0,
        bytes: 0,
        problems: Vec::new(),
    };
    let mut problem = |path: String, kind: &'static str, detail: String| {
        v.problems.push(Problem { path, kind, detail });
    };
    match journal::current_link(layout, &r.name) {
        Ok(Some(c)) if c == cur.package => {}
        Ok(other) => problem(
            layout.package_link(&r.name).display().to_string(),
            "link",
            format!(
                "points at {}, the receipt says {}",
                other.as_deref().unwrap_or("nothing"),
                cur.package
            ),
        ),
        Err(e) => problem(
            layout.package_link(&r.name).display().to_string(),
            "link",
            e.to_string(),
        ),
    }
    for (c, path) in &cur.commands {
        let link = layout.bin_dir.join(c);
        let want = layout.package_link(&r.name).join(path);
        match fs::read_link(&link) {
            Ok(t) if t == want => {}
            Ok(t) => problem(
                link.display().to_string(),
                "link",
                format!("points at `{}`, not `{}`", t.display(), want.display()),
            ),
            Err(_) => problem(
                link.display().to_string(),
                "link",
                "the command link is missing".into(),
            ),
        }
    }
    let scanned = unpack::scan(store, &cid)?;
    let tree = layout.package_tree(&cid);
    let mut expected = BTreeSet::new();
    for e in &scanned.entries {
        expected.insert(e.path.clone());
        let (kind, detail) = check_entry(store, &tree, e);
        if let Some(kind) = kind {
            problem(e.path.clone(), kind, detail);
        } else if e.kind.is_file() {
            v.files += 1;
            v.bytes += e.size;
        }
    }
    let mut on_disk = Vec::new();
    walk(&tree, "", &mut on_disk);
    for p in on_disk {
        if !expected.contains(&p) {
            problem(p, "extra", "not in the package".into());
        }
    }
    Ok(v)
}

/// Compare one entry with the disk: `(Some(kind), detail)` when it differs.
fn check_entry(store: &dyn BlockGet, tree: &Path, e: &Entry) -> (Option<&'static str>, String) {
    let path = tree.join(&e.path);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(_) => return (Some("missing"), "not on disk".into()),
    };
    if e.kind.is_dir() {
        if !meta.is_dir() {
            return (Some("changed"), "should be a directory".into());
        }
        return (None, String::new());
    }
    if let Some(target) = &e.target {
        return match fs::read_link(&path) {
            Ok(t) if t == Path::new(target) => (None, String::new()),
            Ok(t) => (
                Some("changed"),
                format!("points at `{}`, not `{target}`", t.display()),
            ),
            Err(_) => (Some("changed"), "should be a symlink".into()),
        };
    }
    if !meta.is_file() {
        return (Some("changed"), "should be a file".into());
    }
    if meta.len() != e.size {
        return (
            Some("changed"),
            format!("{} bytes, the package has {}", meta.len(), e.size),
        );
    }
    let exec = meta.permissions().mode() & 0o111 != 0;
    if exec != e.executable {
        return (
            Some("mode"),
            format!(
                "{} executable, the package says it {}",
                if exec { "is" } else { "is not" },
                if e.executable { "is" } else { "is not" }
            ),
        );
    }
    match same_bytes(store, e, &path) {
        Ok(true) => (None, String::new()),
        Ok(false) => (Some("changed"), "its bytes differ from the package".into()),
        Err(err) => (Some("changed"), format!("cannot compare: {err}")),
    }
}

/// Every path under `dir`, relative, `/`-separated.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        out.push(path.clone());
        if is_dir {
            walk(&entry.path(), &path, out);
        }
    }
}

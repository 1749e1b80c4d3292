//! What is installed: one receipt per package under
//! `<prefix>/.ipkg/state/packages/<name>.json`.
//!
//! A receipt lists every version of the package kept on disk (by package
//! CID), which one is current, the one before it (for `rollback`), the
//! publisher key pinned on first install, and the package's history. The
//! link `<prefix>/<name>` is the truth about which version runs; the receipt
//! is rewritten (atomically) right after the link flips, inside the same
//! journaled transaction, so the two never disagree once a command ends.
//!
//! A receipt that does not parse is damaged (a disk that lost a write, a hand
//! edit). It is an error for a command that changes that package; readers
//! (`list`, `info`, `verify`, and the writers' view of *other* packages) see
//! the receipt [`rebuild`] makes from what is still there (the
//! `<prefix>/<name>` link, the `installed/NAME@VERSION` pins and the unpacked
//! trees' manifests), which is what `ipkg doctor` writes in its place.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::content::Cid;
use crate::content::cid::parse;

use super::{Error, Layout};
use crate::ops::pins::write_atomic;

/// One installed version of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledVersion {
    pub version: semver::Version,
    /// The package tree's CID.
    pub package: String,
    /// The signed release statement it was installed from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The registry that vouched for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The key that signed the release, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Unix seconds.
    pub installed_at: i64,
    /// Command name → path inside the package.
    pub commands: BTreeMap<String, String>,
    /// Package name → version requirement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, String>,
}

impl InstalledVersion {
    pub fn package_cid(&self) -> Result<Cid, Error> {
        parse(&self.package).map_err(|e| Error::Usage(format!("bad CID in a receipt: {e}")))
    }
}

/// One line of `ipkg history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// Unix seconds.
    pub time: i64,
    /// `install`, `upgrade`, `switch`, `rollback` or `remove`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The package CID switched to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

/// Everything ipkg remembers about one installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub name: String,
    /// The package CID `<prefix>/<name>` points at.
    pub current: String,
    /// The version before the last change, for `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The publisher key pinned for this name (trust on first use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Whether the user asked for it (not only pulled in as a dependency).
    pub explicit: bool,
    /// The requirement the user installed it with (`=1.2.3`, `^1.2`);
    /// `upgrade` stays within it. None: any version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// `ipkg hold NAME`: `upgrade` leaves it where it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// Every version on disk, by package CID.
    pub versions: BTreeMap<String, InstalledVersion>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Receipt {
    /// The current version.
    pub fn current(&self) -> Result<&InstalledVersion, Error> {
        self.versions.get(&self.current).ok_or_else(|| {
            Error::Usage(format!(
                "the receipt of `{}` names a current version it does not list; run `ipkg doctor`",
                self.name
            ))
        })
    }

    /// The installed version with this version number, if any.
    pub fn find_version(&self, version: &semver::Version) -> Option<&InstalledVersion> {
        self.versions.values().find(|v| &v.version == version)
    }
}

fn receipts_dir(layout: &Layout) -> PathBuf {
    layout.state_dir().join("packages")
}

fn receipt_path(layout: &Layout, name: &str) -> PathBuf {
    receipts_dir(layout).join(format!("{name}.json"))
}

/// The receipt of `name`, if it is installed.
pub fn load(layout: &Layout, name: &str) -> Result<Option<Receipt>, Error> {
    let path = receipt_path(layout, name);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| damaged(name, &path, e.to_string()))
}

fn damaged(name: &str, path: &std::path::Path, reason: String) -> Error {
    Error::Damaged {
        what: format!("the receipt of package `{name}`"),
        path: path.to_path_buf(),
        reason,
        fix: "run `ipkg doctor`: it rebuilds the receipt from the installed files and moves the damaged one to `.ipkg/quarantine/`".into(),
    }
}

/// The receipt of `name` as a reader sees it: the one on disk, or, when that
/// is damaged, the one [`rebuild`] makes (flagged `true`).
pub fn load_or_rebuild(layout: &Layout, name: &str) -> Result<Option<(Receipt, bool)>, Error> {
    match load(layout, name) {
        Ok(r) => Ok(r.map(|r| (r, false))),
        Err(e @ Error::Damaged { .. }) => match rebuild(layout, name) {
            Ok(r) => Ok(Some((r, true))),
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Make a receipt for `name` from what is installed: the version
/// `<prefix>/<name>` points at is current; every other version pinned as
/// `installed/NAME@VERSION` whose tree is unpacked is kept. What only the
/// receipt knew (the pinned publisher key, the history, the release each
/// version came from) is lost; the history says the receipt was rebuilt.
pub fn rebuild(layout: &Layout, name: &str) -> Result<Receipt, Error> {
    let current = super::journal::current_link(layout, name)?.ok_or_else(|| {
        Error::Usage(format!(
            "cannot rebuild the receipt of `{name}`: `{}` does not exist",
            layout.package_link(name).display()
        ))
    })?;
    let mut cids = vec![current.clone()];
    // Label -> CIDs: a version's pins are its tree and its release statement.
    let mut labelled: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Ok(pins) = crate::ops::pins::Pins::open(layout.pins_dir()) {
        let prefix = format!("installed/{name}@");
        for (cid, labels) in pins.list().unwrap_or_default() {
            for l in labels.iter().filter(|l| l.starts_with(&prefix)) {
                cids.push(cid.to_string());
                labelled.entry(l.clone()).or_default().push(cid.to_string());
            }
        }
    }
    let now = crate::ops::publish::now();
    let mut versions = BTreeMap::new();
    for cid in cids {
        let Ok(parsed) = parse(&cid) else { continue };
        let file = layout.package_tree(&parsed).join("ipkg.toml");
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let Ok(m) = crate::trust::manifest::Manifest::parse(&text, &file) else {
            continue;
        };
        if m.package.name != name || versions.contains_key(&cid) {
            continue;
        }
        let label = super::install::pin_label(name, &m.package.version);
        let release = labelled
            .get(&label)
            .and_then(|c| c.iter().find(|c| **c != cid).cloned());
        versions.insert(
            cid.clone(),
            InstalledVersion {
                version: m.package.version.clone(),
                package: cid,
                release,
                registry: None,
                publisher: None,
                installed_at: now,
                commands: m.commands.clone(),
                dependencies: m
                    .dependencies
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
            },
        );
    }
    if !versions.contains_key(&current) {
        return Err(Error::Usage(format!(
            "cannot rebuild the receipt of `{name}`: the tree `{current}` that `{}` points at has no readable manifest",
            layout.package_link(name).display()
        )));
    }
    Ok(Receipt {
        name: name.to_owned(),
        current: current.clone(),
        previous: None,
        publisher: None,
        explicit: true,
        requirement: None,
        held: false,
        versions,
        history: vec![HistoryEntry {
            time: now,
            action: "repair".into(),
            from: None,
            to: None,
            cid: Some(current),
        }],
    })
}

/// The path of `name`'s receipt.
pub fn receipt_file(layout: &Layout, name: &str) -> PathBuf {
    receipt_path(layout, name)
}

/// Every damaged receipt: the package name and the error.
pub fn damaged_receipts(layout: &Layout) -> Vec<(String, Error)> {
    let mut out = Vec::new();
    for name in receipt_names(layout) {
        if let Err(e @ Error::Damaged { .. }) = load(layout, &name) {
            out.push((name, e));
        }
    }
    out
}

fn receipt_names(layout: &Layout) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(receipts_dir(layout))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name();
            let name = file.to_str()?.strip_suffix(".json")?.to_owned();
            crate::trust::manifest::check_package_name(&name)
                .is_ok()
                .then_some(name)
        })
        .collect();
    out.sort();
    out
}

/// Write (or, with `None`, delete) the receipt of `name`, atomically.
pub fn store(layout: &Layout, name: &str, receipt: Option<&Receipt>) -> Result<(), Error> {
    let path = receipt_path(layout, name);
    match receipt {
        Some(r) => {
            let dir = receipts_dir(layout);
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let text = serde_json::to_vec_pretty(r).map_err(|e| Error::Usage(e.to_string()))?;
            write_atomic(&path, &text).map_err(|e| Error::io(&path, e))
        }
        None => match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        },
    }
}

/// Every receipt, by package name, as a reader sees it: a damaged receipt is
/// replaced by the one [`rebuild`] makes, or left out when nothing can be
/// rebuilt (see [`damaged_receipts`] to tell the user).
pub fn list(layout: &Layout) -> Result<Vec<Receipt>, Error> {
    let dir = receipts_dir(layout);
    if let Err(e) = fs::read_dir(&dir) {
        return if e.kind() == std::io::ErrorKind::NotFound {
            Ok(Vec::new())
        } else {
            Err(Error::io(&dir, e))
        };
    }
    let mut out = Vec::new();
    for name in receipt_names(layout) {
        match load_or_rebuild(layout, &name) {
            Ok(Some((r, _))) => out.push(r),
            Ok(None) | Err(Error::Damaged { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The receipts of `names`, each of which must be installed; every receipt
/// when `names` is empty.
pub fn load_named(layout: &Layout, names: &[String]) -> Result<Vec<Receipt>, Error> {
    if names.is_empty() {
        return list(layout);
    }
    names
        .iter()
        .map(|n| {
            load_or_rebuild(layout, n)?
                .map(|(r, _)| r)
                .ok_or_else(|| Error::NotInstalled { name: n.clone() })
        })
        .collect()
}

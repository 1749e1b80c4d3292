//! What is installed: one receipt per package under
//! `<prefix>/.ipkg/state/packages/<name>.json`.
//!
//! A receipt lists every version of the package kept on disk (by package
//! CID), which one is current, the one before it (for `rollback`), the
//! publisher key pinned on first install, and the package's history. The
//! link `<prefix>/<name>` is the truth about which version runs; the receipt
//! is rewritten (atomically) right after the link flips, inside the same
//! journaled transaction, so the two never disagree once a command ends.

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
        .map_err(|e| Error::Config {
            path,
            message: e.to_string(),
        })
}

/// Write (or, with `None`, delete) the receipt of `name`, atomically.
pub fn store(layout: &Layout, name: &str, receipt: Option<&Receipt>) -> Result<(), Error> {
    let path = receipt_path(layout, name);
    match receipt {
        Some(r) => {
            let dir = receipts_dir(layout);
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let text = serde_json::to_vec_pretty(r).map_err(|e| Error::Config {
                path: path.clone(),
                message: e.to_string(),
            })?;
            write_atomic(&path, &text).map_err(|e| Error::io(&path, e))
        }
        None => match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        },
    }
}

/// Every receipt, by package name.
pub fn list(layout: &Layout) -> Result<Vec<Receipt>, Error> {
    let dir = receipts_dir(layout);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if crate::trust::manifest::check_package_name(name).is_err() {
            continue;
        }
        if let Some(r) = load(layout, name)? {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
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
        .map(|n| load(layout, n)?.ok_or_else(|| Error::NotInstalled { name: n.clone() }))
        .collect()
}

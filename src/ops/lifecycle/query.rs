//! Read-only questions about what is installed: `list`, `info`, `history`
//! and `which`. Each takes the prefix lock shared, so it never sees a link
//! and a receipt from two different moments.

use std::path::PathBuf;

use serde::Serialize;

use super::install::read_installed_manifest;
use super::installed::{self, HistoryEntry, Receipt};
use super::lock::PrefixLock;
use super::{Error, Layout};
use crate::ops::resolve;

/// One row of `ipkg list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub name: String,
    pub version: String,
    pub cid: String,
    pub registry: Option<String>,
    pub explicit: bool,
    /// Every version on disk, current included, lowest first.
    pub versions: Vec<String>,
    pub commands: Vec<String>,
}

/// Every installed package.
pub fn list(layout: &Layout) -> Result<Vec<Listed>, Error> {
    let _lock = PrefixLock::shared(layout)?;
    let mut out = Vec::new();
    for r in installed::list(layout)? {
        let cur = r.current()?;
        let mut versions: Vec<&semver::Version> = r.versions.values().map(|v| &v.version).collect();
        versions.sort();
        out.push(Listed {
            name: r.name.clone(),
            version: cur.version.to_string(),
            cid: cur.package.clone(),
            registry: cur.registry.clone(),
            explicit: r.explicit,
            versions: versions.iter().map(|v| v.to_string()).collect(),
            commands: cur.commands.keys().cloned().collect(),
        });
    }
    Ok(out)
}

/// What `ipkg info` shows about an installed package.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub license: Option<String>,
    pub homepage: Option<String>,
    pub cid: String,
    pub release: Option<String>,
    pub registry: Option<String>,
    pub publisher: Option<String>,
    pub installed_at: i64,
    /// `<prefix>/<name>`.
    pub path: PathBuf,
    /// Command → the link in the bin dir.
    pub commands: Vec<(String, PathBuf)>,
    pub dependencies: Vec<(String, String)>,
    pub versions: Vec<String>,
    pub previous: Option<String>,
    pub state_dir: PathBuf,
}

/// `ipkg info NAME`.
pub fn info(layout: &Layout, name: &str) -> Result<Info, Error> {
    let _lock = PrefixLock::shared(layout)?;
    let r = load(layout, name)?;
    let cur = r.current()?;
    let manifest = read_installed_manifest(&layout.package_tree(&cur.package_cid()?)).ok();
    let pkg = manifest.as_ref().map(|m| &m.package);
    let mut versions: Vec<&semver::Version> = r.versions.values().map(|v| &v.version).collect();
    versions.sort();
    Ok(Info {
        name: r.name.clone(),
        version: cur.version.to_string(),
        description: pkg.and_then(|p| p.description.clone()),
        license: pkg.and_then(|p| p.license.clone()),
        homepage: pkg.and_then(|p| p.homepage.clone()),
        cid: cur.package.clone(),
        release: cur.release.clone(),
        registry: cur.registry.clone(),
        publisher: r.publisher.clone(),
        installed_at: cur.installed_at,
        path: layout.package_link(name),
        commands: cur
            .commands
            .keys()
            .map(|c| (c.clone(), layout.bin_dir.join(c)))
            .collect(),
        dependencies: cur
            .dependencies
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        previous: r
            .previous
            .as_ref()
            .and_then(|p| r.versions.get(p))
            .map(|v| v.version.to_string()),
        state_dir: layout.data_dir(name),
    })
}

/// `ipkg history NAME`.
pub fn history(layout: &Layout, name: &str) -> Result<Vec<HistoryEntry>, Error> {
    let _lock = PrefixLock::shared(layout)?;
    Ok(load(layout, name)?.history)
}

fn load(layout: &Layout, name: &str) -> Result<Receipt, Error> {
    installed::load(layout, name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_owned(),
    })
}

/// What `ipkg which CMD` found.
#[derive(Debug, Clone, Serialize)]
pub struct Which {
    pub command: String,
    pub package: String,
    pub version: String,
    /// The link in the bin dir.
    pub link: PathBuf,
    /// The file it runs, through `<prefix>/<name>`.
    pub target: PathBuf,
}

/// Which installed package provides `cmd`.
pub fn which(layout: &Layout, cmd: &str) -> Result<Which, Error> {
    let _lock = PrefixLock::shared(layout)?;
    let link = layout.bin_dir.join(cmd);
    let not_found = || Error::PackageNotFound {
        name: cmd.to_owned(),
        searched: vec![format!(
            "the commands ipkg linked into `{}`",
            layout.bin_dir.display()
        )],
    };
    let target = std::fs::read_link(&link).map_err(|_| not_found())?;
    let rest = target
        .strip_prefix(&layout.prefix)
        .map_err(|_| not_found())?;
    let Some(std::path::Component::Normal(name)) = rest.components().next() else {
        return Err(not_found());
    };
    let name = name.to_string_lossy().into_owned();
    let r = installed::load(layout, &name)?.ok_or_else(not_found)?;
    let cur = r.current()?;
    Ok(Which {
        command: cmd.to_owned(),
        package: name,
        version: cur.version.to_string(),
        link,
        target,
    })
}

/// What a registry offers of a package that is not installed.
#[derive(Debug, Clone, Serialize)]
pub struct Available {
    pub name: String,
    pub registry: String,
    pub publisher: String,
    pub description: String,
    pub commands: Vec<String>,
    /// `VERSION (TARGET)`, yanked ones left out, lowest first.
    pub releases: Vec<String>,
}

/// Every known registry's entry for `name` (for `ipkg info` of a package
/// that is not installed).
pub fn available(layout: &Layout, name: &str) -> Result<Vec<Available>, Error> {
    let store = crate::sources::store::BlockStore::open(layout.blocks_dir())
        .map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let mut out = Vec::new();
    for reg in resolve::known_registries(layout, &store, &[])? {
        if let Some(doc) = reg.index.package(name) {
            out.push(Available {
                name: doc.name.clone(),
                registry: reg.alias.clone(),
                publisher: doc.publisher.clone(),
                description: doc.description.clone(),
                commands: doc.commands.clone(),
                releases: doc
                    .releases
                    .iter()
                    .filter(|r| !r.yanked)
                    .map(|r| format!("{} ({})", r.version, r.target))
                    .collect(),
            });
        }
    }
    Ok(out)
}

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

/// A reader's view: a damaged receipt shows as `doctor` would rebuild it.
fn load(layout: &Layout, name: &str) -> Result<Receipt, Error> {
    installed::load_or_rebuild(layout, name)?
        .map(|(r, _)| r)
        .ok_or_else(|| Error::NotInstalled {
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
    let not_found = || Error::NoCommand {
        program: cmd.to_owned(),
        reason: format!(
            "no installed package provides this command in `{}`",
            layout.bin_dir.display()
        ),
    };
    let target = std::fs::read_link(&link).map_err(|_| not_found())?;
    let rest = target
        .strip_prefix(&layout.prefix)
        .map_err(|_| not_found())?;
    let Some(std::path::Component::Normal(name)) = rest.components().next() else {
        return Err(not_found());
    };
    let name = name.to_string_lossy().into_owned();
    let r = installed::load_or_rebuild(layout, &name)?
        .map(|(r, _)| r)
        .ok_or_else(not_found)?;
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

/// One row of `ipkg outdated`: an installed package a cached index offers
/// a newer release of.
#[derive(Debug, Clone, Serialize)]
pub struct Outdated {
    pub name: String,
    pub version: String,
    /// The newest release the cached index lists for this machine.
    pub latest: String,
    pub registry: String,
    pub held: bool,
    /// The requirement it was installed with, if any.
    pub requirement: Option<String>,
}

/// `ipkg outdated`: installed packages with a newer release in the indexes
/// already on disk. Nothing is fetched (`ipkg update` refreshes them).
pub fn outdated(layout: &Layout) -> Result<Vec<Outdated>, Error> {
    let _lock = PrefixLock::shared(layout)?;
    let store = crate::sources::store::BlockStore::open(layout.blocks_dir())
        .map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let registries = crate::ops::resolve::known_registries(layout, &store, &[])?;
    let target = crate::ops::resolve::host_target();
    let mut out = Vec::new();
    for r in installed::list(layout)? {
        let cur = r.current()?;
        let Some(alias) = &cur.registry else { continue };
        let Some(doc) = registries
            .iter()
            .find(|k| &k.alias == alias)
            .and_then(|k| k.index.package(&r.name))
        else {
            continue;
        };
        if let Some(latest) = doc.latest(&semver::VersionReq::STAR, &target)
            && latest.version > cur.version
        {
            out.push(Outdated {
                name: r.name.clone(),
                version: cur.version.to_string(),
                latest: latest.version.to_string(),
                registry: alias.clone(),
                held: r.held,
                requirement: r.requirement.clone(),
            });
        }
    }
    Ok(out)
}

/// One hit of `ipkg search`.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub name: String,
    /// The newest release for this machine, if any is not yanked.
    pub version: Option<String>,
    pub registry: String,
    pub description: String,
    pub commands: Vec<String>,
}

/// `ipkg search [TERM]`: packages in the verified indexes on disk whose
/// name, description or commands contain `term` (any case); every package
/// without one. Nothing is fetched.
pub fn search(layout: &Layout, term: Option<&str>) -> Result<Vec<Found>, Error> {
    let store = crate::sources::store::BlockStore::open(layout.blocks_dir())
        .map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let target = crate::ops::resolve::host_target();
    let term = term.map(str::to_lowercase);
    let mut out = Vec::new();
    for reg in crate::ops::resolve::known_registries(layout, &store, &[])? {
        for doc in reg.index.packages().values() {
            let hit = term.as_deref().is_none_or(|t| {
                doc.name.to_lowercase().contains(t)
                    || doc.description.to_lowercase().contains(t)
                    || doc.commands.iter().any(|c| c.to_lowercase().contains(t))
            });
            if hit {
                out.push(Found {
                    name: doc.name.clone(),
                    version: doc
                        .latest(&semver::VersionReq::STAR, &target)
                        .map(|e| e.version.to_string()),
                    registry: reg.alias.clone(),
                    description: doc.description.clone(),
                    commands: doc.commands.clone(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.name, &a.registry).cmp(&(&b.name, &b.registry)));
    Ok(out)
}

/// What `ipkg registry show` tells about one registry.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryShown {
    pub name: String,
    /// `published` (from here) or `subscribed`.
    pub kind: String,
    pub ipns: String,
    pub sequence: u64,
    /// When the index was signed and when it expires (Unix seconds).
    pub signed: Option<i64>,
    pub expires: Option<i64>,
    pub packages: Vec<ShownPackage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShownPackage {
    pub name: String,
    pub publisher: String,
    pub description: String,
    /// `VERSION (TARGET)`, with ` yanked` after yanked ones.
    pub releases: Vec<String>,
}

/// `ipkg registry show NAME`: from the index on disk only.
pub fn registry_show(layout: &Layout, name: &str) -> Result<RegistryShown, Error> {
    let store = crate::sources::store::BlockStore::open(layout.blocks_dir())
        .map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let (kind, ipns, root, index) =
        if let Ok(reg) = crate::ops::publish::registry::Registry::open(layout, name) {
            let index = reg.load_index(&store)?;
            (
                "published",
                reg.state.ipns.clone(),
                reg.root_cid()?,
                Some(index),
            )
        } else {
            let sub = crate::ops::resolve::subscriptions::open(layout, name)?;
            let index = sub.load_index(&store)?;
            ("subscribed", sub.state.ipns.clone(), sub.root_cid()?, index)
        };
    let root = root
        .and_then(|cid| store.get(&cid).ok())
        .and_then(|b| crate::trust::index::SignedIndex::decode(&b).ok());
    let packages = index
        .iter()
        .flat_map(|i| i.packages().values())
        .map(|doc| ShownPackage {
            name: doc.name.clone(),
            publisher: doc.publisher.clone(),
            description: doc.description.clone(),
            releases: doc
                .releases
                .iter()
                .map(|r| {
                    let y = if r.yanked { " yanked" } else { "" };
                    format!("{} ({}){y}", r.version, r.target)
                })
                .collect(),
        })
        .collect();
    Ok(RegistryShown {
        name: name.to_owned(),
        kind: kind.to_owned(),
        ipns,
        sequence: root.as_ref().map_or(0, |r| r.root().sequence),
        signed: root.as_ref().map(|r| r.root().time),
        expires: root.as_ref().map(|r| r.root().expires),
        packages,
    })
}

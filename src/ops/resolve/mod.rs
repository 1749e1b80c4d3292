//! The registry client and name resolution: from a name to verified bytes.
//!
//! - this module: what the user typed, resolved to one verified release;
//! - [`subscriptions`]: the registries this host installs from, kept fresh;
//! - [`names`]: IPNS records and DNSLink domains, resolved over the network;
//! - [`fetch`]: whole DAGs brought into the store from Kubo and gateways;
//! - [`seed`]: installed trees handed to Kubo, registries pushed to it.
//!
//! Owns every outgoing network request and the trust decisions about what
//! comes back (signatures, rollbacks, forks). Must not touch: installed state
//! ([`super::lifecycle`]) or private keys ([`super::publish`] signs; this
//! capability only verifies). It reads the local registries of
//! [`super::publish::registry`] as one more source of signed indexes.
//!
//! # Resolving a name
//!
//! From what the user typed to one verified release: the name forms of
//! DESIGN.md §6 and the trust checks of spec/manifest.md §8.
//!
//! | form | meaning |
//! |---|---|
//! | `xmr`, `xmr@^1.2` | package `xmr` in whichever known registry has it (two → an error listing both) |
//! | `alice/xmr` | package `xmr` in the registry known as `alice` |
//! | `/ipns/k51…/xmr` | package `xmr` in the registry with that key |
//! | `example.org/xmr` | package `xmr` in the registry a DNSLink domain names |
//! | `/ipfs/<cid>`, `<cid>` | a release statement or a package tree by CID |
//! | `./dir` | a package directory on disk, packed into the store |
//! | `./file.car` | a CAR file holding a release statement or a package tree |
//!
//! A version requirement (`@^1.2`, `@=1.2.3`, `@1.2` = `^1.2`) may follow a
//! name. Only a release listed in a registry's signed index is *vouched for*;
//! anything else needs the user's consent (`--allow-unsigned` or a yes).

use std::path::{Path, PathBuf};

use crate::content::Cid;
use crate::content::cid::{Codec, parse};
use crate::sources::store::BlockStore;
use crate::sources::{BlockSource, CarSource};
use crate::trust::index::{IndexError, PackageDoc, RegistryIndex, ReleaseEntry};
use crate::trust::release::SignedRelease;

use super::{Error, Layout, Progress};
use crate::ops::publish::registry::{self, Registry, rotated_from};

pub mod fetch;
pub mod names;
pub mod seed;
pub mod subscriptions;

/// What the user named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A package by name, maybe in a given registry.
    Name {
        registry: Option<RegistryRef>,
        name: String,
        req: semver::VersionReq,
    },
    /// A release statement or a package tree.
    Cid(Cid),
    /// A package directory.
    Dir(PathBuf),
    /// A CAR file.
    Car(PathBuf),
}

/// How a registry was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRef {
    Alias(String),
    Key(String),
    Domain(String),
}

impl std::fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryRef::Alias(a) => f.write_str(a),
            RegistryRef::Key(k) => write!(f, "/ipns/{k}"),
            RegistryRef::Domain(d) => f.write_str(d),
        }
    }
}

/// Parse a package argument.
pub fn parse_spec(arg: &str) -> Result<Spec, Error> {
    let usage = |why: String| Error::Usage(format!("cannot understand `{arg}`: {why}"));
    if arg.starts_with("./")
        || arg.starts_with("../")
        || arg.starts_with('~')
        || (arg.starts_with('/') && !arg.starts_with("/ipfs/") && !arg.starts_with("/ipns/"))
        || arg == "."
    {
        let path = PathBuf::from(arg);
        return if path.is_dir() {
            Ok(Spec::Dir(path))
        } else if path.is_file() {
            Ok(Spec::Car(path))
        } else {
            Err(Error::Io {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            })
        };
    }
    // `x.car` in the working directory: a CAR file, not a package named so
    // (package names have no dots).
    if arg.ends_with(".car") && Path::new(arg).is_file() {
        return Ok(Spec::Car(PathBuf::from(arg)));
    }
    if let Some(rest) = arg
        .strip_prefix("/ipfs/")
        .or_else(|| arg.strip_prefix("ipfs://"))
    {
        let cid = rest.trim_end_matches('/');
        return parse(cid).map(Spec::Cid).map_err(|e| usage(e.to_string()));
    }
    let (body, req) = match arg.split_once('@') {
        Some((b, r)) => (b, parse_req(r).map_err(usage)?),
        None => (arg, semver::VersionReq::STAR),
    };
    if let Some(rest) = body.strip_prefix("/ipns/") {
        let (key, name) = rest
            .split_once('/')
            .ok_or_else(|| usage("expected `/ipns/KEY/NAME`".into()))?;
        check_name(name).map_err(usage)?;
        return Ok(Spec::Name {
            registry: Some(if key.contains('.') {
                RegistryRef::Domain(key.to_owned())
            } else {
                RegistryRef::Key(key.to_owned())
            }),
            name: name.to_owned(),
            req,
        });
    }
    if let Some((reg, name)) = body.split_once('/') {
        check_name(name).map_err(usage)?;
        let registry = if reg.contains('.') {
            RegistryRef::Domain(reg.to_owned())
        } else if reg.starts_with("k51") && reg.len() > 50 {
            RegistryRef::Key(reg.to_owned())
        } else {
            RegistryRef::Alias(reg.to_owned())
        };
        return Ok(Spec::Name {
            registry: Some(registry),
            name: name.to_owned(),
            req,
        });
    }
    if req == semver::VersionReq::STAR
        && (body.starts_with("Qm") || body.starts_with("bafy") || body.starts_with("bafk"))
        && let Ok(cid) = parse(body)
    {
        return Ok(Spec::Cid(cid));
    }
    check_name(body).map_err(usage)?;
    Ok(Spec::Name {
        registry: None,
        name: body.to_owned(),
        req,
    })
}

fn check_name(name: &str) -> Result<(), String> {
    crate::trust::manifest::check_package_name(name)
}

/// `1.2` means `^1.2` (as in Cargo); `=1.2.3`, `>=1, <2`, `*` as written.
pub fn parse_req(text: &str) -> Result<semver::VersionReq, String> {
    semver::VersionReq::parse(text).map_err(|e| format!("bad version requirement `{text}`: {e}"))
}

/// The platform packages must support here (`x86_64-linux`).
pub fn host_target() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// A registry the client knows, with its verified index.
pub struct KnownRegistry {
    /// The name the user knows it by.
    pub alias: String,
    /// Its key (`k51…`).
    pub ipns: String,
    /// The DNSLink domain it was subscribed by, if any.
    pub domain: Option<String>,
    /// Searched for bare names (`xmr`); registries subscribed implicitly
    /// (by installing `k51…/xmr`) are only used when named.
    pub trusted: bool,
    pub index: RegistryIndex,
}

/// Every registry this prefix knows: the ones published from here and the
/// ones subscribed to (`ipkg registry add`). A subscription whose index is
/// missing or expired is refreshed through `sources` first; one that cannot
/// be is left out (`ipkg update` reports why).
pub fn known_registries(
    layout: &Layout,
    store: &BlockStore,
    sources: &[&dyn BlockSource],
) -> Result<Vec<KnownRegistry>, Error> {
    let mut out = Vec::new();
    for reg in Registry::list(layout)? {
        let index = reg.load_index(store)?;
        out.push(KnownRegistry {
            alias: reg.name.clone(),
            ipns: reg.state.ipns.clone(),
            domain: None,
            trusted: true,
            index,
        });
    }
    let now = super::publish::now();
    for mut sub in self::subscriptions::list(layout)? {
        if sub.stale(now) {
            let _ = self::subscriptions::refresh(layout, store, sources, &mut sub, &|_| {});
        }
        // Still no fresh index (no source answered): an expired index is
        // not used (spec/manifest.md §8); `ipkg update` says why.
        if sub.stale(now) {
            continue;
        }
        if let Ok(Some(index)) = sub.load_index(store) {
            out.push(KnownRegistry {
                alias: sub.alias.clone(),
                ipns: sub.state.ipns.clone(),
                domain: sub.state.domain.clone(),
                trusted: sub.state.trusted,
                index,
            });
        }
    }
    Ok(out)
}

/// A release chosen for installing, checked as far as can be before its
/// package tree is fetched.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The package name (from the index, or from the manifest once fetched).
    pub name: Option<String>,
    pub version: Option<semver::Version>,
    pub package: Cid,
    pub release: Option<Cid>,
    pub publisher: Option<String>,
    /// The registry that vouches for it.
    pub registry: Option<String>,
    /// Key succession statements of the package (for publisher pinning).
    pub successions: Vec<crate::trust::succession::KeySuccession>,
    /// Where its blocks may come from besides the store and the network.
    pub car: Option<PathBuf>,
    /// What the user typed, for messages.
    pub shown: String,
}

impl Candidate {
    pub fn vouched(&self) -> bool {
        self.registry.is_some()
    }
}

/// Everything resolution needs.
pub struct Resolver<'a> {
    pub layout: &'a Layout,
    pub store: &'a BlockStore,
    pub sources: &'a [&'a dyn BlockSource],
    pub registries: Vec<KnownRegistry>,
    pub target: String,
}

impl<'a> Resolver<'a> {
    pub fn new(
        layout: &'a Layout,
        store: &'a BlockStore,
        sources: &'a [&'a dyn BlockSource],
    ) -> Result<Resolver<'a>, Error> {
        Ok(Resolver {
            registries: known_registries(layout, store, sources)?,
            layout,
            store,
            sources,
            target: host_target(),
        })
    }

    /// Choose the release `spec` names. `prefer` is a registry alias to try
    /// first for a bare name (a dependency's parent's registry).
    pub fn resolve(&self, spec: &Spec, shown: &str) -> Result<Candidate, Error> {
        match spec {
            Spec::Name {
                registry,
                name,
                req,
            } => {
                let (reg, doc) = self.find_package(registry.as_ref(), name)?;
                let entry =
                    doc.latest(req, &self.target)
                        .ok_or_else(|| Error::NoMatchingRelease {
                            name: name.clone(),
                            req: req.to_string(),
                            target: self.target.clone(),
                            registry: reg.alias.clone(),
                            available: doc
                                .releases
                                .iter()
                                .filter(|r| !r.yanked)
                                .map(|r| format!("{} ({})", r.version, r.target))
                                .collect(),
                        })?;
                self.candidate(reg, doc, entry, shown)
            }
            Spec::Cid(cid) => self.by_cid(cid, None, shown),
            Spec::Car(path) => {
                let roots = car_roots(path)?;
                let [root] = roots.as_slice() else {
                    return Err(Error::Usage(format!(
                        "`{}` has {} roots; a package CAR has one (the package or its release statement)",
                        path.display(),
                        roots.len()
                    )));
                };
                self.by_cid(root, Some(path.clone()), shown)
            }
            Spec::Dir(_) => Err(Error::Usage(
                "a package directory is packed by the caller, not resolved".into(),
            )),
        }
    }

    fn index_err(&self, reg: &KnownRegistry, source: IndexError) -> Error {
        Error::Index {
            registry: reg.alias.clone(),
            source: Box::new(source),
        }
    }

    /// The registry and package document for `name`.
    pub fn find_package(
        &self,
        registry: Option<&RegistryRef>,
        name: &str,
    ) -> Result<(&KnownRegistry, &PackageDoc), Error> {
        let matching: Vec<&KnownRegistry> = self
            .registries
            .iter()
            .filter(|r| match registry {
                None => r.trusted,
                Some(RegistryRef::Alias(a)) => &r.alias == a,
                Some(RegistryRef::Key(k)) => &r.ipns == k,
                Some(RegistryRef::Domain(d)) => r.domain.as_deref() == Some(d.as_str()),
            })
            .collect();
        if matching.is_empty()
            && let Some(r) = registry
        {
            return Err(match r {
                RegistryRef::Alias(a) => Error::RegistryNotFound { name: a.clone() },
                other => Error::Usage(format!(
                    "no known registry is `{other}`: add it with `ipkg registry add ALIAS {}`",
                    other.to_string().trim_start_matches("/ipns/")
                )),
            });
        }
        let found: Vec<(&KnownRegistry, &PackageDoc)> = matching
            .iter()
            .filter_map(|r| r.index.package(name).map(|d| (*r, d)))
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::PackageNotFound {
                name: name.to_owned(),
                searched: matching.iter().map(|r| format!("`{}`", r.alias)).collect(),
            }),
            many => Err(Error::Ambiguous {
                name: name.to_owned(),
                found: many.iter().map(|(r, _)| r.alias.clone()).collect(),
            }),
        }
    }

    /// Check the release statement `entry` links and build the candidate.
    fn candidate(
        &self,
        reg: &KnownRegistry,
        doc: &PackageDoc,
        entry: &ReleaseEntry,
        shown: &str,
    ) -> Result<Candidate, Error> {
        let bytes = self.block(&entry.release)?;
        let signed = SignedRelease::decode(&bytes).map_err(|source| Error::Release {
            registry: reg.alias.clone(),
            cid: entry.release.to_string(),
            source: Box::new(source),
        })?;
        match doc.check_release(entry, &signed) {
            Ok(()) => {}
            Err(IndexError::PublisherMismatch { .. })
                if rotated_from(self.store, doc, &signed.release().publisher)? => {}
            Err(e) => return Err(self.index_err(reg, e)),
        }
        Ok(Candidate {
            name: Some(doc.name.clone()),
            version: Some(entry.version.clone()),
            package: entry.package,
            release: Some(entry.release),
            publisher: Some(signed.release().publisher.clone()),
            registry: Some(reg.alias.clone()),
            successions: registry::successions(self.store, doc)?,
            car: None,
            shown: shown.to_owned(),
        })
    }

    /// A block from the store, or else from the sources.
    fn block(&self, cid: &Cid) -> Result<Vec<u8>, Error> {
        if let Ok(b) = self.store.get(cid) {
            return Ok(b);
        }
        let mut attempts = Vec::new();
        for s in self.sources {
            match s.block(cid) {
                Ok(b) => {
                    let _ = self.store.put(cid, &b);
                    return Ok(b);
                }
                Err(e) => attempts.push((s.describe(), e.to_string())),
            }
        }
        Err(Error::Fetch {
            cid: *cid,
            attempts,
        })
    }

    /// A release statement or a package tree by CID: vouched for when a known
    /// registry lists it.
    fn by_cid(&self, cid: &Cid, car: Option<PathBuf>, shown: &str) -> Result<Candidate, Error> {
        // A registry entry naming this CID (as release or package) vouches.
        for reg in &self.registries {
            for doc in reg.index.packages().values() {
                if let Some(entry) = doc
                    .releases
                    .iter()
                    .find(|e| e.release == *cid || e.package == *cid)
                {
                    if entry.yanked {
                        continue;
                    }
                    let mut c = self.candidate(reg, doc, entry, shown)?;
                    c.car = car;
                    return Ok(c);
                }
            }
        }
        let mut candidate = Candidate {
            name: None,
            version: None,
            package: *cid,
            release: None,
            publisher: None,
            registry: None,
            successions: Vec::new(),
            car: car.clone(),
            shown: shown.to_owned(),
        };
        if cid.codec() == Codec::DagCbor.code() {
            // A release statement nobody vouches for: its signature still
            // has to hold, and it names the package.
            let bytes = match &car {
                Some(path) => CarSource { path: path.clone() }
                    .block(cid)
                    .map_err(|e| Error::Usage(format!("`{}`: {e}", path.display())))?,
                None => self.block(cid)?,
            };
            let signed = SignedRelease::decode(&bytes).map_err(|source| Error::Release {
                registry: "<none>".into(),
                cid: cid.to_string(),
                source: Box::new(source),
            })?;
            let r = signed.release();
            candidate.name = Some(r.name.clone());
            candidate.version = Some(r.version.clone());
            candidate.package = r.package;
            candidate.release = Some(*cid);
            candidate.publisher = Some(r.publisher.clone());
        }
        Ok(candidate)
    }
}

/// The roots a CAR file names.
fn car_roots(path: &Path) -> Result<Vec<Cid>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader =
        crate::content::car::CarReader::new(std::io::BufReader::new(file)).map_err(|source| {
            Error::Car {
                path: path.to_path_buf(),
                source: Box::new(source),
            }
        })?;
    Ok(reader.roots().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_forms() {
        let star = semver::VersionReq::STAR;
        assert_eq!(
            parse_spec("xmr").unwrap(),
            Spec::Name {
                registry: None,
                name: "xmr".into(),
                req: star.clone()
            }
        );
        let Spec::Name { registry, req, .. } = parse_spec("alice/xmr@^1.2").unwrap() else {
            panic!()
        };
        assert_eq!(registry, Some(RegistryRef::Alias("alice".into())));
        assert!(req.matches(&semver::Version::new(1, 3, 0)));
        assert!(!req.matches(&semver::Version::new(2, 0, 0)));
        let Spec::Name { registry, .. } = parse_spec("example.org/xmr").unwrap() else {
            panic!()
        };
        assert_eq!(registry, Some(RegistryRef::Domain("example.org".into())));
        let Spec::Name { registry, .. } = parse_spec("/ipns/k51abc/xmr").unwrap() else {
            panic!()
        };
        assert_eq!(registry, Some(RegistryRef::Key("k51abc".into())));
        let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        assert!(matches!(parse_spec(cid).unwrap(), Spec::Cid(_)));
        assert!(matches!(
            parse_spec(&format!("/ipfs/{cid}")).unwrap(),
            Spec::Cid(_)
        ));
        assert!(parse_spec("Bad Name").is_err());
        assert!(parse_spec("xmr@not-a-version").is_err());
        assert!(parse_spec("alice/../x").is_err());
    }
}

//! Registries a maintainer publishes to, on local disk.
//!
//! `<prefix>/.ipkg/registries/NAME/registry.toml` holds the registry's key (its
//! local name and its `k51…` IPNS name), the CID of the latest signed index
//! root and its sequence. The index root, its package documents, the release
//! statements and the package trees live in the block store, pinned with the
//! label `registry/NAME`. `ipns-record` beside it holds the latest IPNS record
//! for the index, once records are made.
//!
//! Loading an index checks everything a client would: the root's signature and
//! key, every package document against its CID, and (for `verify`) every
//! release statement's signature and agreement with its entry.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::cid::{Cid, parse};
use crate::sources::store::BlockStore;
use crate::trust::index::{IndexError, RegistryIndex, SignedIndex};
use crate::trust::release::SignedRelease;
use crate::trust::succession::{KeySuccession, succeeds};

use super::{Error, Layout};
use crate::ops::content::car;
use crate::ops::pins::write_atomic;

/// What `registry.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryState {
    /// The local name of the registry key (`ipkg key list`).
    pub key: String,
    /// The registry key's IPNS name (`k51…`).
    pub ipns: String,
    /// The latest signed index root, once something is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Its sequence (0 before the first publish).
    #[serde(default)]
    pub sequence: u64,
}

/// A registry by name.
#[derive(Debug, Clone)]
pub struct Registry {
    pub name: String,
    pub dir: PathBuf,
    pub state: RegistryState,
}

/// Registry names: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn check_registry_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::RegistryName {
            name: name.to_owned(),
            reason: "use 1 to 64 lowercase letters, digits, `.`, `_` and `-`, starting with a letter or a digit".into(),
        })
    }
}

/// `<prefix>/.ipkg/registries`.
pub fn registries_dir(layout: &Layout) -> PathBuf {
    layout.state_root().join("registries")
}

/// The pin label of a registry's blocks.
pub fn pin_label(name: &str) -> String {
    format!("registry/{name}")
}

impl Registry {
    fn state_path(&self) -> PathBuf {
        self.dir.join("registry.toml")
    }

    /// Open the registry called `name`.
    pub fn open(layout: &Layout, name: &str) -> Result<Registry, Error> {
        check_registry_name(name)?;
        let dir = registries_dir(layout).join(name);
        let path = dir.join("registry.toml");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::RegistryNotFound {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let state = toml::from_str(&text).map_err(|e| Error::Config {
            path,
            message: e.to_string(),
        })?;
        Ok(Registry {
            name: name.to_owned(),
            dir,
            state,
        })
    }

    /// Create a registry owned by the key `key_name` (whose IPNS name is `ipns`).
    pub fn create(
        layout: &Layout,
        name: &str,
        key_name: &str,
        ipns: &str,
    ) -> Result<Registry, Error> {
        check_registry_name(name)?;
        let parent = registries_dir(layout);
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::RegistryExists {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        let reg = Registry {
            name: name.to_owned(),
            dir,
            state: RegistryState {
                key: key_name.to_owned(),
                ipns: ipns.to_owned(),
                root: None,
                sequence: 0,
            },
        };
        reg.save()?;
        Ok(reg)
    }

    /// Every registry, by name.
    pub fn list(layout: &Layout) -> Result<Vec<Registry>, Error> {
        let dir = registries_dir(layout);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_registry_name(&name).is_err() || !entry.path().join("registry.toml").exists() {
                continue;
            }
            out.push(Registry::open(layout, &name)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Write `registry.toml` atomically.
    pub fn save(&self) -> Result<(), Error> {
        let text = toml::to_string(&self.state).map_err(|e| Error::Config {
            path: self.state_path(),
            message: e.to_string(),
        })?;
        write_atomic(&self.state_path(), text.as_bytes())
            .map_err(|e| Error::io(self.state_path(), e))
    }

    fn index_err(&self, source: IndexError) -> Error {
        Error::Index {
            registry: self.name.clone(),
            source: Box::new(source),
        }
    }

    /// The latest root CID, if anything was published.
    pub fn root_cid(&self) -> Result<Option<Cid>, Error> {
        self.state
            .root
            .as_deref()
            .map(|r| {
                parse(r).map_err(|e| Error::Config {
                    path: self.state_path(),
                    message: format!("`root`: {e}"),
                })
            })
            .transpose()
    }

    /// Load the latest index from `store`, checking the root's signature, its
    /// key and sequence against `registry.toml`, and every package document.
    /// An unpublished registry gives an empty index.
    pub fn load_index(&self, store: &BlockStore) -> Result<RegistryIndex, Error> {
        let Some(root_cid) = self.root_cid()? else {
            return RegistryIndex::new(&self.state.ipns).map_err(|e| self.index_err(e));
        };
        let root = self.load_root(store, &root_cid)?;
        let fetch = |cid: &Cid| store.get(cid).ok();
        RegistryIndex::load(&root, &fetch).map_err(|e| self.index_err(e))
    }

    fn load_root(&self, store: &BlockStore, cid: &Cid) -> Result<SignedIndex, Error> {
        let bytes = store.get(cid)?;
        let root = SignedIndex::decode(&bytes).map_err(|e| self.index_err(e))?;
        if root.root().registry != self.state.ipns {
            return Err(self.index_err(IndexError::WrongRegistry {
                expected: self.state.ipns.clone(),
                signer: root.root().registry.clone(),
            }));
        }
        if root.root().sequence != self.state.sequence {
            return Err(self.index_err(IndexError::Invalid {
                what: format!("index {cid}"),
                reason: format!(
                    "its sequence is {}, `registry.toml` says {}",
                    root.root().sequence,
                    self.state.sequence
                ),
            }));
        }
        Ok(root)
    }

    /// Check everything: the index (as [`Registry::load_index`]), then every
    /// release statement (signature, agreement with its entry and publisher)
    /// and that every package tree is complete in the store.
    pub fn verify(&self, store: &BlockStore) -> Result<VerifyReport, Error> {
        let index = self.load_index(store)?;
        let mut report = VerifyReport {
            sequence: self.state.sequence,
            ..VerifyReport::default()
        };
        for doc in index.packages().values() {
            report.packages += 1;
            for entry in &doc.releases {
                let bytes = store.get(&entry.release)?;
                let signed = SignedRelease::decode(&bytes).map_err(|source| Error::Release {
                    registry: self.name.clone(),
                    cid: entry.release.to_string(),
                    source: Box::new(source),
                })?;
                match doc.check_release(entry, &signed) {
                    Ok(()) => {}
                    // Signed by an earlier publisher key: fine when the
                    // package's succession statements lead from it to the
                    // current one (releases made before a rotation).
                    Err(IndexError::PublisherMismatch { .. })
                        if rotated_from(store, doc, &signed.release().publisher)? => {}
                    Err(e) => return Err(self.index_err(e)),
                }
                if let Some(missing) = car::first_missing(store, &entry.package)? {
                    return Err(crate::content::GetError::Missing(missing).into());
                }
                report.releases += 1;
            }
        }
        Ok(report)
    }

    /// Write a CAR rooted at the latest index: the root, its package documents,
    /// the release statements and the package trees. Returns the block count.
    pub fn export(&self, store: &BlockStore, dest: &Path) -> Result<u64, Error> {
        let root_cid = self.root_cid()?.ok_or_else(|| {
            Error::Usage(format!(
                "registry `{}` has no index yet: publish a package first",
                self.name
            ))
        })?;
        // Refuse to hand out an index that no longer verifies.
        self.load_index(store)?;
        // Every document links what it vouches for (index -> package documents
        // -> release statements -> package trees), so one walk from the root
        // takes it all.
        let (blocks, _bytes) = car::export(store, &root_cid, dest, &super::NoProgress)?;
        Ok(blocks)
    }
}

/// What [`Registry::verify`] checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub sequence: u64,
    pub packages: usize,
    pub releases: usize,
}

/// The key succession statements a package document links, oldest first.
pub fn successions(
    store: &BlockStore,
    doc: &crate::trust::index::PackageDoc,
) -> Result<Vec<KeySuccession>, Error> {
    let mut statements = Vec::new();
    for cid in &doc.successions {
        statements.push(KeySuccession::decode(&store.get(cid)?)?);
    }
    Ok(statements)
}

/// Whether `doc`'s succession statements lead from `signer` to its publisher
/// (a release made before a key rotation).
pub fn rotated_from(
    store: &BlockStore,
    doc: &crate::trust::index::PackageDoc,
    signer: &str,
) -> Result<bool, Error> {
    Ok(succeeds(signer, &doc.publisher, &successions(store, doc)?))
}

//! The signed registry index, and the checks a client makes before it takes a
//! new one.
//!
//! Layout (`spec/manifest.md` §"Registry index"): a small tree of DAG-CBOR
//! documents, so that a refresh fetches only what changed.
//!
//! - The **root** `{version: 1, registry, sequence, time, expires, previous,
//!   packages: {name → CID}, succession, signature}` is signed by the registry
//!   key over `b"ipkg-index-v1:" ++ dag-cbor(root without "signature")`.
//! - Each **package document** `{name, publisher, description, commands,
//!   releases: [{version, target, release: CID, yanked}], successions}` is
//!   *not* signed itself: the root names it by CID, so the root signature
//!   covers it. An unchanged package keeps its CID from one index to the next.
//! - Each release entry links the publisher's [`SignedRelease`], whose own
//!   signature ties the package tree to the publisher key.
//!
//! Anti-rollback, fork and expiry rules are [`check_update`]; publisher
//! pinning is [`crate::succession::check_publisher`].

use std::collections::BTreeMap;

use ipkg_content::cid::{Block, Cid, Codec, cid_of};
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::format_time;
use crate::keys::{Keypair, PublicKey};
use crate::manifest::{self, Manifest};
use crate::release::{SignedRelease, serde_bytes_opt};
use crate::succession::{KeySuccession, succeeds};

pub use crate::succession::{PublisherCheck, check_publisher};

/// Domain-separation prefix of index signatures.
pub const INDEX_SIGNATURE_PREFIX: &[u8] = b"ipkg-index-v1:";
/// The `version` field of roots this code writes and reads.
pub const INDEX_FORMAT_VERSION: u64 = 1;
/// Largest root document accepted.
pub const MAX_ROOT_BYTES: usize = 16 << 20;
/// Largest package document accepted.
pub const MAX_PACKAGE_DOC_BYTES: usize = 4 << 20;

/// Why an index, a package document or an index update was refused.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("not a valid {what} ({cid}): {reason}")]
    Decode {
        what: &'static str,
        cid: Cid,
        reason: String,
    },
    #[error("bad signature on registry index {registry} sequence {sequence} ({cid})")]
    BadSignature {
        registry: String,
        sequence: u64,
        cid: Cid,
    },
    #[error("registry index signed by {signer} but the pinned registry key is {expected}")]
    WrongRegistry { expected: String, signer: String },
    #[error(
        "registry index {registry} went back from sequence {seen} to {got}: refusing a rollback"
    )]
    Rollback {
        registry: String,
        seen: u64,
        got: u64,
    },
    #[error(
        "registry index {registry} has two different documents with sequence {sequence} ({seen} and {got}): refusing a fork"
    )]
    Fork {
        registry: String,
        sequence: u64,
        seen: Cid,
        got: Cid,
    },
    #[error(
        "registry index {registry} sequence {sequence} expired at {expires} (now {now}); fetch a fresh one or allow an expired index explicitly"
    )]
    Expired {
        registry: String,
        sequence: u64,
        expires: String,
        now: String,
    },
    #[error(
        "package document for `{name}` does not match the index: expected {expected}, got {got}"
    )]
    DocMismatch {
        name: String,
        expected: Cid,
        got: Cid,
    },
    #[error("package document for `{name}` ({cid}) is missing")]
    MissingDoc { name: String, cid: Cid },
    #[error(
        "{name} {version} ({target}) is already published as {existing}; a published version never changes, publish a new version instead"
    )]
    VersionExists {
        name: String,
        version: semver::Version,
        target: String,
        existing: Cid,
    },
    #[error("release {name} {version} signed by {signer} but the package publisher is {publisher}")]
    PublisherMismatch {
        name: String,
        version: semver::Version,
        signer: String,
        publisher: String,
    },
    #[error("no package `{name}` in the index")]
    NoSuchPackage { name: String },
    #[error("no release {name} {version} in the index")]
    NoSuchVersion {
        name: String,
        version: semver::Version,
    },
    #[error("cannot sign the index of registry {registry} with key {key}")]
    WrongKey { registry: String, key: String },
    #[error("key succession {old} -> {new} does not start at the current key {current}")]
    SuccessionMismatch {
        old: String,
        new: String,
        current: String,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("could not encode the {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

// ---------------------------------------------------------------------------
// Package documents.

/// One release of a package in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEntry {
    pub version: semver::Version,
    pub target: String,
    /// CID of the publisher's signed release statement.
    pub release: Cid,
    /// The package tree the statement names (copied so that a client can
    /// show it and a publisher can compare without fetching the statement).
    pub package: Cid,
    pub yanked: bool,
}

/// The per-package document (covered by the root signature through its CID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageDoc {
    pub name: String,
    /// The publisher's key name (`k51…`): releases must be signed by it.
    pub publisher: String,
    pub description: String,
    pub commands: Vec<String>,
    /// Sorted by version, then target; one entry per (version, target).
    pub releases: Vec<ReleaseEntry>,
    /// CIDs of the key succession statements from the first publisher key to
    /// the current one, oldest first.
    pub successions: Vec<Cid>,
}

impl PackageDoc {
    /// Canonical DAG-CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, IndexError> {
        cbor::encode(self).map_err(|reason| IndexError::Encode {
            what: "package document",
            reason,
        })
    }

    /// The block (CID and bytes) of this document.
    pub fn to_block(&self) -> Result<Block, IndexError> {
        let data = self.encode()?;
        Ok(Block {
            cid: cid_of(1, Codec::DagCbor, &data),
            data,
        })
    }

    /// Decode and check a package document on its own.
    pub fn decode(bytes: &[u8]) -> Result<PackageDoc, IndexError> {
        let cid = cid_of(1, Codec::DagCbor, bytes);
        let doc: PackageDoc =
            cbor::decode_canonical(bytes, MAX_PACKAGE_DOC_BYTES).map_err(|reason| {
                IndexError::Decode {
                    what: "package document",
                    cid,
                    reason,
                }
            })?;
        doc.validate()?;
        Ok(doc)
    }

    /// Decode the document the root lists as `name` → `cid`.
    pub fn decode_linked(bytes: &[u8], name: &str, cid: &Cid) -> Result<PackageDoc, IndexError> {
        let got = cid_of(1, Codec::DagCbor, bytes);
        if got != *cid {
            return Err(IndexError::DocMismatch {
                name: name.to_owned(),
                expected: *cid,
                got,
            });
        }
        let doc = PackageDoc::decode(bytes)?;
        if doc.name != name {
            return Err(IndexError::Invalid {
                what: format!("package document {cid}"),
                reason: format!(
                    "the index lists it as `{name}` but it is for `{}`",
                    doc.name
                ),
            });
        }
        Ok(doc)
    }

    fn validate(&self) -> Result<(), IndexError> {
        let invalid = |reason: String| IndexError::Invalid {
            what: format!("package document for `{}`", self.name),
            reason,
        };
        manifest::check_package_name(&self.name).map_err(invalid)?;
        PublicKey::from_canonical_name(&self.publisher)
            .map_err(|e| invalid(format!("publisher: {e}")))?;
        for c in &self.commands {
            manifest::check_command_name(c).map_err(invalid)?;
        }
        for r in &self.releases {
            manifest::check_target(&r.target).map_err(invalid)?;
        }
        let sorted = self
            .releases
            .windows(2)
            .all(|w| (&w[0].version, &w[0].target) < (&w[1].version, &w[1].target));
        if !sorted {
            return Err(invalid(
                "releases are not sorted by version and target, or one is listed twice".into(),
            ));
        }
        Ok(())
    }

    /// The highest release matching `req` for `target` (or `any`), yanked
    /// releases skipped.
    pub fn latest(&self, req: &semver::VersionReq, target: &str) -> Option<&ReleaseEntry> {
        self.releases
            .iter()
            .filter(|r| !r.yanked && (r.target == target || r.target == "any"))
            .filter(|r| req.matches(&r.version))
            .max_by(|a, b| a.version.cmp(&b.version))
    }

    /// Check that `signed` is the statement `entry` links and agrees with it
    /// and with this document's publisher. `entry` must be one of `releases`.
    /// Clients call this before installing from an index.
    pub fn check_release(
        &self,
        entry: &ReleaseEntry,
        signed: &SignedRelease,
    ) -> Result<(), IndexError> {
        let r = signed.release();
        let what = || format!("release {} {} ({})", self.name, entry.version, signed.cid());
        if signed.cid() != entry.release {
            return Err(IndexError::Invalid {
                what: what(),
                reason: format!("the index links {}, not this statement", entry.release),
            });
        }
        if r.name != self.name
            || r.version != entry.version
            || r.target != entry.target
            || r.package != entry.package
        {
            return Err(IndexError::Invalid {
                what: what(),
                reason: format!(
                    "the statement says {} {} ({}) is {}, the index says {} {} ({}) is {}",
                    r.name,
                    r.version,
                    r.target,
                    r.package,
                    self.name,
                    entry.version,
                    entry.target,
                    entry.package
                ),
            });
        }
        if r.publisher != self.publisher {
            return Err(IndexError::PublisherMismatch {
                name: r.name.clone(),
                version: r.version.clone(),
                signer: r.publisher.clone(),
                publisher: self.publisher.clone(),
            });
        }
        Ok(())
    }

    /// The entry for exactly this version and target.
    pub fn find(&self, version: &semver::Version, target: &str) -> Option<&ReleaseEntry> {
        self.releases
            .iter()
            .find(|r| r.version == *version && r.target == target)
    }
}

// ---------------------------------------------------------------------------
// The root.

/// The unsigned fields of the root document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRoot {
    /// Format version, [`INDEX_FORMAT_VERSION`].
    pub version: u64,
    /// The registry key's IPNS name (`k51…`), which signs the root.
    pub registry: String,
    /// Grows by at least one with every new index.
    pub sequence: u64,
    /// When it was signed (Unix seconds).
    pub time: i64,
    /// After this (Unix seconds) clients refuse it.
    pub expires: i64,
    /// CID of the previous root: an auditable history.
    pub previous: Option<Cid>,
    /// Package name → CID of its [`PackageDoc`].
    pub packages: BTreeMap<String, Cid>,
    /// CID of the [`KeySuccession`] that made `registry` the registry key, in
    /// indexes signed after a registry key rotation.
    pub succession: Option<Cid>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootWire {
    version: u64,
    registry: String,
    sequence: u64,
    time: i64,
    expires: i64,
    previous: Option<Cid>,
    packages: BTreeMap<String, Cid>,
    succession: Option<Cid>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_bytes_opt"
    )]
    signature: Option<Vec<u8>>,
}

impl IndexRoot {
    fn to_wire(&self, signature: Option<Vec<u8>>) -> RootWire {
        RootWire {
            version: self.version,
            registry: self.registry.clone(),
            sequence: self.sequence,
            time: self.time,
            expires: self.expires,
            previous: self.previous,
            packages: self.packages.clone(),
            succession: self.succession,
            signature,
        }
    }

    /// `b"ipkg-index-v1:" ++ dag-cbor(root without "signature")`.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, IndexError> {
        let body = cbor::encode(&self.to_wire(None)).map_err(|reason| IndexError::Encode {
            what: "registry index",
            reason,
        })?;
        Ok([INDEX_SIGNATURE_PREFIX, &body].concat())
    }
}

/// A root document whose signature is known to be valid for its `registry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIndex {
    root: IndexRoot,
    signature: Vec<u8>,
    bytes: Vec<u8>,
    cid: Cid,
}

impl SignedIndex {
    /// Sign `root` with the registry key.
    pub fn sign(root: IndexRoot, key: &Keypair) -> Result<SignedIndex, IndexError> {
        if key.ipns_name() != root.registry {
            return Err(IndexError::WrongKey {
                registry: root.registry,
                key: key.ipns_name(),
            });
        }
        let signature = key.sign(&root.signing_bytes()?).to_vec();
        let bytes = cbor::encode(&root.to_wire(Some(signature.clone()))).map_err(|reason| {
            IndexError::Encode {
                what: "registry index",
                reason,
            }
        })?;
        Ok(SignedIndex {
            root,
            signature,
            cid: cid_of(1, Codec::DagCbor, &bytes),
            bytes,
        })
    }

    /// Decode a root document and verify the registry key's signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedIndex, IndexError> {
        let cid = cid_of(1, Codec::DagCbor, bytes);
        let decode_err = |reason: String| IndexError::Decode {
            what: "registry index",
            cid,
            reason,
        };
        let wire: RootWire = cbor::decode_canonical(bytes, MAX_ROOT_BYTES).map_err(decode_err)?;
        if wire.version != INDEX_FORMAT_VERSION {
            return Err(decode_err(format!(
                "index format version {} is not supported (this ipkg reads {INDEX_FORMAT_VERSION}); upgrade ipkg",
                wire.version
            )));
        }
        for name in wire.packages.keys() {
            manifest::check_package_name(name).map_err(decode_err)?;
        }
        let key = PublicKey::from_canonical_name(&wire.registry)
            .map_err(|e| decode_err(format!("registry: {e}")))?;
        let root = IndexRoot {
            version: wire.version,
            registry: wire.registry,
            sequence: wire.sequence,
            time: wire.time,
            expires: wire.expires,
            previous: wire.previous,
            packages: wire.packages,
            succession: wire.succession,
        };
        let bad = || IndexError::BadSignature {
            registry: root.registry.clone(),
            sequence: root.sequence,
            cid,
        };
        let signature = wire.signature.ok_or_else(bad)?;
        key.verify(&root.signing_bytes()?, &signature)
            .map_err(|_| bad())?;
        Ok(SignedIndex {
            root,
            signature,
            bytes: bytes.to_vec(),
            cid,
        })
    }

    pub fn root(&self) -> &IndexRoot {
        &self.root
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The DAG-CBOR block whose CID is [`Self::cid`].
    pub fn encode(&self) -> &[u8] {
        &self.bytes
    }

    pub fn cid(&self) -> Cid {
        self.cid
    }

    /// Package documents that differ from those in `older` (all of them if
    /// there is none): what a refresh must fetch.
    pub fn changed_since(&self, older: Option<&SignedIndex>) -> Vec<(String, Cid)> {
        self.root
            .packages
            .iter()
            .filter(|(name, cid)| older.and_then(|o| o.root.packages.get(*name)) != Some(*cid))
            .map(|(n, c)| (n.clone(), *c))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Client checks.

/// What the client remembers about a registry's last accepted index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub sequence: u64,
    pub cid: Cid,
}

/// The inputs of [`check_update`].
#[derive(Debug, Clone, Copy)]
pub struct UpdateCheck<'a> {
    /// The pinned registry key name (`k51…`).
    pub registry: &'a str,
    /// The last index accepted from this registry, if any.
    pub seen: Option<Seen>,
    /// Current time, Unix seconds.
    pub now: i64,
    /// Accept an expired index (the user asked to).
    pub allow_expired: bool,
    /// Key succession statements available for the registry key.
    pub successions: &'a [KeySuccession],
}

/// What [`check_update`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Nothing was seen before; the index is accepted.
    First,
    /// The same index as last time.
    Unchanged,
    /// A newer index.
    Advanced { from: u64, to: u64 },
}

/// Decide whether a verified index may replace the last one seen: signed by the
/// pinned registry key (or a successor it named: see the returned key name),
/// sequence not lower, no different document with the same sequence, not
/// expired unless allowed. Returns the outcome and the registry key name to pin
/// from now on.
pub fn check_update(
    check: &UpdateCheck<'_>,
    new: &SignedIndex,
) -> Result<(UpdateOutcome, String), IndexError> {
    let root = new.root();
    if root.registry != check.registry
        && !succeeds(check.registry, &root.registry, check.successions)
    {
        return Err(IndexError::WrongRegistry {
            expected: check.registry.to_owned(),
            signer: root.registry.clone(),
        });
    }
    let outcome = match check.seen {
        None => UpdateOutcome::First,
        Some(seen) if root.sequence < seen.sequence => {
            return Err(IndexError::Rollback {
                registry: root.registry.clone(),
                seen: seen.sequence,
                got: root.sequence,
            });
        }
        Some(seen) if root.sequence == seen.sequence => {
            if seen.cid != new.cid() {
                return Err(IndexError::Fork {
                    registry: root.registry.clone(),
                    sequence: root.sequence,
                    seen: seen.cid,
                    got: new.cid(),
                });
            }
            UpdateOutcome::Unchanged
        }
        Some(seen) => UpdateOutcome::Advanced {
            from: seen.sequence,
            to: root.sequence,
        },
    };
    if root.expires <= check.now && !check.allow_expired {
        return Err(IndexError::Expired {
            registry: root.registry.clone(),
            sequence: root.sequence,
            expires: format_time(root.expires),
            now: format_time(check.now),
        });
    }
    Ok((outcome, root.registry.clone()))
}

// ---------------------------------------------------------------------------
// Building and updating (the publisher's side).

/// What the index shows about a package besides its releases; taken from the
/// manifest of the newest release.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageInfo {
    pub description: String,
    pub commands: Vec<String>,
}

impl PackageInfo {
    pub fn from_manifest(m: &Manifest) -> PackageInfo {
        PackageInfo {
            description: m.package.description.clone().unwrap_or_default(),
            commands: m.commands.keys().cloned().collect(),
        }
    }
}

/// What [`RegistryIndex::add_release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// This very statement was already there.
    AlreadyPresent,
    /// A statement for the same package tree was there; the entry now links
    /// the new statement (re-signing after a key rotation).
    Resigned,
}

/// A signed index and every package document it links.
#[derive(Debug, Clone)]
pub struct PublishedIndex {
    pub root: SignedIndex,
    /// Package documents (including unchanged ones; their CIDs are stable).
    pub documents: Vec<Block>,
}

/// An editable registry index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryIndex {
    registry: String,
    last: Option<Seen>,
    packages: BTreeMap<String, PackageDoc>,
    succession: Option<Cid>,
}

impl RegistryIndex {
    /// An empty index for the registry key named `registry` (`k51…`).
    pub fn new(registry: &str) -> Result<RegistryIndex, IndexError> {
        PublicKey::from_canonical_name(registry).map_err(|e| IndexError::Invalid {
            what: "registry".into(),
            reason: e.to_string(),
        })?;
        Ok(RegistryIndex {
            registry: registry.to_owned(),
            last: None,
            packages: BTreeMap::new(),
            succession: None,
        })
    }

    /// Load a published index; `fetch` returns a package document's bytes.
    pub fn load(
        root: &SignedIndex,
        fetch: &dyn Fn(&Cid) -> Option<Vec<u8>>,
    ) -> Result<RegistryIndex, IndexError> {
        let mut packages = BTreeMap::new();
        for (name, cid) in &root.root().packages {
            let bytes = fetch(cid).ok_or_else(|| IndexError::MissingDoc {
                name: name.clone(),
                cid: *cid,
            })?;
            packages.insert(name.clone(), PackageDoc::decode_linked(&bytes, name, cid)?);
        }
        Ok(RegistryIndex {
            registry: root.root().registry.clone(),
            last: Some(Seen {
                sequence: root.root().sequence,
                cid: root.cid(),
            }),
            packages,
            succession: root.root().succession,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn packages(&self) -> &BTreeMap<String, PackageDoc> {
        &self.packages
    }

    pub fn package(&self, name: &str) -> Option<&PackageDoc> {
        self.packages.get(name)
    }

    /// Add a signed release. The first release of a package sets its
    /// publisher; later ones must be signed by it. Publishing a (version,
    /// target) again is refused unless it is the same package tree.
    pub fn add_release(
        &mut self,
        release: &SignedRelease,
        info: &PackageInfo,
    ) -> Result<AddOutcome, IndexError> {
        let r = release.release();
        let doc = self
            .packages
            .entry(r.name.clone())
            .or_insert_with(|| PackageDoc {
                name: r.name.clone(),
                publisher: r.publisher.clone(),
                description: String::new(),
                commands: Vec::new(),
                releases: Vec::new(),
                successions: Vec::new(),
            });
        if doc.publisher != r.publisher {
            return Err(IndexError::PublisherMismatch {
                name: r.name.clone(),
                version: r.version.clone(),
                signer: r.publisher.clone(),
                publisher: doc.publisher.clone(),
            });
        }
        if let Some(existing) = doc
            .releases
            .iter_mut()
            .find(|e| e.version == r.version && e.target == r.target)
        {
            if existing.release == release.cid() {
                return Ok(AddOutcome::AlreadyPresent);
            }
            if existing.package == r.package {
                // The same tree in a new statement, e.g. re-signed by the
                // publisher's new key after a rotation.
                existing.release = release.cid();
                return Ok(AddOutcome::Resigned);
            }
            return Err(IndexError::VersionExists {
                name: r.name.clone(),
                version: r.version.clone(),
                target: r.target.clone(),
                existing: existing.release,
            });
        }
        let newest = doc.releases.iter().all(|e| e.version <= r.version);
        if newest {
            doc.description = info.description.clone();
            doc.commands = info.commands.clone();
        }
        let entry = ReleaseEntry {
            version: r.version.clone(),
            target: r.target.clone(),
            release: release.cid(),
            package: r.package,
            yanked: false,
        };
        let at = doc
            .releases
            .partition_point(|e| (&e.version, &e.target) < (&entry.version, &entry.target));
        doc.releases.insert(at, entry);
        // Validate what a client will check, so a bad value fails here.
        doc.validate()?;
        Ok(AddOutcome::Added)
    }

    /// Mark every release of `name version` (or only the one for `target`)
    /// yanked or not. Returns how many entries changed.
    pub fn yank(
        &mut self,
        name: &str,
        version: &semver::Version,
        target: Option<&str>,
        yanked: bool,
    ) -> Result<usize, IndexError> {
        let doc = self
            .packages
            .get_mut(name)
            .ok_or_else(|| IndexError::NoSuchPackage {
                name: name.to_owned(),
            })?;
        let mut matched = 0;
        let mut changed = 0;
        for e in doc
            .releases
            .iter_mut()
            .filter(|e| e.version == *version && target.is_none_or(|t| t == e.target))
        {
            matched += 1;
            if e.yanked != yanked {
                e.yanked = yanked;
                changed += 1;
            }
        }
        if matched == 0 {
            return Err(IndexError::NoSuchVersion {
                name: name.to_owned(),
                version: version.clone(),
            });
        }
        Ok(changed)
    }

    /// Hand package `name` to the key a succession statement names. The
    /// statement must start at the current publisher; its block must be
    /// published with the index.
    pub fn rotate_publisher(
        &mut self,
        name: &str,
        statement: &KeySuccession,
    ) -> Result<(), IndexError> {
        let doc = self
            .packages
            .get_mut(name)
            .ok_or_else(|| IndexError::NoSuchPackage {
                name: name.to_owned(),
            })?;
        if statement.old() != doc.publisher {
            return Err(IndexError::SuccessionMismatch {
                old: statement.old().to_owned(),
                new: statement.new_key().to_owned(),
                current: doc.publisher.clone(),
            });
        }
        doc.publisher = statement.new_key().to_owned();
        doc.successions.push(statement.cid());
        Ok(())
    }

    /// Move the registry itself to a new key. The next index is signed by
    /// the new key and links the statement in its `succession` field.
    pub fn rotate_registry(&mut self, statement: &KeySuccession) -> Result<(), IndexError> {
        if statement.old() != self.registry {
            return Err(IndexError::SuccessionMismatch {
                old: statement.old().to_owned(),
                new: statement.new_key().to_owned(),
                current: self.registry.clone(),
            });
        }
        self.registry = statement.new_key().to_owned();
        self.succession = Some(statement.cid());
        Ok(())
    }

    /// Sign the next index: sequence one above the last, `previous` linking
    /// it. Afterwards this value stands for the new index.
    pub fn sign(
        &mut self,
        key: &Keypair,
        now: i64,
        expires: i64,
    ) -> Result<PublishedIndex, IndexError> {
        if expires <= now {
            return Err(IndexError::Invalid {
                what: format!("registry index {}", self.registry),
                reason: format!(
                    "it would expire at {}, not after it is signed at {}",
                    format_time(expires),
                    format_time(now)
                ),
            });
        }
        let mut documents = Vec::with_capacity(self.packages.len());
        let mut packages = BTreeMap::new();
        for (name, doc) in &self.packages {
            let block = doc.to_block()?;
            packages.insert(name.clone(), block.cid);
            documents.push(block);
        }
        let sequence = match self.last {
            Some(seen) => seen
                .sequence
                .checked_add(1)
                .ok_or_else(|| IndexError::Invalid {
                    what: format!("registry index {}", self.registry),
                    reason: "the sequence number is exhausted".into(),
                })?,
            None => 1,
        };
        let root = SignedIndex::sign(
            IndexRoot {
                version: INDEX_FORMAT_VERSION,
                registry: self.registry.clone(),
                sequence,
                time: now,
                expires,
                previous: self.last.map(|s| s.cid),
                packages,
                succession: self.succession,
            },
            key,
        )?;
        self.last = Some(Seen {
            sequence,
            cid: root.cid(),
        });
        Ok(PublishedIndex { root, documents })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::Release;

    fn rel(key: &Keypair, name: &str, v: &str, tree: &[u8]) -> SignedRelease {
        SignedRelease::sign(
            Release {
                name: name.into(),
                version: semver::Version::parse(v).unwrap(),
                package: cid_of(1, Codec::DagPb, tree),
                target: "x86_64-linux".into(),
                publisher: key.ipns_name(),
                previous: None,
                time: 100,
            },
            key,
        )
        .unwrap()
    }

    fn info() -> PackageInfo {
        PackageInfo {
            description: "a tool".into(),
            commands: vec!["xmr".into()],
        }
    }

    #[test]
    fn build_sign_load_round_trip() {
        let reg = Keypair::from_seed(&[10; 32]);
        let alice = Keypair::from_seed(&[11; 32]);
        let mut idx = RegistryIndex::new(&reg.ipns_name()).unwrap();
        idx.add_release(&rel(&alice, "xmr", "1.0.0", b"a"), &info())
            .unwrap();
        idx.add_release(&rel(&alice, "other", "0.1.0", b"o"), &info())
            .unwrap();
        let p1 = idx.sign(&reg, 1000, 2000).unwrap();
        assert_eq!(p1.root.root().sequence, 1);
        let decoded = SignedIndex::decode(p1.root.encode()).unwrap();
        assert_eq!(decoded, p1.root);
        let docs: BTreeMap<Cid, Vec<u8>> = p1
            .documents
            .iter()
            .map(|b| (b.cid, b.data.clone()))
            .collect();
        let mut loaded = RegistryIndex::load(&decoded, &|c| docs.get(c).cloned()).unwrap();
        loaded
            .add_release(&rel(&alice, "xmr", "1.1.0", b"b"), &info())
            .unwrap();
        let p2 = loaded.sign(&reg, 1100, 2100).unwrap();
        assert_eq!(p2.root.root().sequence, 2);
        assert_eq!(p2.root.root().previous, Some(p1.root.cid()));
        // Only the changed package has a new document.
        let changed = p2.root.changed_since(Some(&p1.root));
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0, "xmr");
    }

    #[test]
    fn republish_refused_and_yank() {
        let reg = Keypair::from_seed(&[10; 32]);
        let alice = Keypair::from_seed(&[11; 32]);
        let mut idx = RegistryIndex::new(&reg.ipns_name()).unwrap();
        let r = rel(&alice, "xmr", "1.0.0", b"a");
        assert_eq!(idx.add_release(&r, &info()).unwrap(), AddOutcome::Added);
        assert_eq!(
            idx.add_release(&r, &info()).unwrap(),
            AddOutcome::AlreadyPresent
        );
        let e = idx
            .add_release(&rel(&alice, "xmr", "1.0.0", b"different"), &info())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("xmr 1.0.0 (x86_64-linux) is already published"),
            "{e}"
        );
        let v = semver::Version::new(1, 0, 0);
        assert_eq!(idx.yank("xmr", &v, None, true).unwrap(), 1);
        assert!(
            idx.package("xmr")
                .unwrap()
                .latest(&semver::VersionReq::STAR, "x86_64-linux")
                .is_none()
        );
        assert!(
            idx.yank("xmr", &semver::Version::new(9, 0, 0), None, true)
                .is_err()
        );
        let mallory = Keypair::from_seed(&[12; 32]);
        let e = idx
            .add_release(&rel(&mallory, "xmr", "2.0.0", b"m"), &info())
            .unwrap_err()
            .to_string();
        assert!(e.contains("but the package publisher is"), "{e}");
    }

    #[test]
    fn update_rules() {
        let reg = Keypair::from_seed(&[10; 32]);
        let mut idx = RegistryIndex::new(&reg.ipns_name()).unwrap();
        let p1 = idx.sign(&reg, 1000, 2000).unwrap();
        let p2 = idx.sign(&reg, 1001, 2001).unwrap();
        let name = reg.ipns_name();
        let base = UpdateCheck {
            registry: &name,
            seen: None,
            now: 1500,
            allow_expired: false,
            successions: &[],
        };
        assert_eq!(
            check_update(&base, &p1.root).unwrap().0,
            UpdateOutcome::First
        );
        let seen2 = UpdateCheck {
            seen: Some(Seen {
                sequence: 2,
                cid: p2.root.cid(),
            }),
            ..base
        };
        let e = check_update(&seen2, &p1.root).unwrap_err().to_string();
        assert!(e.contains("went back from sequence 2 to 1"), "{e}");
        assert_eq!(
            check_update(&seen2, &p2.root).unwrap().0,
            UpdateOutcome::Unchanged
        );
        let late = UpdateCheck { now: 5000, ..base };
        let e = check_update(&late, &p2.root).unwrap_err().to_string();
        assert!(e.contains("expired at 1970-01-01T00:33:21Z"), "{e}");
        assert!(
            check_update(
                &UpdateCheck {
                    allow_expired: true,
                    ..late
                },
                &p2.root
            )
            .is_ok()
        );
        let other = Keypair::from_seed(&[13; 32]);
        let mut idx2 = RegistryIndex::new(&other.ipns_name()).unwrap();
        let q = idx2.sign(&other, 1000, 2000).unwrap();
        let e = check_update(&base, &q.root).unwrap_err().to_string();
        assert!(e.contains("but the pinned registry key is"), "{e}");
    }
}

//! Publishing and keys: everything a maintainer does.
//!
//! - this module: `ipkg publish`, pack, sign the release, sign the next index;
//! - [`pack`](mod@pack): `ipkg pack` and `ipkg init`, a package directory to its CID;
//! - [`registry`]: the registries this host publishes, on local disk;
//! - [`keystore`]: the maintainer's signing keys in the config directory.
//!
//! Owns the private keys and the registries' `registry.toml` files; it is the
//! only capability that signs anything. Must not touch: installed state
//! ([`super::lifecycle`]), the registries this host *installs from*
//! ([`super::resolve::subscriptions`]) or the network (pushing to Kubo and
//! publishing IPNS records go through [`super::resolve`]).
//!
//! # `ipkg publish`
//!
//! `ipkg publish`: pack a package, sign its release, and sign the registry's
//! next index (`spec/manifest.md` §5 and §7.3).
//!
//! Order of work, so that a failure at any step leaves the registry as it was:
//! pack into the store, sign and store the release statement, sign the index
//! and store its blocks, pin everything with `registry/NAME`, and only then
//! replace `registry.toml` (atomically). Blocks written by a failed publish are
//! unpinned and go with the next `ipkg gc`.
//!
//! A published (version, target) never changes: publishing it again with
//! another tree is refused, with the same tree it is a no-op.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::content::cid::{Block, Cid};
use crate::sources::store::{BlockStore, StoreLock};
use crate::trust::index::{PackageInfo, RegistryIndex, SignedIndex};
use crate::trust::keys::Keypair;
use crate::trust::release::{Release, SignedRelease};
use crate::trust::succession::KeySuccession;

use self::keystore::KeyStore;
use self::pack::pack;
use self::registry::{Registry, pin_label};
use super::pins::Pins;
use super::{Error, Layout, NoProgress, Progress};

pub mod keystore;
pub mod pack;
pub mod registry;

/// Default lifetime of a signed index.
pub const DEFAULT_EXPIRES_DAYS: u64 = 90;

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What `ipkg publish` was asked to do.
#[derive(Debug, Clone)]
pub struct PublishOptions<'a> {
    pub registry: &'a str,
    /// The publisher key's local name; the registry's key when `None`.
    pub key: Option<&'a str>,
    pub expires_in_days: u64,
}

/// One release statement that was published (or already there).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub name: String,
    pub version: String,
    pub target: String,
    pub package: String,
    pub release: String,
    /// False when this exact tree was already published under this version.
    pub new: bool,
}

/// What a publish or yank did to the registry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    pub registry: String,
    pub ipns: String,
    pub releases: Vec<Published>,
    /// The new index root, when one was signed.
    pub index: Option<String>,
    pub sequence: u64,
    /// Whether an IPNS record for the index was written.
    pub ipns_record: bool,
}

/// Everything a registry mutation holds while it runs.
struct Session {
    registry: Registry,
    store: BlockStore,
    pins: Pins,
    registry_key: Keypair,
    index: RegistryIndex,
    _lock: StoreLock,
}

impl Session {
    fn open(layout: &Layout, keys: &KeyStore, name: &str) -> Result<Session, Error> {
        let registry = Registry::open(layout, name)?;
        let lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        let pins = Pins::open(layout.pins_dir())?;
        let registry_key = keys.load(&registry.state.key)?;
        if registry_key.ipns_name() != registry.state.ipns {
            return Err(Error::Usage(format!(
                "key `{}` is {}, but registry `{name}` belongs to {}",
                registry.state.key,
                registry_key.ipns_name(),
                registry.state.ipns
            )));
        }
        let index = registry.load_index(&store)?;
        Ok(Session {
            registry,
            store,
            pins,
            registry_key,
            index,
            _lock: lock,
        })
    }

    fn put(&self, block: &Block) -> Result<(), Error> {
        self.store
            .put_trusted(&block.cid, &block.data)
            .map_err(|e| Error::io(self.store.dir(), e))?;
        Ok(())
    }

    fn pin(&self, cid: &Cid) -> Result<(), Error> {
        self.pins.add(cid, &pin_label(&self.registry.name))
    }

    /// Sign, store and pin the next index, then record it in `registry.toml`.
    fn commit(&mut self, expires_in_days: u64) -> Result<(SignedIndex, bool), Error> {
        let now = now();
        let expires = now.saturating_add((expires_in_days as i64).saturating_mul(86_400));
        let published = self
            .index
            .sign(&self.registry_key, now, expires)
            .map_err(|source| Error::Index {
                registry: self.registry.name.clone(),
                source: Box::new(source),
            })?;
        for doc in &published.documents {
            self.put(doc)?;
            self.pin(&doc.cid)?;
        }
        let root = published.root;
        self.put(&Block {
            cid: root.cid(),
            data: root.encode().to_vec(),
        })?;
        self.store
            .sync()
            .map_err(|e| Error::io(self.store.dir(), e))?;
        self.pin(&root.cid())?;
        let record = make_ipns_record(&self.registry_key, &root.cid(), root.root().sequence)?;
        if let Some(bytes) = &record {
            let path = self.registry.dir.join("ipns-record");
            super::pins::write_atomic(&path, bytes).map_err(|e| Error::io(path, e))?;
        }
        self.registry.state.root = Some(root.cid().to_string());
        self.registry.state.sequence = root.root().sequence;
        self.registry.save()?;
        Ok((root, record.is_some()))
    }

    fn report(&self, releases: Vec<Published>, root: Option<(SignedIndex, bool)>) -> PublishReport {
        PublishReport {
            registry: self.registry.name.clone(),
            ipns: self.registry.state.ipns.clone(),
            releases,
            index: root.as_ref().map(|(r, _)| r.cid().to_string()),
            sequence: self.registry.state.sequence,
            ipns_record: root.is_some_and(|(_, rec)| rec),
        }
    }
}

/// Pack `dir`, sign a release for each of its targets and publish them.
pub fn publish(
    layout: &Layout,
    keys: &KeyStore,
    dir: &Path,
    opts: &PublishOptions<'_>,
    progress: &dyn Progress,
) -> Result<PublishReport, Error> {
    let mut s = Session::open(layout, keys, opts.registry)?;
    let publisher = match opts.key {
        Some(name) => keys.load(name)?,
        None => s.registry_key.clone(),
    };
    let packed = {
        let mut sink = s.store.sink();
        pack(dir, &mut sink, progress)?
    };
    s.store.sync().map_err(|e| Error::io(s.store.dir(), e))?;
    let m = &packed.manifest;
    let info = PackageInfo::from_manifest(m);
    let mut releases = Vec::new();
    let mut changed = false;
    for target in &m.package.targets {
        let existing = s
            .index
            .package(&m.package.name)
            .and_then(|doc| doc.find(&m.package.version, target).map(|e| (doc, e)));
        if let Some((doc, e)) = existing
            && e.package == packed.cid
            && doc.publisher == publisher.ipns_name()
        {
            releases.push(Published {
                name: m.package.name.clone(),
                version: m.package.version.to_string(),
                target: target.clone(),
                package: packed.cid.to_string(),
                release: e.release.to_string(),
                new: false,
            });
            continue;
        }
        // The statement this one follows: the newest earlier release.
        let previous = s.index.package(&m.package.name).and_then(|doc| {
            doc.releases
                .iter()
                .filter(|e| &e.target == target && e.version < m.package.version)
                .max_by(|a, b| a.version.cmp(&b.version))
                .map(|e| e.release)
        });
        let signed = SignedRelease::sign(
            Release {
                name: m.package.name.clone(),
                version: m.package.version.clone(),
                package: packed.cid,
                target: target.clone(),
                publisher: publisher.ipns_name(),
                previous,
                time: now(),
            },
            &publisher,
        )
        .map_err(|source| Error::Release {
            registry: s.registry.name.clone(),
            cid: format!("{} {}", m.package.name, m.package.version),
            source: Box::new(source),
        })?;
        s.index
            .add_release(&signed, &info)
            .map_err(|source| Error::Index {
                registry: s.registry.name.clone(),
                source: Box::new(source),
            })?;
        s.put(&Block {
            cid: signed.cid(),
            data: signed.encode().to_vec(),
        })?;
        releases.push(Published {
            name: m.package.name.clone(),
            version: m.package.version.to_string(),
            target: target.clone(),
            package: packed.cid.to_string(),
            release: signed.cid().to_string(),
            new: true,
        });
        changed = true;
    }
    s.pin(&packed.cid)?;
    for r in &releases {
        if let Ok(cid) = crate::content::cid::parse(&r.release) {
            s.pin(&cid)?;
        }
    }
    let root = if changed {
        Some(s.commit(opts.expires_in_days)?)
    } else {
        None
    };
    Ok(s.report(releases, root))
}

/// Mark `package version` yanked (or not) in a new signed index.
pub fn yank(
    layout: &Layout,
    keys: &KeyStore,
    registry: &str,
    package: &str,
    version: &semver::Version,
    yanked: bool,
    expires_in_days: u64,
) -> Result<(PublishReport, usize), Error> {
    let mut s = Session::open(layout, keys, registry)?;
    let changed = s
        .index
        .yank(package, version, None, yanked)
        .map_err(|source| Error::Index {
            registry: registry.to_owned(),
            source: Box::new(source),
        })?;
    let root = if changed > 0 {
        Some(s.commit(expires_in_days)?)
    } else {
        None
    };
    Ok((s.report(Vec::new(), root), changed))
}

/// Hand every registry owned by `old` to `new` (and the packages `old`
/// publishes in them), linking `statement`, and sign each one's next index
/// with the new key.
pub fn rotate_registries(
    layout: &Layout,
    keys: &KeyStore,
    statement: &KeySuccession,
    new_key_name: &str,
) -> Result<Vec<PublishReport>, Error> {
    let mut out = Vec::new();
    for reg in Registry::list(layout)? {
        if reg.state.ipns != statement.old() {
            continue;
        }
        let mut s = Session::open(layout, keys, &reg.name)?;
        let stmt = Block {
            cid: statement.cid(),
            data: statement.encode().to_vec(),
        };
        s.put(&stmt)?;
        s.pin(&stmt.cid)?;
        let err = |source| Error::Index {
            registry: reg.name.clone(),
            source: Box::new(source),
        };
        let names: Vec<String> = s
            .index
            .packages()
            .values()
            .filter(|d| d.publisher == statement.old())
            .map(|d| d.name.clone())
            .collect();
        for name in names {
            s.index.rotate_publisher(&name, statement).map_err(err)?;
        }
        s.index.rotate_registry(statement).map_err(err)?;
        s.registry_key = keys.load(new_key_name)?;
        s.registry.state.key = new_key_name.to_owned();
        s.registry.state.ipns = statement.new_key().to_owned();
        let root = s.commit(DEFAULT_EXPIRES_DAYS)?;
        out.push(s.report(Vec::new(), Some(root)));
    }
    Ok(out)
}

/// The IPNS record pointing the registry's name at `/ipfs/<root>`, valid as
/// long as the index. Its sequence is the index's, so a client that remembers
/// the highest sequence seen refuses an older record as it refuses an older
/// index.
fn make_ipns_record(key: &Keypair, root: &Cid, sequence: u64) -> Result<Option<Vec<u8>>, Error> {
    let value = format!("/ipfs/{root}");
    let validity = Duration::from_secs(DEFAULT_EXPIRES_DAYS * 86_400);
    let ttl = Duration::from_secs(300);
    let record = crate::names::ipns::Record::create(key, &value, sequence, validity, ttl)
        .map_err(|e| Error::Usage(format!("cannot make the IPNS record for `{value}`: {e}")))?;
    Ok(Some(record.to_bytes()))
}

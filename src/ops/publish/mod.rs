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
//! A publish is a transaction on one registry. It holds the registry's lock
//! (an `flock(2)` on `registries/NAME/lock`) from before it reads
//! `registry.toml` until it is done, so two publishes at once run one after
//! the other and neither loses the other's release. Order of work:
//!
//! 1. pack into the store, sign and store the release statements, pin them;
//! 2. **reserve** the next sequence N in `journal.json` (fsynced) before
//!    anything is signed with it;
//! 3. sign the index with sequence N, store and pin its blocks, fsync;
//! 4. record the signed root's CID in the journal: **the commit point**;
//! 5. write the IPNS record, then `registry.toml`, then delete the journal.
//!
//! Recovery ([`recover`], run by the next publish, yank, `registry` command or
//! `doctor`, under the lock): a journal naming a root whose block is in the
//! store is completed (steps 5, same content, same sequence); a journal with
//! only a reservation is rolled back, and N is remembered in `registry.toml`
//! as `reserved` so the next index is signed with N+1: a sequence is never
//! signed twice for different content, whatever moment a kill came.
//!
//! For crash tests, `IPKG_TEST_CRASH_AT=publish-<step>` kills ipkg right after
//! a step (see [`STEPS`]); it has no other effect.
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
use self::registry::{Registry, RegistryLock, pin_label};
use super::lifecycle::journal::crash_point;
use super::pins::{Pins, write_atomic};
use super::{Error, Layout, NoProgress, Progress};

pub mod keystore;
pub mod pack;
pub mod registry;

/// The test-only crash points of a publish, in order.
pub const STEPS: [&str; 8] = [
    "publish-pack",
    "publish-release",
    "publish-reserve",
    "publish-blocks",
    "publish-commit",
    "publish-record",
    "publish-registry",
    "publish-done",
];

/// `registries/NAME/journal.json`: a publish under way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PublishJournal {
    /// The sequence reserved for the new index.
    sequence: u64,
    /// The registry key's local name and IPNS name after the publish (a key
    /// rotation changes them).
    key: String,
    ipns: String,
    /// The signed root, once it is in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root: Option<String>,
}

fn journal_path(reg: &Registry) -> std::path::PathBuf {
    reg.dir.join("journal.json")
}

fn write_journal(reg: &Registry, j: &PublishJournal) -> Result<(), Error> {
    let path = journal_path(reg);
    let text = serde_json::to_vec_pretty(j).map_err(|e| Error::Usage(e.to_string()))?;
    write_atomic(&path, &text).map_err(|e| Error::io(path, e))
}

/// What [`recover`] did with an interrupted publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishRecovered {
    /// The index had been signed and stored: the publish was completed.
    Completed { sequence: u64 },
    /// It had only been reserved: the publish was undone, the sequence is
    /// skipped.
    Skipped { sequence: u64 },
}

/// Finish or undo a publish that a killed process left in `reg`'s journal.
/// Call with the registry's lock held.
pub fn recover(
    reg: &mut Registry,
    keys: &KeyStore,
    store: &BlockStore,
) -> Result<Option<PublishRecovered>, Error> {
    let path = journal_path(reg);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let j: PublishJournal = serde_json::from_slice(&text).map_err(|e| Error::Damaged {
        what: format!("the publish journal of registry `{}`", reg.name),
        path: path.clone(),
        reason: e.to_string(),
        fix: format!(
            "run `ipkg registry repair {}`: it rebuilds the registry from the last signed index in the store",
            reg.name
        ),
    })?;
    let signed = j
        .root
        .as_deref()
        .and_then(|r| crate::content::cid::parse(r).ok())
        .and_then(|cid| store.get(&cid).ok())
        .and_then(|b| SignedIndex::decode(&b).ok())
        .filter(|root| root.root().sequence == j.sequence && root.root().registry == j.ipns);
    let outcome = match signed {
        Some(root) => {
            let key = keys.load(&j.key)?;
            write_record(reg, &key, &root)?;
            reg.state.key = j.key;
            reg.state.ipns = j.ipns;
            reg.state.root = Some(root.cid().to_string());
            reg.state.sequence = j.sequence;
            PublishRecovered::Completed {
                sequence: j.sequence,
            }
        }
        None => PublishRecovered::Skipped {
            sequence: j.sequence,
        },
    };
    reg.state.reserved = reg.state.reserved.max(j.sequence);
    reg.save()?;
    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    Ok(Some(outcome))
}

/// Registry `name` with an interrupted publish finished or undone first (for
/// the `registry` commands that read it: `verify`, `export`, `list`).
pub fn open_settled(layout: &Layout, name: &str) -> Result<Registry, Error> {
    let reg = Registry::open(layout, name)?;
    if !journal_path(&reg).exists() {
        return Ok(reg);
    }
    let _registry_lock = RegistryLock::exclusive(layout, name)?;
    let mut reg = Registry::open(layout, name)?;
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    recover(&mut reg, &KeyStore::open_default()?, &store)?;
    Ok(reg)
}

/// Write the IPNS record of `root` unless the one on disk already names it.
fn write_record(reg: &Registry, key: &Keypair, root: &SignedIndex) -> Result<(), Error> {
    let path = reg.dir.join("ipns-record");
    let value = format!("/ipfs/{}", root.cid());
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(rec) = crate::names::ipns::Record::decode(&bytes)
        && rec.value.as_deref() == Some(value.as_bytes())
        && rec.sequence == Some(root.root().sequence)
    {
        return Ok(());
    }
    if let Some(bytes) = make_ipns_record(key, &root.cid(), root.root().sequence)? {
        write_atomic(&path, &bytes).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

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
    _registry_lock: RegistryLock,
}

impl Session {
    fn open(layout: &Layout, keys: &KeyStore, name: &str) -> Result<Session, Error> {
        let registry_lock = RegistryLock::exclusive(layout, name)?;
        let mut registry = Registry::open(layout, name)?;
        let lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        recover(&mut registry, keys, &store)?;
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
            _registry_lock: registry_lock,
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

    /// Reserve a sequence, sign, store and pin the next index, commit it in
    /// the journal, then write the IPNS record and `registry.toml`.
    fn commit(&mut self, expires_in_days: u64) -> Result<(SignedIndex, bool), Error> {
        let now = now();
        let expires = now.saturating_add((expires_in_days as i64).saturating_mul(86_400));
        let index_err = |reg: &str, source| Error::Index {
            registry: reg.to_owned(),
            source: Box::new(source),
        };
        let min = self.registry.state.reserved.saturating_add(1);
        let sequence = self
            .index
            .next_sequence()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "registry `{}`: the sequence number is exhausted",
                    self.registry.name
                ))
            })?
            .max(min);
        let mut journal = PublishJournal {
            sequence,
            key: self.registry.state.key.clone(),
            ipns: self.registry.state.ipns.clone(),
            root: None,
        };
        write_journal(&self.registry, &journal)?;
        crash_point("publish-reserve");
        let published = self
            .index
            .sign_at_least(&self.registry_key, now, expires, sequence)
            .map_err(|e| index_err(&self.registry.name, e))?;
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
        crash_point("publish-blocks");
        journal.root = Some(root.cid().to_string());
        write_journal(&self.registry, &journal)?;
        crash_point("publish-commit");
        write_record(&self.registry, &self.registry_key, &root)?;
        crash_point("publish-record");
        self.registry.state.root = Some(root.cid().to_string());
        self.registry.state.sequence = root.root().sequence;
        self.registry.state.reserved = root.root().sequence;
        self.registry.save()?;
        crash_point("publish-registry");
        let path = journal_path(&self.registry);
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        crash_point("publish-done");
        Ok((root, true))
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
    crash_point("publish-pack");
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
    crash_point("publish-release");
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

/// What [`repair`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairReport {
    pub registry: String,
    /// The index `registry.toml` now names (`None`: nothing was published).
    pub root: Option<String>,
    pub sequence: u64,
    /// Damaged files moved aside.
    pub quarantined: Vec<std::path::PathBuf>,
    /// Whether anything had to change.
    pub changed: bool,
}

/// Rebuild `registry.toml` (and the IPNS record) of registry `name` from the
/// newest signed index of it in the store, the truth a damaged file is
/// rebuilt from. A damaged `registry.toml` or journal is moved to
/// `.ipkg/quarantine/`, never deleted.
pub fn repair(layout: &Layout, keys: &KeyStore, name: &str) -> Result<RepairReport, Error> {
    let _registry_lock = RegistryLock::exclusive(layout, name)?;
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let dir = registry::registries_dir(layout).join(name);
    // A file that reads and whose index verifies needs nothing but the
    // journal's recovery.
    if let Ok(mut reg) = Registry::open(layout, name)
        && recover(&mut reg, keys, &store).is_ok()
        && reg.load_index(&store).is_ok()
    {
        return Ok(RepairReport {
            registry: name.to_owned(),
            root: reg.state.root.clone(),
            sequence: reg.state.sequence,
            quarantined: Vec::new(),
            changed: false,
        });
    }
    let label = pin_label(name);
    let pins = Pins::open(layout.pins_dir())?;
    let mut best: Option<SignedIndex> = None;
    let mut highest = 0;
    let journal = dir.join("journal.json");
    let journal_root = std::fs::read(&journal)
        .ok()
        .and_then(|t| serde_json::from_slice::<PublishJournal>(&t).ok())
        .map(|j| {
            highest = j.sequence;
            j.root
        });
    let mut candidates: Vec<Cid> = pins
        .list()?
        .into_iter()
        .filter(|(_, labels)| labels.contains(&label))
        .map(|(cid, _)| cid)
        .collect();
    if let Some(Some(root)) = journal_root
        && let Ok(cid) = crate::content::cid::parse(&root)
    {
        candidates.push(cid);
    }
    for cid in candidates {
        let Some(root) = store
            .get(&cid)
            .ok()
            .and_then(|b| SignedIndex::decode(&b).ok())
        else {
            continue;
        };
        highest = highest.max(root.root().sequence);
        if best
            .as_ref()
            .is_none_or(|b| root.root().sequence > b.root().sequence)
        {
            best = Some(root);
        }
    }
    let Some(root) = best else {
        return Err(Error::Usage(format!(
            "registry `{name}`: no signed index of it is in the store, so there is nothing to rebuild `registry.toml` from; remove `{}` and create the registry again with `ipkg registry init`",
            dir.display()
        )));
    };
    let ipns = root.root().registry.clone();
    let key_name = keys.find_by_ipns(&ipns)?.ok_or_else(|| {
        Error::Usage(format!(
            "registry `{name}`: its last index (sequence {}) is signed by `{ipns}`, and no key here has that name; import the key with `ipkg key import` and repair again",
            root.root().sequence
        ))
    })?;
    let key = keys.load(&key_name)?;
    let mut quarantined = Vec::new();
    for file in ["registry.toml", "journal.json"] {
        let path = dir.join(file);
        if path.exists() {
            quarantined.push(super::doctor::quarantine(
                layout,
                &path,
                &format!("registry-{name}-{file}"),
            )?);
        }
    }
    let reg = Registry {
        name: name.to_owned(),
        dir,
        state: registry::RegistryState {
            key: key_name,
            ipns,
            root: Some(root.cid().to_string()),
            sequence: root.root().sequence,
            reserved: highest,
            end: true,
        },
    };
    reg.save()?;
    write_record(&reg, &key, &root)?;
    Ok(RepairReport {
        registry: name.to_owned(),
        root: reg.state.root.clone(),
        sequence: reg.state.sequence,
        quarantined,
        changed: true,
    })
}

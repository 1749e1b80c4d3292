//! Registries this host installs from, found by name over the network
//! (`ipkg registry add ALIAS k51…|DOMAIN`), as opposed to the registries it
//! publishes ([`crate::ops::publish::registry`]).
//!
//! State per subscription, in `<prefix>/.ipkg/state/registries/ALIAS.toml`:
//! the pinned registry key, the DNSLink domain it was added by (the domain →
//! key binding is pinned on first use: a DNSLink that later names another
//! key is refused), the highest `(sequence, root CID)` accepted, the index's
//! expiry, and `trusted` (searched for bare names like `xmr`; a registry
//! added implicitly by installing `k51…/xmr` or `example.org/xmr` is not).
//! The index root is pinned in the store with the label `subscription/ALIAS`
//! (its package documents are reachable from it, so gc keeps them).
//!
//! A refresh (`ipkg update`) resolves the name (DNSLink, then IPNS: see
//! [`super::names`]), fetches the root and the package documents that
//! changed, and accepts the new index only under the client rules of
//! `spec/manifest.md` §8 ([`check_update`]): signed by the pinned key, no
//! lower sequence (a rollback), no second document for the same sequence (a
//! fork), not expired. Loading an index for an install ([`Subscription::load_index`])
//! uses only the store: no network.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::content::Cid;
use crate::content::cid::parse;
use crate::names::dnslink::Target;
use crate::sources::BlockSource;
use crate::sources::store::BlockStore;
use crate::trust::index::{
    IndexError, RegistryIndex, Seen, SignedIndex, UpdateCheck, UpdateOutcome, check_update,
};
use crate::trust::succession::KeySuccession;

use super::{Error, Layout};
use crate::ops::pins::{Pins, write_atomic};
use crate::ops::publish;
use crate::ops::publish::registry::{self, check_registry_name};

/// What `ALIAS.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SubscriptionState {
    /// The registry key (`k51…`), pinned when the registry was added.
    pub ipns: String,
    /// The DNSLink domain it was added by, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Searched for bare package names.
    pub trusted: bool,
    /// The last accepted index root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(default)]
    pub sequence: u64,
    /// When the accepted index expires (Unix seconds).
    #[serde(default)]
    pub expires: i64,
    /// When it was last refreshed (Unix seconds).
    #[serde(default)]
    pub updated: i64,
}

/// A subscribed registry.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub alias: String,
    pub state: SubscriptionState,
    path: PathBuf,
}

/// What a refresh changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RefreshReport {
    pub alias: String,
    pub ipns: String,
    /// The sequence before (none on the first refresh).
    pub from: Option<u64>,
    pub to: u64,
    pub root: String,
    /// Packages that are new or have new or changed releases, as `name
    /// version` of their newest release.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Where the IPNS record came from.
    pub source: String,
}

/// `<prefix>/.ipkg/state/registries`.
pub fn dir(layout: &Layout) -> PathBuf {
    layout.state_root().join("state").join("registries")
}

/// The pin label of a subscription's index.
pub fn pin_label(alias: &str) -> String {
    format!("subscription/{alias}")
}

impl Subscription {
    pub fn ipns(&self) -> &str {
        &self.state.ipns
    }

    pub fn trusted(&self) -> bool {
        self.state.trusted
    }

    fn index_err(&self, source: IndexError) -> Error {
        Error::Index {
            registry: self.alias.clone(),
            source: Box::new(source),
        }
    }

    /// The accepted index root, if any.
    pub fn root_cid(&self) -> Result<Option<Cid>, Error> {
        self.state
            .root
            .as_deref()
            .map(|r| {
                parse(r).map_err(|e| Error::Config {
                    path: self.path.clone(),
                    message: format!("`root`: {e}"),
                })
            })
            .transpose()
    }

    /// Whether the accepted index has expired (or none was accepted yet).
    pub fn stale(&self, now: i64) -> bool {
        self.state.root.is_none() || self.state.expires <= now
    }

    /// The accepted index, verified, from the store alone. `Ok(None)` when
    /// nothing was accepted yet.
    pub fn load_index(&self, store: &BlockStore) -> Result<Option<RegistryIndex>, Error> {
        let Some(cid) = self.root_cid()? else {
            return Ok(None);
        };
        let bytes = store.get(&cid)?;
        let root = SignedIndex::decode(&bytes).map_err(|e| self.index_err(e))?;
        if root.root().registry != self.state.ipns || root.root().sequence != self.state.sequence {
            return Err(self.index_err(IndexError::Invalid {
                what: format!("index {cid}"),
                reason: format!(
                    "it is {} sequence {}, the subscription says {} sequence {}",
                    root.root().registry,
                    root.root().sequence,
                    self.state.ipns,
                    self.state.sequence
                ),
            }));
        }
        let fetch = |c: &Cid| store.get(c).ok();
        RegistryIndex::load(&root, &fetch)
            .map(Some)
            .map_err(|e| self.index_err(e))
    }

    fn save(&self) -> Result<(), Error> {
        let text = toml::to_string(&self.state).map_err(|e| Error::Config {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        write_atomic(&self.path, text.as_bytes()).map_err(|e| Error::io(&self.path, e))
    }
}

/// Every subscription, by alias.
pub fn list(layout: &Layout) -> Result<Vec<Subscription>, Error> {
    let d = dir(layout);
    let entries = match fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&d, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(alias) = name.strip_suffix(".toml") else {
            continue;
        };
        if check_registry_name(alias).is_ok() {
            out.push(open(layout, alias)?);
        }
    }
    out.sort_by(|a, b| a.alias.cmp(&b.alias));
    Ok(out)
}

/// The subscription called `alias`.
pub fn open(layout: &Layout, alias: &str) -> Result<Subscription, Error> {
    check_registry_name(alias)?;
    let path = dir(layout).join(format!("{alias}.toml"));
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::RegistryNotFound {
                name: alias.to_owned(),
            });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let state = toml::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(Subscription {
        alias: alias.to_owned(),
        state,
        path,
    })
}

/// Subscribe to the registry `target` (`k51…`, `/ipns/k51…` or a DNSLink
/// domain) as `alias`, and fetch its index. Nothing is saved if the first
/// refresh fails.
pub fn add(
    layout: &Layout,
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    alias: &str,
    target: &str,
    trusted: bool,
    warn: &dyn Fn(&str),
) -> Result<RefreshReport, Error> {
    check_registry_name(alias)?;
    if registry::Registry::open(layout, alias).is_ok() || open(layout, alias).is_ok() {
        return Err(Error::RegistryExists {
            name: alias.to_owned(),
        });
    }
    let target = target.trim().trim_start_matches("/ipns/");
    let (ipns, domain) = if target.contains('.') {
        (String::new(), Some(target.to_owned()))
    } else {
        crate::trust::keys::PublicKey::from_canonical_name(target).map_err(|e| {
            Error::Usage(format!(
                "`{target}` is neither an IPNS key (`k51…`) nor a domain: {e}"
            ))
        })?;
        (target.to_owned(), None)
    };
    let mut sub = Subscription {
        alias: alias.to_owned(),
        path: dir(layout).join(format!("{alias}.toml")),
        state: SubscriptionState {
            ipns,
            domain,
            trusted,
            root: None,
            sequence: 0,
            expires: 0,
            updated: 0,
        },
    };
    refresh(layout, store, sources, &mut sub, warn)
}

/// Unsubscribe: drop the state and the pin (the blocks go with `ipkg gc`).
pub fn remove(layout: &Layout, alias: &str) -> Result<Subscription, Error> {
    let sub = open(layout, alias)?;
    if let Some(root) = sub.root_cid()? {
        Pins::open(layout.pins_dir())?.remove(&root, &pin_label(alias))?;
    }
    fs::remove_file(&sub.path).map_err(|e| Error::io(&sub.path, e))?;
    Ok(sub)
}

/// One block: the store, else the first source that has it (verified).
fn fetch_block(
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    cid: &Cid,
) -> Result<Vec<u8>, Error> {
    if let Ok(b) = store.get(cid) {
        return Ok(b);
    }
    let mut attempts = Vec::new();
    for s in sources {
        match s.block(cid) {
            Ok(b) => {
                store.put(cid, &b)?;
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

/// Fetch and accept the registry's current index (see the module doc).
pub fn refresh(
    layout: &Layout,
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    sub: &mut Subscription,
    warn: &dyn Fn(&str),
) -> Result<RefreshReport, Error> {
    // DNSLink first: the domain must still name the pinned key.
    if let Some(domain) = sub.state.domain.clone() {
        match super::names::resolve_dnslink(layout, &domain)? {
            Target::Key(k) if sub.state.ipns.is_empty() => sub.state.ipns = k,
            Target::Key(k) if k == sub.state.ipns => {}
            Target::Key(k) => {
                return Err(Error::DnsLinkKeyChanged {
                    domain,
                    pinned: sub.state.ipns.clone(),
                    found: k,
                });
            }
            Target::Ipfs(path) | Target::Domain(path) => {
                return Err(Error::DnsLink {
                    domain,
                    reason: format!(
                        "it names `{path}`; a registry's DNSLink must name its key (`dnslink=/ipns/k51…`)"
                    ),
                });
            }
        }
    }
    let resolved = super::names::resolve_ipns(layout, &sub.state.ipns, warn)?;
    let root_cid = resolved
        .value
        .strip_prefix("/ipfs/")
        .map(|c| c.trim_end_matches('/'))
        .and_then(|c| parse(c).ok())
        .ok_or_else(|| {
            sub.index_err(IndexError::Invalid {
                what: format!("IPNS record of {}", sub.state.ipns),
                reason: format!(
                    "it points at `{}`, not at an index (`/ipfs/<cid>`)",
                    resolved.value
                ),
            })
        })?;
    let old_root = sub.root_cid()?;
    let old_index = match old_root {
        Some(c) => store
            .get(&c)
            .ok()
            .and_then(|b| SignedIndex::decode(&b).ok()),
        None => None,
    };
    let bytes = fetch_block(store, sources, &root_cid)?;
    let new = SignedIndex::decode(&bytes).map_err(|e| sub.index_err(e))?;
    // A registry that moved to a new key links the statement that says so.
    let mut successions = Vec::new();
    if let Some(c) = new.root().succession {
        let b = fetch_block(store, sources, &c)?;
        successions.push(KeySuccession::decode(&b)?);
    }
    let seen = old_root.map(|cid| Seen {
        sequence: sub.state.sequence,
        cid,
    });
    let (outcome, key) = check_update(
        &UpdateCheck {
            registry: &sub.state.ipns,
            seen,
            now: publish::now(),
            allow_expired: false,
            successions: &successions,
        },
        &new,
    )
    .map_err(|e| sub.index_err(e))?;
    for (_, cid) in new.changed_since(old_index.as_ref()) {
        fetch_block(store, sources, &cid)?;
    }
    let fetch = |c: &Cid| store.get(c).ok();
    let index = RegistryIndex::load(&new, &fetch).map_err(|e| sub.index_err(e))?;
    store.sync().map_err(|e| Error::io(store.dir(), e))?;

    let pins = Pins::open(layout.pins_dir())?;
    let label = pin_label(&sub.alias);
    pins.add(&root_cid, &label)?;
    if let Some(old) = old_root.filter(|o| *o != root_cid) {
        pins.remove(&old, &label)?;
    }
    let from = seen.map(|s| s.sequence);
    sub.state.ipns = key;
    sub.state.root = Some(root_cid.to_string());
    sub.state.sequence = new.root().sequence;
    sub.state.expires = new.root().expires;
    sub.state.updated = publish::now();
    sub.save()?;

    let mut report = RefreshReport {
        alias: sub.alias.clone(),
        ipns: sub.state.ipns.clone(),
        from,
        to: new.root().sequence,
        root: root_cid.to_string(),
        source: resolved.from,
        ..RefreshReport::default()
    };
    if outcome != UpdateOutcome::Unchanged {
        for (name, _) in new.changed_since(old_index.as_ref()) {
            let newest = index
                .package(&name)
                .and_then(|d| {
                    d.releases
                        .iter()
                        .filter(|r| !r.yanked)
                        .map(|r| &r.version)
                        .max()
                })
                .map(|v| format!("{name} {v}"))
                .unwrap_or(name);
            report.changed.push(newest);
        }
        if let Some(old) = &old_index {
            for name in old.root().packages.keys() {
                if !new.root().packages.contains_key(name) {
                    report.removed.push(name.clone());
                }
            }
        }
    }
    Ok(report)
}

/// The outcome of one registry's refresh.
pub type RefreshResult = Result<RefreshReport, Error>;

/// Refresh every subscription; one failing does not stop the others.
pub fn refresh_all(
    layout: &Layout,
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    warn: &dyn Fn(&str),
) -> Result<Vec<(String, RefreshResult)>, Error> {
    let mut out = Vec::new();
    for mut sub in list(layout)? {
        let r = refresh(layout, store, sources, &mut sub, warn);
        out.push((sub.alias.clone(), r));
    }
    Ok(out)
}

/// The subscription for a registry named by key or domain, added (not
/// trusted for bare names) and fetched when there is none yet: installing
/// `k51…/xmr` or `example.org/xmr` needs no `registry add` first. `None`
/// when the key is a registry published from here.
pub fn ensure(
    layout: &Layout,
    store: &BlockStore,
    sources: &[&dyn BlockSource],
    key_or_domain: &str,
    warn: &dyn Fn(&str),
) -> Result<Option<Subscription>, Error> {
    let is_domain = key_or_domain.contains('.');
    for s in list(layout)? {
        let hit = if is_domain {
            s.state.domain.as_deref() == Some(key_or_domain)
        } else {
            s.state.ipns == key_or_domain
        };
        if hit {
            return Ok(Some(s));
        }
    }
    // A registry published from here is known by its key already.
    if !is_domain
        && registry::Registry::list(layout)?
            .iter()
            .any(|r| r.state.ipns == key_or_domain)
    {
        return Ok(None);
    }
    // Aliases are `[a-z0-9._-]{1,64}`; keys and domains fit once lowercased.
    let alias = key_or_domain.to_ascii_lowercase();
    add(layout, store, sources, &alias, key_or_domain, false, warn)?;
    open(layout, &alias).map(Some)
}

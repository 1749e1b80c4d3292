//! `ipkg install`, `switch`, `rollback`, `upgrade` and `remove`: everything
//! between "a verified package is available" and "its commands are on PATH",
//! and back.
//!
//! Every operation holds the prefix lock, first finishes or undoes what a
//! killed process left (see [`super::journal`]), and changes installed state
//! only through one journaled transaction per package. The work that can fail
//! for ordinary reasons (resolving, fetching, verifying, unpacking, the
//! pre-hooks) happens before the transaction starts, so a failure there
//! changes nothing a user can see.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::content::Cid;
use crate::sources::store::{BlockStore, StoreLock};
use crate::sources::{BlockSource, CarSource};
use crate::trust::manifest::{HookKind, Manifest};
use crate::trust::succession::succeeds;

use super::hooks::{self, HookRun};
use super::installed::{self, HistoryEntry, InstalledVersion, Receipt};
use super::journal::{self, LinkChange, PinChange, Recovered, Tx};
use super::lock::PrefixLock;
use super::unpack::{self, Scanned};
use super::{Error, Layout, Ui};
use crate::ops::content::car;
use crate::ops::publish::{self, pack};
use crate::ops::resolve::fetch::{configured_sources, fetch_dag};
use crate::ops::resolve::{
    Candidate, RegistryRef, Resolver, Spec, exact_version, parse_spec, seed, subscriptions,
};

/// Choices the user made on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Change nothing; report what would be done.
    pub dry_run: bool,
    /// Install content no trusted registry vouches for without asking.
    pub allow_unsigned: bool,
    /// Let hooks that ask for host access run outside the sandbox.
    pub allow_host_hooks: bool,
    /// Go to a lower version than the current one (`switch` does).
    pub allow_downgrade: bool,
    /// Install again even if this exact package is current.
    pub reinstall: bool,
}

/// What happened to one package.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub name: String,
    pub version: String,
    pub cid: String,
    /// `installed`, `upgraded`, `switched`, `unchanged`, `removed`, or with
    /// `--dry-run` `would-install`, …
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    pub commands: Vec<String>,
    /// Bytes fetched from outside the store.
    pub fetched_bytes: u64,
    /// File bytes written while unpacking (0 when every file was stored).
    pub written_bytes: u64,
    /// Pulled in as a dependency.
    pub dependency: bool,
    /// Why `upgrade` left it behind (`held`, `kept`): the newer release and
    /// what stands in its way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Report {
    /// A report about a version already on disk (nothing fetched or written).
    fn of(name: &str, v: &InstalledVersion, action: &str) -> Report {
        Report {
            name: name.to_owned(),
            version: v.version.to_string(),
            cid: v.package.clone(),
            action: action.to_owned(),
            from: None,
            registry: v.registry.clone(),
            commands: v.commands.keys().cloned().collect(),
            fetched_bytes: 0,
            written_bytes: 0,
            dependency: false,
            reason: None,
        }
    }
}

/// The state every operation shares.
pub struct Session<'a> {
    pub layout: &'a Layout,
    pub store: BlockStore,
    pub ui: &'a dyn Ui,
    _lock: PrefixLock,
    _store_lock: StoreLock,
}

impl<'a> Session<'a> {
    /// Take the prefix lock and recover from an interrupted transaction.
    pub fn open(layout: &'a Layout, ui: &'a dyn Ui) -> Result<Session<'a>, Error> {
        let lock = PrefixLock::exclusive(layout, &|| {
            ui.status(
                "Waiting",
                "for another ipkg process to finish with this prefix",
            )
        })?;
        if let Some(r) = journal::recover(layout)? {
            match r {
                Recovered::Finished { op, name } => ui.status(
                    "Recovered",
                    &format!("finished the interrupted {op} of `{name}`"),
                ),
                Recovered::Undone { op, name } => ui.status(
                    "Recovered",
                    &format!("undid the interrupted {op} of `{name}`"),
                ),
            }
        }
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        let store_lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        Ok(Session {
            layout,
            store,
            ui,
            _lock: lock,
            _store_lock: store_lock,
        })
    }
}

/// Install each of `specs` (and their dependencies).
pub fn install(
    layout: &Layout,
    specs: &[String],
    opts: &Options,
    ui: &dyn Ui,
) -> Result<Vec<Report>, Error> {
    let session = Session::open(layout, ui)?;
    with_installer(&session, opts, specs, |inst| {
        for spec in specs {
            inst.install_spec(spec, "install", true)?;
        }
        Ok(std::mem::take(&mut inst.reports))
    })
}

/// Build the installer every entry point shares: the configured network
/// sources, the registries named in `specs` by key or DNSLink domain
/// subscribed on first use, and a resolver over every known registry.
fn with_installer<R>(
    session: &Session<'_>,
    opts: &Options,
    specs: &[String],
    f: impl FnOnce(&mut Installer<'_, '_>) -> Result<R, Error>,
) -> Result<R, Error> {
    let layout = session.layout;
    let net = configured_sources(layout)?;
    let sources: Vec<&dyn BlockSource> = net.iter().map(|s| s.as_ref()).collect();
    for spec in specs {
        if let Ok(Spec::Name {
            registry: Some(RegistryRef::Key(r) | RegistryRef::Domain(r)),
            ..
        }) = parse_spec(spec)
        {
            subscriptions::ensure(layout, &session.store, &sources, &r, &|m| {
                session.ui.warn(m)
            })?;
        }
    }
    let resolver = Resolver::new(layout, &session.store, &sources)?;
    let mut inst = Installer {
        s: session,
        resolver: &resolver,
        sources: &sources,
        opts,
        reports: Vec::new(),
        in_progress: BTreeSet::new(),
        requirement: None,
    };
    f(&mut inst)
}

struct Installer<'s, 'a> {
    s: &'s Session<'a>,
    resolver: &'s Resolver<'s>,
    sources: &'s [&'s dyn BlockSource],
    opts: &'s Options,
    reports: Vec<Report>,
    /// Names being installed further up the dependency chain.
    in_progress: BTreeSet<String>,
    /// The requirement the user gave for the package being installed
    /// explicitly (`Some(None)`: none, any version), for its receipt.
    requirement: Option<Option<String>>,
}

impl Installer<'_, '_> {
    fn install_spec(&mut self, arg: &str, op: &str, explicit: bool) -> Result<(), Error> {
        let mut spec = parse_spec(arg)?;
        if let Spec::Name { name, req, .. } = &spec {
            let exact = exact_version(req);
            if explicit && op == "install" {
                self.requirement =
                    Some((*req != semver::VersionReq::STAR).then(|| req.to_string()));
            }
            if let Some(r) = installed::load(self.s.layout, name)? {
                let on_disk = exact.as_ref().and_then(|v| r.find_version(v)).cloned();
                if self.opts.reinstall && (*req == semver::VersionReq::STAR || on_disk.is_some()) {
                    // `--reinstall NAME` repairs the version on disk (the
                    // current one, or the one named), it does not upgrade.
                    let v = match &on_disk {
                        Some(v) => v,
                        None => r.current()?,
                    };
                    spec = Spec::Cid(match &v.release {
                        Some(rel) => crate::content::cid::parse(rel)
                            .map_err(|e| Error::Usage(format!("bad CID in a receipt: {e}")))?,
                        None => v.package_cid()?,
                    });
                } else if let Some(v) = on_disk.filter(|v| v.package != r.current)
                    && explicit
                {
                    // An exact version already on disk: make it current
                    // (naming it is consent to go back), fetching nothing.
                    let mut report = switch_installed(self.s, &r, &v, "switch", self.opts)?;
                    if !self.opts.dry_run
                        && let Some(req) = self.requirement.take()
                    {
                        let mut r = installed::load(self.s.layout, name)?.unwrap_or(r);
                        r.requirement = req;
                        r.explicit = true;
                        installed::store(self.s.layout, name, Some(&r))?;
                    }
                    report.dependency = false;
                    self.reports.push(report);
                    return Ok(());
                }
            }
        }
        let candidate = match &spec {
            Spec::Dir(dir) => self.pack_dir(dir, arg)?,
            other => self.resolver.resolve(other, arg)?,
        };
        self.install_candidate(candidate, op, explicit)
    }

    /// Pack a package directory into the store: an unsigned candidate.
    fn pack_dir(&self, dir: &Path, shown: &str) -> Result<Candidate, Error> {
        let mut sink = self.s.store.sink();
        let packed = pack::pack(dir, &mut sink, self.s.ui.progress())?;
        self.s
            .store
            .sync()
            .map_err(|e| Error::io(self.s.store.dir(), e))?;
        Ok(Candidate {
            name: Some(packed.manifest.package.name.clone()),
            version: Some(packed.manifest.package.version.clone()),
            package: packed.cid,
            release: None,
            publisher: None,
            registry: None,
            successions: Vec::new(),
            car: None,
            shown: shown.to_owned(),
            exact: true,
            yanked: false,
        })
    }

    fn install_candidate(&mut self, c: Candidate, op: &str, explicit: bool) -> Result<(), Error> {
        let ui = self.s.ui;
        let requirement = if explicit {
            self.requirement.take()
        } else {
            None
        };
        self.consent(&c, "Install")?;
        if c.yanked {
            ui.warn(&format!(
                "`{}` is yanked from `{}`; installing it because it was named exactly",
                c.shown,
                c.registry.as_deref().unwrap_or("its registry")
            ));
        }
        let cache = unpack::BlockCache::new(&self.s.store);
        // A dry run (and the plan shown before asking) reads the index, the
        // package's root node and its manifest, in memory: nothing of the
        // package is downloaded into the store.
        let (scanned, fetched, planned) = if self.opts.dry_run {
            let (m, size) = self.plan(&c)?;
            (None, size, m)
        } else {
            let (scanned, fetched) = self.fetch_and_scan(&c, &cache)?;
            let m = scanned.manifest.clone();
            (Some(scanned), fetched, m)
        };
        let m = &planned;
        let name = m.package.name.clone();
        let version = m.package.version.clone();
        let existing = installed::load(self.s.layout, &name)?;
        let from_version = existing
            .as_ref()
            .and_then(|r| r.current().ok())
            .map(|v| v.version.clone());
        if let Some(r) = &existing
            && r.current == c.package.to_string()
            && !self.opts.reinstall
        {
            self.reports
                .push(report(&c, m, "unchanged", None, 0, 0, !explicit));
            let changed = (explicit && !r.explicit)
                || requirement.as_ref().is_some_and(|q| *q != r.requirement);
            if changed && !self.opts.dry_run {
                let mut r = r.clone();
                r.explicit |= explicit;
                if let Some(q) = requirement {
                    r.requirement = q;
                }
                installed::store(self.s.layout, &name, Some(&r))?;
            }
            return Ok(());
        }
        if let Some(r) = &existing
            && r.held
            && r.current != c.package.to_string()
            && !(c.exact && explicit)
            && !self.opts.allow_downgrade
        {
            return Err(Error::Held {
                name,
                version: from_version.map(|v| v.to_string()).unwrap_or_default(),
            });
        }
        if let Some(from) = &from_version
            && &version < from
            && !self.opts.allow_downgrade
            && !(c.exact && explicit)
        {
            return Err(Error::Downgrade {
                name,
                installed: from.to_string(),
                requested: version.to_string(),
            });
        }
        self.check_publisher(existing.as_ref(), &c, &name)?;
        self.in_progress.insert(name.clone());
        let deps = self.dependencies(m, &c);
        self.in_progress.remove(&name);
        deps?;
        for program in &m.requires {
            if which::which(program).is_err() {
                ui.warn(&format!(
                    "`{name}` expects the program `{program}` on PATH, and it is not there"
                ));
            }
        }
        let links = plan_links(self.s.layout, &name, existing.as_ref(), &m.commands)?;
        for l in links
            .iter()
            .filter(|l| l.before.is_none() && l.after.is_some())
        {
            warn_shadowing(self.s.layout, &l.command, ui);
        }
        let reinstalling = existing
            .as_ref()
            .is_some_and(|r| r.current == c.package.to_string());
        let action = match (&from_version, op) {
            (None, _) => "installed",
            (Some(_), _) if reinstalling => "reinstalled",
            (Some(_), "switch") => "switched",
            (Some(from), _) if &version > from => "upgraded",
            (Some(_), _) => "switched",
        };
        if self.opts.dry_run {
            self.reports.push(report(
                &c,
                m,
                &format!("would-{}", verb_of(action)),
                from_version,
                fetched,
                0,
                !explicit,
            ));
            return Ok(());
        }
        let Some(scanned) = scanned else {
            return Err(Error::Usage("nothing was fetched to install".into()));
        };

        ui.status(
            "Unpacking",
            &format!("{name} {version} ({})", short_cid(&c.package)),
        );
        let (tree, unpacked) = unpack::materialize(
            self.s.layout,
            &cache,
            &scanned,
            self.opts.reinstall,
            ui.progress(),
        )?;
        let hook_env = HookRun {
            layout: self.s.layout,
            name: &name,
            version: &version,
            tree: &tree,
            manifest: m,
            previous: from_version.as_ref(),
            allow_host: self.opts.allow_host_hooks,
            ui,
        };
        if let Err(e) = hooks::run(&hook_env, HookKind::PreInstall) {
            if !unpacked.existed && !is_installed_anywhere(existing.as_ref(), &c.package) {
                let _ = unpack::remove_tree(&tree);
            }
            return Err(e);
        }

        let mut receipt = existing.clone().unwrap_or_else(|| Receipt {
            name: name.clone(),
            current: String::new(),
            previous: None,
            publisher: None,
            explicit,
            requirement: None,
            held: false,
            versions: BTreeMap::new(),
            history: Vec::new(),
        });
        let cid = c.package.to_string();
        receipt.versions.insert(
            cid.clone(),
            InstalledVersion {
                version: version.clone(),
                package: cid.clone(),
                release: c.release.map(|r| r.to_string()),
                registry: c.registry.clone(),
                publisher: c.publisher.clone(),
                installed_at: publish::now(),
                commands: m.commands.clone(),
                dependencies: m
                    .dependencies
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
            },
        );
        if let Some(r) = &existing
            && !reinstalling
        {
            receipt.previous = Some(r.current.clone());
        }
        receipt.current = cid.clone();
        receipt.explicit |= explicit;
        if let Some(q) = requirement {
            receipt.requirement = q;
        }
        if let Some(p) = &c.publisher {
            receipt.publisher = Some(p.clone());
        }
        receipt.history.push(HistoryEntry {
            time: publish::now(),
            action: if op == "install" {
                verb_of(action).to_owned()
            } else {
                op.to_owned()
            },
            from: from_version.as_ref().map(|v| v.to_string()),
            to: Some(version.to_string()),
            cid: Some(cid.clone()),
        });
        let release = c.release.map(|r| r.to_string());
        let pins_add = version_pins(&name, &version, &cid, release.as_deref());
        let tx = Tx {
            op: op.to_owned(),
            name: name.clone(),
            bin_dir: self.s.layout.bin_dir.clone(),
            to: Some(cid),
            links,
            receipt: Some(receipt),
            pins_add,
            pins_remove: Vec::new(),
            trees_remove: Vec::new(),
        };
        journal::apply(self.s.layout, &tx)?;
        // Installed means seeded: a configured Kubo pins what this host runs.
        match seed::seed(
            self.s.layout,
            &self.s.store,
            &c.package,
            &seed::kubo_label(&name, &version),
        ) {
            Ok(true) => ui.status("Seeded", &format!("{name} {version} (pinned in Kubo)")),
            Ok(false) => {}
            Err(e) => ui.warn(&format!(
                "{e}; `{name}` is installed but not pinned in Kubo"
            )),
        }
        let verb = match action {
            "installed" => "Installed",
            "reinstalled" => "Reinstalled",
            "upgraded" => "Upgraded",
            _ => "Switched",
        };
        let shown = match &from_version {
            Some(from) if from != &version => format!("{name} {from} -> {version}"),
            _ => format!("{name} {version}"),
        };
        ui.status(verb, &shown);
        let post = if action == "switched" {
            HookKind::PostSwitch
        } else {
            HookKind::PostInstall
        };
        if let Err(e) = hooks::run(&hook_env, post) {
            ui.warn(&format!("{e}; `{name}` stays installed"));
        }
        self.reports.push(report(
            &c,
            m,
            action,
            from_version,
            fetched,
            unpacked.bytes_written,
            !explicit,
        ));
        Ok(())
    }

    /// Content no trusted registry vouches for needs `--allow-unsigned` or
    /// a yes (never given in a dry run).
    fn consent(&self, c: &Candidate, verb: &str) -> Result<(), Error> {
        if c.vouched() || self.opts.allow_unsigned {
            return Ok(());
        }
        let question = format!(
            "`{}` ({}) is not vouched for by any registry you trust. {verb} it anyway?",
            c.shown, c.package
        );
        if self.opts.dry_run || !self.s.ui.confirm(&question) {
            return Err(Error::Unsigned {
                what: c.shown.clone(),
            });
        }
        Ok(())
    }

    /// What a plan needs of a package without downloading it: its manifest
    /// and the bytes a download would bring (0 when the store has them all),
    /// from the root node's link sizes (UnixFS `Tsize`). Only the root block
    /// and the manifest's blocks are read, in memory, never stored.
    fn plan(&self, c: &Candidate) -> Result<(Manifest, u64), Error> {
        let car = c.car.as_ref().map(|p| CarSource { path: p.clone() });
        let mut sources: Vec<&dyn BlockSource> = Vec::new();
        if let Some(car) = &car {
            sources.push(car);
        }
        sources.extend(self.sources.iter().copied());
        let peek = Peek {
            store: &self.s.store,
            sources: &sources,
        };
        let in_store = car::first_missing(&self.s.store, &c.package)?.is_none();
        let size = if in_store {
            0
        } else {
            dag_size(&peek, &c.package)?
        };
        let m = unpack::peek_manifest(&peek, &c.package)?;
        check_candidate(c, &m, &self.resolver.target)?;
        Ok((m, size))
    }

    /// Fetch the package (and its release statement) into the store, then
    /// read and check it. Returns the bytes fetched.
    fn fetch_and_scan(
        &mut self,
        c: &Candidate,
        blocks: &dyn crate::content::BlockGet,
    ) -> Result<(Scanned, u64), Error> {
        let car = c.car.as_ref().map(|p| CarSource { path: p.clone() });
        let mut sources: Vec<&dyn BlockSource> = Vec::new();
        if let Some(car) = &car {
            sources.push(car);
        }
        sources.extend(self.sources.iter().copied());
        let shown_with = |size: Option<u64>| {
            let size = size
                .map(|t| format!(", {}", human_bytes(t)))
                .unwrap_or_default();
            match (&c.name, &c.version) {
                (Some(n), Some(v)) => format!("{n} {v} ({}{size})", short_cid(&c.package)),
                _ => match size.strip_prefix(", ") {
                    Some(size) => format!("{} ({size})", c.package),
                    None => c.package.to_string(),
                },
            }
        };
        // Walking the DAG through `blocks` (the install's cache) keeps what a
        // warm install reads here for the scan and the unpacking.
        let stats = if car::first_missing(blocks, &c.package)?.is_some() {
            // The total for the progress bar: the root node's link sizes.
            let total = dag_size(
                &Peek {
                    store: &self.s.store,
                    sources: &sources,
                },
                &c.package,
            )
            .ok();
            self.s.ui.status("Fetching", &shown_with(total));
            let progress = WithTotal {
                inner: self.s.ui.progress(),
                total,
            };
            fetch_dag(&self.s.store, &sources, &c.package, &progress)?
        } else {
            self.s.ui.status("Fetching", &shown_with(None));
            crate::sources::FetchStats::default()
        };
        if let Some(release) = c.release
            && !self.s.store.has(&release)
        {
            fetch_dag(&self.s.store, &sources, &release, self.s.ui.progress())?;
        }
        let scanned = unpack::scan(blocks, &c.package)?;
        check_candidate(c, &scanned.manifest, &self.resolver.target)?;
        Ok((scanned, stats.bytes))
    }

    /// The publisher key pinned for `name` must sign this release, or lead
    /// to its signer through key succession statements.
    fn check_publisher(
        &self,
        existing: Option<&Receipt>,
        c: &Candidate,
        name: &str,
    ) -> Result<(), Error> {
        let (Some(pinned), Some(signer)) =
            (existing.and_then(|r| r.publisher.as_ref()), &c.publisher)
        else {
            return Ok(());
        };
        if pinned == signer || succeeds(pinned, signer, &c.successions) {
            return Ok(());
        }
        Err(Error::PublisherChanged {
            name: name.to_owned(),
            pinned: pinned.clone(),
            signer: signer.clone(),
        })
    }

    /// Install what `m` depends on, from the same registry when it has it.
    fn dependencies(&mut self, m: &Manifest, c: &Candidate) -> Result<(), Error> {
        for (dep, req) in &m.dependencies {
            if self.in_progress.contains(dep) {
                return Err(Error::DependencyConflict {
                    message: format!("`{}` and `{dep}` depend on each other", m.package.name),
                });
            }
            if let Some(r) = installed::load(self.s.layout, dep)? {
                let have = &r.current()?.version;
                if req.matches(have) {
                    continue;
                }
                return Err(Error::DependencyConflict {
                    message: format!(
                        "`{}` needs `{dep}` {req}, but `{dep}` {have} is installed",
                        m.package.name
                    ),
                });
            }
            let registry = c.registry.as_ref().and_then(|alias| {
                self.resolver
                    .find_package(Some(&RegistryRef::Alias(alias.clone())), dep)
                    .ok()
                    .map(|_| RegistryRef::Alias(alias.clone()))
            });
            let spec = Spec::Name {
                registry,
                name: dep.clone(),
                req: req.clone(),
            };
            let shown = format!("{dep}@{req}");
            let candidate = self.resolver.resolve(&spec, &shown)?;
            self.in_progress.insert(m.package.name.clone());
            let result = self.install_candidate(candidate, "install", false);
            self.in_progress.remove(&m.package.name);
            result?;
        }
        Ok(())
    }
}

/// The manifest must agree with what the release says it is, and suit this
/// machine.
fn check_candidate(c: &Candidate, m: &Manifest, target: &str) -> Result<(), Error> {
    if let Some(n) = &c.name
        && n != &m.package.name
    {
        return Err(Error::NotAPackage {
            cid: c.package,
            reason: format!(
                "its release says it is `{n}`, its manifest says `{}`",
                m.package.name
            ),
        });
    }
    if let Some(v) = &c.version
        && v != &m.package.version
    {
        return Err(Error::NotAPackage {
            cid: c.package,
            reason: format!(
                "its release says version {v}, its manifest says {}",
                m.package.version
            ),
        });
    }
    if !m.supports_target(target) {
        return Err(Error::Refused {
            message: format!(
                "`{}` {} is built for {}, not for this machine ({target})",
                m.package.name,
                m.package.version,
                m.package.targets.join(", ")
            ),
        });
    }
    Ok(())
}

/// Blocks from the store, or else from the sources, kept in memory only: a
/// plan reads a package's root and manifest without storing anything.
struct Peek<'a> {
    store: &'a BlockStore,
    sources: &'a [&'a dyn BlockSource],
}

impl crate::content::BlockGet for Peek<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, crate::content::GetError> {
        if let Ok(b) = crate::content::BlockGet::get_block(self.store, cid) {
            return Ok(b);
        }
        self.sources
            .iter()
            .find_map(|s| s.block(cid).ok())
            .ok_or(crate::content::GetError::Missing(*cid))
    }
}

/// The bytes of the DAG under `root` as its root node declares them: the
/// root block plus its links' cumulative sizes (`Tsize`).
fn dag_size(get: &dyn crate::content::BlockGet, root: &Cid) -> Result<u64, Error> {
    let bytes = get.get_block(root)?;
    if root.codec() != crate::content::cid::Codec::DagPb.code() {
        return Ok(bytes.len() as u64);
    }
    let node = crate::content::dagpb::PbNode::decode(&bytes).map_err(|e| Error::NotAPackage {
        cid: *root,
        reason: e.to_string(),
    })?;
    Ok(bytes.len() as u64 + node.links.iter().filter_map(|l| l.tsize).sum::<u64>())
}

/// A [`crate::ops::Progress`] that knows the total a step's caller does not.
struct WithTotal<'a> {
    inner: &'a dyn crate::ops::Progress,
    total: Option<u64>,
}

impl crate::ops::Progress for WithTotal<'_> {
    fn start(&self, what: &str, total: Option<u64>) {
        self.inner.start(what, total.or(self.total));
    }
    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }
    fn finish(&self) {
        self.inner.finish();
    }
    fn warn(&self, message: &str) {
        self.inner.warn(message);
    }
}

/// Bytes as a short human string (`12.40 MiB`): the one size format,
/// the same the progress bars print.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn is_installed_anywhere(existing: Option<&Receipt>, cid: &Cid) -> bool {
    existing.is_some_and(|r| r.versions.contains_key(&cid.to_string()))
}

fn report(
    c: &Candidate,
    m: &Manifest,
    action: &str,
    from: Option<semver::Version>,
    fetched: u64,
    written: u64,
    dependency: bool,
) -> Report {
    Report {
        name: m.package.name.clone(),
        version: m.package.version.to_string(),
        cid: c.package.to_string(),
        action: action.to_owned(),
        from: from.map(|v| v.to_string()),
        registry: c.registry.clone(),
        commands: m.commands.keys().cloned().collect(),
        fetched_bytes: fetched,
        written_bytes: written,
        dependency,
        reason: None,
    }
}

fn verb_of(action: &str) -> &str {
    match action {
        "installed" => "install",
        "upgraded" => "upgrade",
        "switched" => "switch",
        "reinstalled" => "reinstall",
        other => other,
    }
}

/// The pin label of an installed version.
pub fn pin_label(name: &str, version: &semver::Version) -> String {
    format!("installed/{name}@{version}")
}

/// The pins that keep an installed version: its package tree and, when it
/// came with one, its release statement.
fn version_pins(
    name: &str,
    version: &semver::Version,
    package: &str,
    release: Option<&str>,
) -> Vec<PinChange> {
    let label = pin_label(name, version);
    std::iter::once(package)
        .chain(release)
        .map(|cid| PinChange {
            cid: cid.to_owned(),
            label: label.clone(),
        })
        .collect()
}

/// `bafy…xyz` shortened for status lines.
pub fn short_cid(cid: &Cid) -> String {
    let s = cid.to_string();
    if s.len() > 16 {
        format!("{}…{}", &s[..8], &s[s.len() - 6..])
    } else {
        s
    }
}

/// Where the command link of `name`'s `path` points.
fn command_target(layout: &Layout, name: &str, path: &str) -> PathBuf {
    layout.package_link(name).join(path)
}

/// The link changes that take `name` from its current commands to `new`,
/// refusing to touch a bin-dir entry ipkg does not own.
fn plan_links(
    layout: &Layout,
    name: &str,
    existing: Option<&Receipt>,
    new: &BTreeMap<String, String>,
) -> Result<Vec<LinkChange>, Error> {
    let old: BTreeMap<String, String> = existing
        .and_then(|r| r.current().ok())
        .map(|v| v.commands.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (cmd, path) in new {
        let after = command_target(layout, name, path);
        let before = owned_link(layout, name, cmd)?;
        if before.as_ref() == Some(&after) {
            continue;
        }
        out.push(LinkChange {
            command: cmd.clone(),
            before,
            after: Some(after),
        });
    }
    for cmd in old.keys().filter(|c| !new.contains_key(*c)) {
        if let Some(before) = owned_link(layout, name, cmd)? {
            out.push(LinkChange {
                command: cmd.clone(),
                before: Some(before),
                after: None,
            });
        }
    }
    Ok(out)
}

/// What `bin_dir/cmd` points at if it is `name`'s link; `None` if there is
/// nothing there; an error if something else is.
fn owned_link(layout: &Layout, name: &str, cmd: &str) -> Result<Option<PathBuf>, Error> {
    let path = layout.bin_dir.join(cmd);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.file_type().is_symlink() {
        return Err(Error::NotOurs { path });
    }
    let target = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
    if target.starts_with(layout.package_link(name)) {
        return Ok(Some(target));
    }
    if let Ok(rest) = target.strip_prefix(&layout.prefix)
        && let Some(std::path::Component::Normal(other)) = rest.components().next()
    {
        return Err(Error::CommandConflict {
            command: cmd.to_owned(),
            owner: format!("package `{}`", other.to_string_lossy()),
        });
    }
    Err(Error::NotOurs { path })
}

/// Say so when a new command hides (or is hidden by) another on PATH.
fn warn_shadowing(layout: &Layout, cmd: &str, ui: &dyn Ui) {
    if let Ok(found) = which::which(cmd)
        && !found.starts_with(&layout.bin_dir)
    {
        ui.warn(&format!(
            "command `{cmd}` also exists as `{}`; the one earlier on PATH runs",
            found.display()
        ));
    }
}

/// `ipkg switch NAME VERSION|CID`, `ipkg switch CID`: make another version
/// current. A version already on disk is switched to without fetching
/// anything; another one is installed first (an older one too: switching is
/// explicit).
pub fn switch(
    layout: &Layout,
    name: Option<&str>,
    to: &str,
    opts: &Options,
    ui: &dyn Ui,
) -> Result<Report, Error> {
    let session = Session::open(layout, ui)?;
    if let Some(name) = name {
        let receipt = installed::load(layout, name)?.ok_or_else(|| Error::NotInstalled {
            name: name.to_owned(),
        })?;
        let on_disk = match crate::content::cid::parse(to) {
            Ok(cid) => receipt.versions.get(&cid.to_string()),
            Err(_) => {
                let v = semver::Version::parse(to.trim_start_matches('=')).map_err(|e| {
                    Error::Usage(format!("`{to}` is neither a version nor a CID: {e}"))
                })?;
                receipt.find_version(&v)
            }
        };
        if let Some(v) = on_disk {
            let v = v.clone();
            return switch_installed(&session, &receipt, &v, "switch", opts);
        }
    }
    // Not on disk: install it, explicitly allowing an older version.
    let spec = match (name, crate::content::cid::parse(to)) {
        (_, Ok(_)) => to.to_owned(),
        (Some(n), Err(_)) => format!("{n}@={}", to.trim_start_matches('=')),
        (None, Err(_)) => {
            return Err(Error::Usage(format!(
                "`{to}` is not a CID: give a package name too (`ipkg switch NAME {to}`)"
            )));
        }
    };
    let opts = Options {
        allow_downgrade: true,
        ..opts.clone()
    };
    with_installer(&session, &opts, std::slice::from_ref(&spec), |inst| {
        inst.install_spec(&spec, "switch", true)?;
        inst.reports
            .pop()
            .ok_or_else(|| Error::Usage("nothing was switched".into()))
    })
}

/// `ipkg rollback NAME`: back to the version before the last change.
pub fn rollback(layout: &Layout, name: &str, opts: &Options, ui: &dyn Ui) -> Result<Report, Error> {
    let session = Session::open(layout, ui)?;
    let receipt = installed::load(layout, name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_owned(),
    })?;
    let prev = receipt
        .previous
        .as_ref()
        .and_then(|p| receipt.versions.get(p))
        .cloned()
        .ok_or_else(|| Error::Usage(format!("`{name}` has no earlier version to roll back to")))?;
    switch_installed(&session, &receipt, &prev, "rollback", opts)
}

/// Switch to a version already on disk: no fetch, no scan, one transaction.
fn switch_installed(
    s: &Session<'_>,
    receipt: &Receipt,
    to: &InstalledVersion,
    op: &str,
    opts: &Options,
) -> Result<Report, Error> {
    let layout = s.layout;
    let name = &receipt.name;
    let from = receipt.current()?.clone();
    let base = Report {
        from: Some(from.version.to_string()),
        ..Report::of(name, to, "unchanged")
    };
    if receipt.current == to.package {
        return Ok(base);
    }
    let cid = to.package_cid()?;
    let tree = layout.package_tree(&cid);
    if !tree.is_dir() {
        // The tree was removed by hand: unpack it again from the store.
        let scanned = unpack::scan(&s.store, &cid)?;
        unpack::materialize(layout, &s.store, &scanned, false, s.ui.progress())?;
    }
    let links = plan_links(layout, name, Some(receipt), &to.commands)?;
    if opts.dry_run {
        return Ok(Report {
            action: format!("would-{op}"),
            ..base
        });
    }
    let mut next = receipt.clone();
    next.previous = Some(receipt.current.clone());
    next.current = to.package.clone();
    next.history.push(HistoryEntry {
        time: publish::now(),
        action: op.to_owned(),
        from: Some(from.version.to_string()),
        to: Some(to.version.to_string()),
        cid: Some(to.package.clone()),
    });
    let tx = Tx {
        op: op.to_owned(),
        name: name.clone(),
        bin_dir: layout.bin_dir.clone(),
        to: Some(to.package.clone()),
        links,
        receipt: Some(next),
        pins_add: Vec::new(),
        pins_remove: Vec::new(),
        trees_remove: Vec::new(),
    };
    journal::apply(layout, &tx)?;
    s.ui.status(
        if op == "rollback" {
            "Rolled back"
        } else {
            "Switched"
        },
        &format!("{name} {} -> {}", from.version, to.version),
    );
    if let Ok(manifest) = read_installed_manifest(&tree) {
        let run = HookRun {
            layout,
            name,
            version: &to.version,
            tree: &tree,
            manifest: &manifest,
            previous: Some(&from.version),
            allow_host: opts.allow_host_hooks,
            ui: s.ui,
        };
        if let Err(e) = hooks::run(&run, HookKind::PostSwitch) {
            s.ui.warn(&format!("{e}; the switch stands"));
        }
    }
    Ok(Report {
        action: if op == "rollback" {
            "rolled-back"
        } else {
            "switched"
        }
        .into(),
        ..base
    })
}

/// The manifest of an unpacked tree.
pub fn read_installed_manifest(tree: &Path) -> Result<Manifest, Error> {
    pack::read_manifest(tree)
}

/// What `remove` is asked to take away.
#[derive(Debug, Clone, Default)]
pub struct RemoveOptions {
    /// Only this version (it must not be the current one).
    pub version: Option<String>,
    /// Also delete the package's state directory.
    pub purge: bool,
    /// Remove even if installed packages depend on it.
    pub force: bool,
    pub dry_run: bool,
    pub allow_host_hooks: bool,
}

/// `ipkg remove NAME[@VERSION]`.
pub fn remove(
    layout: &Layout,
    name: &str,
    opts: &RemoveOptions,
    ui: &dyn Ui,
) -> Result<Report, Error> {
    let _session = Session::open(layout, ui)?;
    let receipt = installed::load(layout, name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_owned(),
    })?;
    let current = receipt.current()?.clone();
    let mut report = Report::of(name, &current, "removed");
    if let Some(v) = &opts.version {
        let v = semver::Version::parse(v.trim_start_matches('='))
            .map_err(|e| Error::Usage(format!("`{v}` is not a version: {e}")))?;
        return remove_version(layout, &receipt, &v, opts, report, ui);
    }
    if !opts.force {
        let dependents: Vec<String> = installed::list(layout)?
            .into_iter()
            .filter(|r| r.name != name)
            .filter(|r| r.current().is_ok_and(|v| v.dependencies.contains_key(name)))
            .map(|r| format!("`{}`", r.name))
            .collect();
        if !dependents.is_empty() {
            return Err(Error::DependencyConflict {
                message: format!(
                    "{} depend on `{name}`; remove them first, or pass `--force`",
                    dependents.join(", ")
                ),
            });
        }
    }
    if opts.dry_run {
        report.action = "would-remove".into();
        return Ok(report);
    }
    let tree = layout.package_tree(&current.package_cid()?);
    let manifest = read_installed_manifest(&tree).ok();
    let run = manifest.as_ref().map(|m| HookRun {
        layout,
        name,
        version: &current.version,
        tree: &tree,
        manifest: m,
        previous: None,
        allow_host: opts.allow_host_hooks,
        ui,
    });
    if let Some(run) = &run {
        hooks::run(run, HookKind::PreRemove)?;
    }
    let mut links = Vec::new();
    for cmd in current.commands.keys() {
        if let Some(before) = owned_link(layout, name, cmd).unwrap_or(None) {
            links.push(LinkChange {
                command: cmd.clone(),
                before: Some(before),
                after: None,
            });
        }
    }
    let pins_remove = receipt
        .versions
        .values()
        .flat_map(|v| version_pins(name, &v.version, &v.package, v.release.as_deref()))
        .collect();
    let tx = Tx {
        op: "remove".into(),
        name: name.to_owned(),
        bin_dir: layout.bin_dir.clone(),
        to: None,
        links,
        receipt: None,
        pins_add: Vec::new(),
        pins_remove,
        trees_remove: Vec::new(),
    };
    journal::apply(layout, &tx)?;
    let others = receipt.versions.len() - 1;
    let also = match others {
        0 => String::new(),
        1 => " (and 1 other version on disk)".to_owned(),
        n => format!(" (and {n} other versions on disk)"),
    };
    ui.status("Removed", &format!("{name} {}{also}", current.version));
    for v in receipt.versions.values() {
        if let Ok(cid) = v.package_cid()
            && let Err(e) = seed::unseed(layout, &cid, &seed::kubo_label(name, &v.version))
        {
            ui.warn(&format!("{e}; `{name}` stays pinned in Kubo"));
        }
    }
    if let Some(run) = &run
        && let Err(e) = hooks::run(run, HookKind::PostRemove)
    {
        ui.warn(&format!("{e}; `{name}` is removed"));
    }
    // The trees are no longer referenced; a failure here leaves them for gc.
    for v in receipt.versions.values() {
        if let Ok(cid) = v.package_cid()
            && !tree_in_use(layout, &cid)?
        {
            let _ = unpack::remove_tree(&layout.package_tree(&cid));
        }
    }
    if opts.purge {
        let _ = unpack::remove_tree(&layout.data_dir(name));
    }
    Ok(report)
}

/// Drop one version that is not the current one.
fn remove_version(
    layout: &Layout,
    receipt: &Receipt,
    version: &semver::Version,
    opts: &RemoveOptions,
    mut report: Report,
    ui: &dyn Ui,
) -> Result<Report, Error> {
    let name = &receipt.name;
    let v = receipt
        .find_version(version)
        .ok_or_else(|| Error::NotInstalled {
            name: format!("{name}@{version}"),
        })?
        .clone();
    if v.package == receipt.current {
        return Err(Error::Usage(format!(
            "{name} {version} is the current version: switch to another first, or remove `{name}` entirely"
        )));
    }
    report.version = version.to_string();
    report.cid = v.package.clone();
    if opts.dry_run {
        report.action = "would-remove".into();
        return Ok(report);
    }
    let mut next = receipt.clone();
    next.versions.remove(&v.package);
    if next.previous.as_deref() == Some(v.package.as_str()) {
        next.previous = None;
    }
    let pins_remove = version_pins(name, version, &v.package, v.release.as_deref());
    let tx = Tx {
        op: "remove".into(),
        name: name.clone(),
        bin_dir: layout.bin_dir.clone(),
        to: Some(receipt.current.clone()),
        links: Vec::new(),
        receipt: Some(next),
        pins_add: Vec::new(),
        pins_remove,
        trees_remove: Vec::new(),
    };
    journal::apply(layout, &tx)?;
    if !tree_in_use(layout, &v.package_cid()?)? {
        let _ = unpack::remove_tree(&layout.package_tree(&v.package_cid()?));
    }
    ui.status("Removed", &format!("{name} {version}"));
    Ok(report)
}

/// Whether any receipt still lists this package tree.
fn tree_in_use(layout: &Layout, cid: &Cid) -> Result<bool, Error> {
    let key = cid.to_string();
    Ok(installed::list(layout)?
        .iter()
        .any(|r| r.versions.contains_key(&key)))
}

/// `ipkg upgrade [NAME…]`: the newest release of each (or every) package
/// installed from a registry that the requirement it was installed with and
/// every installed dependent's requirement allow, never a lower version than
/// the current one. Held packages stay. What is left behind is reported with
/// the reason (action `held` or `kept`).
pub fn upgrade(
    layout: &Layout,
    names: &[String],
    opts: &Options,
    ui: &dyn Ui,
) -> Result<Vec<Report>, Error> {
    let session = Session::open(layout, ui)?;
    // A damaged receipt is repaired by `doctor` (which keeps the damaged
    // file), not overwritten here; the other packages are upgraded.
    let mut damaged = std::collections::BTreeSet::new();
    for (name, e) in installed::damaged_receipts(layout) {
        if names.contains(&name) {
            return Err(e);
        }
        ui.warn(&format!("skipping `{name}`: {e}; run `ipkg doctor`"));
        damaged.insert(name);
    }
    let receipts: Vec<_> = installed::load_named(layout, names)?
        .into_iter()
        .filter(|r| !damaged.contains(&r.name))
        .collect();
    let everything = installed::list(layout)?;
    let opts = Options {
        allow_downgrade: false,
        ..opts.clone()
    };
    with_installer(&session, &opts, &[], |inst| {
        for r in receipts {
            let current = r.current()?.clone();
            let Some(registry) = current.registry.clone() else {
                if !names.is_empty() {
                    ui.warn(&format!(
                        "`{}` was not installed from a registry; nothing to upgrade it from",
                        r.name
                    ));
                }
                continue;
            };
            let spec_with = |req: semver::VersionReq| Spec::Name {
                registry: Some(RegistryRef::Alias(registry.clone())),
                name: r.name.clone(),
                req,
            };
            let newest = inst
                .resolver
                .resolve(&spec_with(semver::VersionReq::STAR), &r.name)?;
            let newest_version = newest.version.clone();
            let left = |reason: String, action: &str| {
                let mut rep = Report::of(&r.name, &current, action);
                rep.dependency = !r.explicit;
                rep.reason = Some(reason);
                rep
            };
            let newer_exists = newest_version
                .as_ref()
                .is_some_and(|v| v > &current.version);
            if r.held {
                if let Some(v) = newest_version.as_ref().filter(|_| newer_exists) {
                    let why = format!("{v} is available; held (`ipkg unhold {}`)", r.name);
                    ui.status("Held", &format!("{} {} ({why})", r.name, current.version));
                    inst.reports.push(left(why, "held"));
                } else {
                    inst.reports.push(left("held".into(), "held"));
                }
                continue;
            }
            // What stands in the way: the install-time requirement and each
            // dependent's.
            let mut limits: Vec<(String, semver::VersionReq)> = Vec::new();
            if let Some(q) = &r.requirement
                && let Ok(req) = semver::VersionReq::parse(q)
            {
                limits.push((format!("it was installed as `{}@{q}`", r.name), req));
            }
            for d in &everything {
                if d.name == r.name {
                    continue;
                }
                if let Ok(v) = d.current()
                    && let Some(q) = v.dependencies.get(&r.name)
                    && let Ok(req) = semver::VersionReq::parse(q)
                {
                    limits.push((format!("`{}` {} needs {q}", d.name, v.version), req));
                }
            }
            let allowed = semver::VersionReq {
                comparators: limits
                    .iter()
                    .flat_map(|(_, q)| q.comparators.iter().cloned())
                    .collect(),
            };
            let chosen = if limits.is_empty() {
                Some(newest)
            } else {
                inst.resolver
                    .resolve(&spec_with(allowed.clone()), &r.name)
                    .ok()
            };
            let chosen_newer = chosen
                .as_ref()
                .and_then(|c| c.version.as_ref())
                .is_some_and(|v| v > &current.version);
            let went_to = chosen
                .as_ref()
                .and_then(|c| c.version.clone())
                .filter(|_| chosen_newer)
                .unwrap_or_else(|| current.version.clone());
            if let Some(c) = chosen.filter(|_| chosen_newer) {
                inst.install_candidate(c, "upgrade", r.explicit)?;
            }
            if let Some(v) = newest_version.filter(|v| v > &went_to) {
                let blocking: Vec<&str> = limits
                    .iter()
                    .filter(|(_, q)| !q.matches(&v))
                    .map(|(why, _)| why.as_str())
                    .collect();
                let why = format!("{v} is available; {}", blocking.join(", "));
                ui.status("Kept", &format!("{} {went_to} ({why})", r.name));
                if !chosen_newer {
                    inst.reports.push(left(why, "kept"));
                } else if let Some(last) = inst.reports.last_mut() {
                    last.reason = Some(why);
                }
            } else if !chosen_newer {
                let mut unchanged = Report::of(&r.name, &current, "unchanged");
                unchanged.dependency = !r.explicit;
                inst.reports.push(unchanged);
            }
        }
        Ok(std::mem::take(&mut inst.reports))
    })
}

/// `ipkg hold NAME` (`held = true`) and `ipkg unhold NAME`: whether
/// `upgrade` leaves the package where it is. Returns whether it changed.
pub fn set_held(layout: &Layout, name: &str, held: bool, ui: &dyn Ui) -> Result<bool, Error> {
    let _session = Session::open(layout, ui)?;
    let mut r = installed::load(layout, name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_owned(),
    })?;
    if r.held == held {
        return Ok(false);
    }
    r.held = held;
    installed::store(layout, name, Some(&r))?;
    Ok(true)
}

/// A program ready to run: its package tree and the file to execute.
#[derive(Debug)]
pub struct Runnable {
    pub name: String,
    pub version: semver::Version,
    /// The package tree (`.ipkg/pkgs/<cid>`, also when installed: the tree
    /// `<prefix>/<name>` points to now).
    pub tree: PathBuf,
    /// The command's file.
    pub program: PathBuf,
    pub command: String,
    /// Keeps `tree` from `gc` while the program runs (see [`super::lease`]);
    /// `None` in a prefix this user cannot write.
    pub lease: Option<super::lease::Lease>,
}

/// `ipkg run NAME|CID|…`: an installed package's command, or else fetch,
/// verify and unpack the package (without installing it: nothing is linked)
/// and name the command to run. Either way the tree is leased, so `gc` keeps
/// it while the program runs and may remove an uninstalled one after.
pub fn prepare_run(
    layout: &Layout,
    what: &str,
    command: Option<&str>,
    opts: &Options,
    ui: &dyn Ui,
) -> Result<Runnable, Error> {
    if crate::trust::manifest::check_package_name(what).is_ok() {
        // Shared: no gc (nor remove) between reading the link and leasing.
        let _lock = PrefixLock::shared(layout)?;
        if let Some(r) = installed::load(layout, what)? {
            let cur = r.current()?;
            let (cmd, path) = pick_command(what, &cur.commands, command)?;
            let link = layout.package_link(what);
            let tree = fs::read_link(&link)
                .ok()
                .and_then(|t| t.file_name().map(|n| layout.pkgs_dir().join(n)))
                .filter(|t| t.is_dir())
                .ok_or_else(|| Error::io(&link, std::io::ErrorKind::NotFound.into()))?;
            let lease = lease_tree(layout, &tree)?;
            return Ok(Runnable {
                name: r.name.clone(),
                version: cur.version.clone(),
                program: tree.join(path),
                tree,
                command: cmd,
                lease,
            });
        }
    }
    let session = Session::open(layout, ui)?;
    let spec_list = [what.to_owned()];
    with_installer(&session, opts, &spec_list, |inst| {
        let c = match parse_spec(what)? {
            Spec::Dir(dir) => inst.pack_dir(&dir, what)?,
            other => inst.resolver.resolve(&other, what)?,
        };
        inst.consent(&c, "Run")?;
        let (scanned, _) = inst.fetch_and_scan(&c, &session.store)?;
        let (tree, _) =
            unpack::materialize(layout, &session.store, &scanned, false, ui.progress())?;
        let m = &scanned.manifest;
        let (cmd, path) = pick_command(&m.package.name, &m.commands, command)?;
        // Under the session's prefix lock: no gc runs until it is held.
        let lease = lease_tree(layout, &tree)?;
        Ok(Runnable {
            name: m.package.name.clone(),
            version: m.package.version.clone(),
            program: tree.join(path),
            tree,
            command: cmd,
            lease,
        })
    })
}

/// Lease the package tree `.ipkg/pkgs/<name>` for a run.
fn lease_tree(layout: &Layout, tree: &Path) -> Result<Option<super::lease::Lease>, Error> {
    let name = tree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    super::lease::Lease::take(layout, super::lease::PKGS, &name)
}

/// A package resolved and consented to for running, not fetched: what a
/// lazy run mounts.
pub struct ToRun {
    pub package: Cid,
    pub name: Option<String>,
    pub car: Option<PathBuf>,
}

/// Resolve `what` as `ipkg run` does (registries, a CID, a directory, a CAR)
/// and ask for consent where it needs it, without fetching the package.
pub fn resolve_for_run(
    layout: &Layout,
    what: &str,
    opts: &Options,
    ui: &dyn Ui,
) -> Result<ToRun, Error> {
    let session = Session::open(layout, ui)?;
    let spec_list = [what.to_owned()];
    with_installer(&session, opts, &spec_list, |inst| {
        let c = match parse_spec(what)? {
            Spec::Dir(dir) => inst.pack_dir(&dir, what)?,
            other => inst.resolver.resolve(&other, what)?,
        };
        inst.consent(&c, "Run")?;
        Ok(ToRun {
            package: c.package,
            name: c.name.clone(),
            car: c.car.clone(),
        })
    })
}

/// The command to run: the one asked for, else the one named like the
/// package, else the only one.
pub(crate) fn pick_command(
    name: &str,
    commands: &BTreeMap<String, String>,
    asked: Option<&str>,
) -> Result<(String, String), Error> {
    let pick = |c: &str| commands.get(c).map(|p| (c.to_owned(), p.clone()));
    let found = match asked {
        Some(c) => pick(c),
        None => pick(name).or_else(|| {
            (commands.len() == 1)
                .then(|| commands.iter().next().map(|(c, p)| (c.clone(), p.clone())))
                .flatten()
        }),
    };
    found.ok_or_else(|| {
        let list: Vec<&str> = commands.keys().map(String::as_str).collect();
        Error::Usage(match (asked, list.is_empty()) {
            (_, true) => format!("`{name}` has no commands to run"),
            (Some(c), false) => {
                format!("`{name}` has no command `{c}`; it has {}", list.join(", "))
            }
            (None, false) => format!(
                "`{name}` has several commands ({}): choose one with `--command`",
                list.join(", ")
            ),
        })
    })
}

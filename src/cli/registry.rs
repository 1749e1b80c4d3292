//! `ipkg registry`: registries this machine publishes to (`init`, `verify`,
//! `export`) and registries it installs from (`add`, `remove`); `list` shows
//! both, labelled.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::publish::keystore::KeyStore;
use crate::ops::publish::registry::Registry;
use crate::sources::store::{BlockStore, StoreLock};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a registry owned by a key.
    Init {
        name: String,
        /// The registry's key (`ipkg key list`).
        #[arg(long, value_name = "KEY")]
        key: String,
    },
    /// Subscribe to a registry by its key (`k51…`) or DNSLink domain, and
    /// fetch its index.
    Add {
        alias: String,
        /// `k51…`, `/ipns/k51…` or a domain with a `_dnslink` TXT record.
        target: String,
        /// Use it only when named (`ALIAS/pkg`), not for bare names.
        #[arg(long)]
        untrusted: bool,
    },
    /// Unsubscribe from a registry added with `ipkg registry add`.
    Remove { alias: String },
    /// List registries with their IPNS names and index sequence: the ones
    /// published from here and the ones subscribed to.
    List,
    /// Check a registry's index, release statements and packages.
    Verify { name: String },
    /// Write the index, its documents, releases and packages as a CAR.
    Export {
        name: String,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

pub fn run(cmd: Command, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let p = &ctx.printer;
    let open_store = || -> Result<(StoreLock, BlockStore), Error> {
        let lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        Ok((lock, store))
    };
    match cmd {
        Command::Init { name, key } => {
            let k = KeyStore::open_default()?.load(&key)?;
            let reg = Registry::create(&layout, &name, &key, &k.ipns_name())?;
            p.status(
                "Created",
                format!("registry `{}` owned by `{key}`", reg.name),
            );
            p.data(format!("/ipns/{}", reg.state.ipns))
                .map_err(stdout_err)?;
        }
        Command::Add {
            alias,
            target,
            untrusted,
        } => {
            let (_lock, store) = open_store()?;
            let net = crate::ops::resolve::fetch::configured_sources(&layout)?;
            let sources: Vec<&dyn crate::sources::BlockSource> =
                net.iter().map(|s| s.as_ref()).collect();
            let report = crate::ops::resolve::subscriptions::add(
                &layout,
                &store,
                &sources,
                &alias,
                &target,
                !untrusted,
                &|m| p.warn(m),
            )?;
            p.status(
                "Added",
                format!(
                    "registry `{alias}` (/ipns/{}, sequence {})",
                    report.ipns, report.to
                ),
            );
            super::update::print_report(p, &report)?;
        }
        Command::Remove { alias } => {
            let sub = crate::ops::resolve::subscriptions::remove(&layout, &alias)?;
            p.status(
                "Removed",
                format!("registry `{alias}` (/ipns/{})", sub.state.ipns),
            );
        }
        Command::List => {
            let list = Registry::list(&layout)?;
            let subs = crate::ops::resolve::subscriptions::list(&layout)?;
            if p.json {
                let mut v: Vec<_> = list
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "kind": "published",
                            "name": r.name, "key": r.state.key, "ipns": r.state.ipns,
                            "root": r.state.root, "sequence": r.state.sequence,
                        })
                    })
                    .collect();
                v.extend(subs.iter().map(|s| {
                    serde_json::json!({
                        "kind": "subscribed",
                        "name": s.alias, "ipns": s.state.ipns, "domain": s.state.domain,
                        "trusted": s.state.trusted, "root": s.state.root,
                        "sequence": s.state.sequence, "expires": s.state.expires,
                    })
                }));
                p.json(&serde_json::Value::Array(v)).map_err(stdout_err)?;
            } else {
                for r in list {
                    p.data(format!(
                        "{} published /ipns/{} key={} sequence={}",
                        r.name, r.state.ipns, r.state.key, r.state.sequence
                    ))
                    .map_err(stdout_err)?;
                }
                for s in subs {
                    let via = s
                        .state
                        .domain
                        .as_deref()
                        .map(|d| format!(" dnslink={d}"))
                        .unwrap_or_default();
                    let trust = if s.state.trusted { "" } else { " untrusted" };
                    p.data(format!(
                        "{} subscribed /ipns/{}{via} sequence={}{trust}",
                        s.alias, s.state.ipns, s.state.sequence
                    ))
                    .map_err(stdout_err)?;
                }
            }
        }
        Command::Verify { name } => {
            let reg = Registry::open(&layout, &name)?;
            let (_lock, store) = open_store()?;
            let report = reg.verify(&store)?;
            p.status(
                "Verified",
                format!(
                    "registry `{name}`: sequence {}, {} packages, {} releases",
                    report.sequence, report.packages, report.releases
                ),
            );
            if p.json {
                p.json(&serde_json::json!(report)).map_err(stdout_err)?;
            }
        }
        Command::Export { name, output } => {
            let reg = Registry::open(&layout, &name)?;
            let (_lock, store) = open_store()?;
            let blocks = reg.export(&store, &output)?;
            p.status(
                "Exported",
                format!(
                    "registry `{name}` ({blocks} blocks) to `{}`",
                    output.display()
                ),
            );
        }
    }
    Ok(())
}

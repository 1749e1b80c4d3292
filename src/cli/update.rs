//! `ipkg update`: refresh every subscribed registry and show what changed.

use crate::ops::Error;
use crate::ops::subscriptions::RefreshReport;
use crate::sources::BlockSource;
use crate::sources::store::{BlockStore, StoreLock};

use super::printer::Printer;
use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let p = &ctx.printer;
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let net = crate::ops::fetch::configured_sources(&layout)?;
    let sources: Vec<&dyn BlockSource> = net.iter().map(|s| s.as_ref()).collect();
    let results =
        crate::ops::subscriptions::refresh_all(&layout, &store, &sources, &|m| p.warn(m))?;
    if results.is_empty() {
        p.status(
            "Nothing",
            "to update: add a registry with `ipkg registry add ALIAS k51…|DOMAIN`",
        );
    }
    let mut first_err = None;
    let mut reports = Vec::new();
    for (alias, r) in results {
        match r {
            Ok(report) => {
                print_report(p, &report)?;
                reports.push(report);
            }
            Err(e) => {
                p.warn(format!("registry `{alias}` not updated: {e}"));
                first_err.get_or_insert(e);
            }
        }
    }
    if p.json {
        p.json(&serde_json::json!(reports)).map_err(stdout_err)?;
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What a refresh changed: a status line, and one data line per package.
pub fn print_report(p: &Printer, r: &RefreshReport) -> Result<(), Error> {
    match r.from {
        Some(from) if from == r.to => p.status("Fresh", format!("`{}` sequence {}", r.alias, r.to)),
        Some(from) => p.status(
            "Updated",
            format!(
                "`{}` sequence {from} -> {} (from {})",
                r.alias, r.to, r.source
            ),
        ),
        None => p.status(
            "Fetched",
            format!("`{}` sequence {} (from {})", r.alias, r.to, r.source),
        ),
    }
    if p.json {
        return Ok(());
    }
    for c in &r.changed {
        p.data(format!("{}: {c}", r.alias)).map_err(stdout_err)?;
    }
    for c in &r.removed {
        p.data(format!("{}: {c} removed", r.alias))
            .map_err(stdout_err)?;
    }
    Ok(())
}

//! `ipkg update`: refresh what the client knows about its registries.
//!
//! First every subscribed registry (`ipkg registry add`) is refreshed and what
//! changed is shown ([`crate::ops::resolve::subscriptions::refresh_all`]); then the
//! command index the command-not-found hooks read ([`crate::ops::cnf::cmdindex`])
//! is rebuilt from every known registry.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::cnf::cmdindex;
use crate::ops::config::Layout;
use crate::ops::resolve::subscriptions::RefreshReport;
use crate::sources::BlockSource;
use crate::sources::store::{BlockStore, StoreLock};

use super::printer::Printer;
use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build the command index from this list (tab-separated: command,
    /// registry, package, version, publisher) instead of the registries; for
    /// benchmarks and tests.
    #[arg(long, value_name = "FILE", hide = true)]
    commands_from: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    if let Some(file) = args.commands_from {
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let n = cmdindex::write(&layout, cmdindex::parse_list(&text, &file)?)?;
        ctx.printer
            .status("Indexed", format!("{n} commands from `{}`", file.display()));
        return Ok(());
    }
    // A registry that fails to refresh keeps its last index; the command
    // index is rebuilt either way, and the failure is the exit status.
    let refreshed = refresh_subscriptions(&layout, &ctx.printer);
    rebuild_command_index(&layout, &ctx.printer)?;
    refreshed
}

/// Refresh every subscription, printing what changed. Returns the first
/// failure after trying them all.
fn refresh_subscriptions(layout: &Layout, p: &Printer) -> Result<(), Error> {
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let net = crate::ops::resolve::fetch::configured_sources(layout)?;
    let sources: Vec<&dyn BlockSource> = net.iter().map(|s| s.as_ref()).collect();
    let results =
        crate::ops::resolve::subscriptions::refresh_all(layout, &store, &sources, &|m| p.warn(m))?;
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
    if p.json && !reports.is_empty() {
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

/// Rebuild the command index and say how it went. Registries whose index
/// does not load are reported and left out; the others are still indexed.
pub fn rebuild_command_index(layout: &Layout, p: &Printer) -> Result<(), Error> {
    let report = cmdindex::rebuild(layout)?;
    for (name, e) in &report.skipped {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            why.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        p.warn(format!(
            "registry `{name}` left out of the command index: {why}"
        ));
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    p.status(
        "Indexed",
        format!(
            "{} from {}",
            plural(report.commands, "command", "commands"),
            plural(report.registries, "registry", "registries")
        ),
    );
    Ok(())
}

//! `ipkg outdated`: installed packages the cached indexes offer newer
//! releases of; fetches nothing.

use crate::ops::Error;
use crate::ops::lifecycle::query::outdated;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Reads only the registry indexes already on disk; run `ipkg update` first to refresh them.\n\nExamples:\n  ipkg outdated\n  ipkg update && ipkg outdated --json"
)]
pub struct Args {}

pub fn run(_args: Args, ctx: &Ctx) -> Result<(), Error> {
    let rows = outdated(&ctx.layout()?)?;
    let p = &ctx.printer;
    if p.json {
        return p
            .json(&serde_json::to_value(&rows).unwrap_or_default())
            .map_err(stdout_err);
    }
    if rows.is_empty() {
        p.status("Up to date", "no newer releases in the cached indexes");
    }
    for r in rows {
        let mut notes = Vec::new();
        if r.held {
            notes.push("held".to_owned());
        }
        if let Some(q) = &r.requirement {
            notes.push(format!("installed as {}@{q}", r.name));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        p.data(format!(
            "{} {} -> {} from {}{notes}",
            r.name, r.version, r.latest, r.registry
        ))
        .map_err(stdout_err)?;
    }
    Ok(())
}

//! `ipkg history NAME`: every install, switch, rollback and upgrade.

use crate::ops::Error;
use crate::ops::lifecycle::query::history;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package.
    name: String,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let entries = history(&ctx.layout()?, &args.name)?;
    let p = &ctx.printer;
    if p.json {
        return p
            .json(&serde_json::to_value(&entries).unwrap_or_default())
            .map_err(stdout_err);
    }
    for e in entries {
        let change = match (&e.from, &e.to) {
            (Some(f), Some(t)) if f != t => format!("{f} -> {t}"),
            (_, Some(t)) => t.clone(),
            (Some(f), None) => f.clone(),
            (None, None) => String::new(),
        };
        p.data(format!(
            "{} {:<9} {change} {}",
            crate::trust::format_time(e.time),
            e.action,
            e.cid.as_deref().unwrap_or("")
        ))
        .map_err(stdout_err)?;
    }
    Ok(())
}

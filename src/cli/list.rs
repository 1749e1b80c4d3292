//! `ipkg list`: what is installed.

use crate::ops::Error;
use crate::ops::lifecycle::query::list;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, ctx: &Ctx) -> Result<(), Error> {
    let rows = list(&ctx.layout()?)?;
    let p = &ctx.printer;
    if p.json {
        return p
            .json(&serde_json::to_value(&rows).unwrap_or_default())
            .map_err(stdout_err);
    }
    if rows.is_empty() {
        p.status("Empty", "no packages installed");
    }
    for r in rows {
        let others: Vec<&String> = r.versions.iter().filter(|v| **v != r.version).collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(
                " (also on disk: {})",
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let dep = if r.explicit { "" } else { " [dependency]" };
        p.data(format!("{} {} {}{others}{dep}", r.name, r.version, r.cid))
            .map_err(stdout_err)?;
    }
    Ok(())
}

//! `ipkg which CMD`: which installed package provides a command.

use crate::ops::Error;
use crate::ops::lifecycle::query::which;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The command name.
    command: String,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let w = which(&ctx.layout()?, &args.command)?;
    let p = &ctx.printer;
    if p.json {
        return p
            .json(&serde_json::to_value(&w).unwrap_or_default())
            .map_err(stdout_err);
    }
    p.data(format!(
        "{} {} {} ({} -> {})",
        w.command,
        w.package,
        w.version,
        w.link.display(),
        w.target.display()
    ))
    .map_err(stdout_err)
}

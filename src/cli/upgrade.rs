//! `ipkg upgrade [NAME…]`: the newest release of installed packages; never a
//! lower version.

use crate::ops::Error;
use crate::ops::lifecycle::install::{Options, upgrade};

use super::Ctx;
use super::install::print_reports;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packages to upgrade (default: every package installed from a registry).
    names: Vec<String>,
    /// Print what would change and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Let hooks that ask for host access run outside the sandbox.
    #[arg(long)]
    allow_host_hooks: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let opts = Options {
        dry_run: args.dry_run,
        allow_host_hooks: args.allow_host_hooks,
        ..Options::default()
    };
    let reports = upgrade(&layout, &args.names, &opts, &ui)?;
    if reports.iter().all(|r| r.action == "unchanged") && !ctx.printer.json {
        ctx.printer.status("Up to date", "nothing to upgrade");
    }
    print_reports(ctx, &reports)
}

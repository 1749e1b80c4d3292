//! `ipkg rollback NAME`: back to the version before the last change.

use crate::ops::Error;
use crate::ops::lifecycle::install::{Options, rollback};

use super::Ctx;
use super::install::print_reports;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package.
    name: String,
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
    let report = rollback(&layout, &args.name, &opts, &ui)?;
    print_reports(ctx, &[report])
}

//! `ipkg remove`: take a package (or one of its versions) away.

use crate::ops::Error;
use crate::ops::lifecycle::install::{RemoveOptions, remove};

use super::Ctx;
use super::install::print_reports;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `NAME`, or `NAME@VERSION` for one version that is not current.
    #[arg(required = true, value_name = "PACKAGE")]
    packages: Vec<String>,
    /// Also delete the package's state directory.
    #[arg(long)]
    purge: bool,
    /// Remove even if other installed packages depend on it.
    #[arg(long)]
    force: bool,
    /// Print what would be removed and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Let hooks that ask for host access run outside the sandbox.
    #[arg(long)]
    allow_host_hooks: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let mut reports = Vec::new();
    for spec in &args.packages {
        let (name, version) = match spec.split_once('@') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (spec.as_str(), None),
        };
        let opts = RemoveOptions {
            version,
            purge: args.purge,
            force: args.force,
            dry_run: args.dry_run,
            allow_host_hooks: args.allow_host_hooks,
        };
        reports.push(remove(&layout, name, &opts, &ui)?);
    }
    print_reports(ctx, &reports)
}

//! `ipkg install`: fetch, verify and install packages by name, CID, directory
//! or CAR file.

use crate::ops::Error;
use crate::ops::lifecycle::install::{Options, Report, install};

use super::ui::{CliUi, interactive};
use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to install: `xmr`, `xmr@^1.2`, `alice/xmr`, `example.org/xmr`,
    /// `/ipns/k51…/xmr`, `/ipfs/CID`, `CID`, `./dir` or `./file.car`.
    #[arg(required = true, value_name = "PACKAGE")]
    packages: Vec<String>,
    /// Do not ask before installing dependencies.
    #[arg(short, long)]
    yes: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Install content no trusted registry vouches for.
    #[arg(long)]
    allow_unsigned: bool,
    /// Let hooks that ask for host access run outside the sandbox.
    #[arg(long)]
    allow_host_hooks: bool,
    /// Install again even when the same package is current.
    #[arg(long)]
    reinstall: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let opts = Options {
        dry_run: args.dry_run,
        allow_unsigned: args.allow_unsigned,
        allow_host_hooks: args.allow_host_hooks,
        allow_downgrade: false,
        reinstall: args.reinstall,
    };
    if !args.yes && !args.dry_run && interactive() {
        // Show the plan first when it holds more than what was asked for.
        let plan = install(
            &layout,
            &args.packages,
            &Options {
                dry_run: true,
                allow_unsigned: true,
                ..opts.clone()
            },
            &crate::ops::Quiet,
        )?;
        if plan.iter().any(|r| r.dependency) {
            print_reports(ctx, &plan)?;
            if !crate::ops::Ui::confirm(&ui, "Proceed?") {
                return Err(Error::Refused {
                    message: "nothing installed".into(),
                });
            }
        }
    }
    let reports = install(&layout, &args.packages, &opts, &ui)?;
    print_reports(ctx, &reports)
}

/// Reports as JSON, or one line each on stdout.
pub fn print_reports(ctx: &Ctx, reports: &[Report]) -> Result<(), Error> {
    let p = &ctx.printer;
    if p.json {
        let v = serde_json::to_value(reports).unwrap_or_default();
        return p.json(&v).map_err(stdout_err);
    }
    for r in reports {
        let from = r
            .from
            .as_ref()
            .filter(|f| **f != r.version)
            .map(|f| format!(" (from {f})"))
            .unwrap_or_default();
        let registry = r
            .registry
            .as_ref()
            .map(|g| format!(" from `{g}`"))
            .unwrap_or_else(|| " (unsigned)".into());
        let dep = if r.dependency { " [dependency]" } else { "" };
        p.data(format!(
            "{} {} {}{from}{registry} {}{dep}",
            r.action, r.name, r.version, r.cid
        ))
        .map_err(stdout_err)?;
    }
    Ok(())
}

//! `ipkg switch NAME VERSION|CID`, `ipkg switch CID`: make another version
//! current, atomically.

use crate::ops::Error;
use crate::ops::lifecycle::install::{Options, switch};

use super::Ctx;
use super::install::print_reports;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package, then the version or package CID to switch to; or only a
    /// CID (the name comes from its manifest).
    #[arg(required = true, num_args = 1..=2, value_name = "NAME VERSION|CID")]
    args: Vec<String>,
    /// Print what would change and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Install content no trusted registry vouches for.
    #[arg(long)]
    allow_unsigned: bool,
    /// Let hooks that ask for host access run outside the sandbox.
    #[arg(long)]
    allow_host_hooks: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let (name, to) = match args.args.as_slice() {
        [to] => (None, to.as_str()),
        [name, to] => (Some(name.as_str()), to.as_str()),
        _ => {
            return Err(Error::Usage(
                "give `NAME VERSION`, `NAME CID` or `CID`".into(),
            ));
        }
    };
    let opts = Options {
        dry_run: args.dry_run,
        allow_unsigned: args.allow_unsigned,
        allow_host_hooks: args.allow_host_hooks,
        allow_downgrade: true,
        reinstall: false,
    };
    let report = switch(&layout, name, to, &opts, &ui)?;
    print_reports(ctx, &[report])
}

//! `ipkg hold NAME…` and `ipkg unhold NAME…`: keep packages where they are
//! through `upgrade`, or let them move again.

use crate::ops::Error;
use crate::ops::lifecycle::install::set_held;

use super::Ctx;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:\n  ipkg hold hello\n  ipkg unhold hello")]
pub struct Args {
    /// Installed packages.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

pub fn run(args: Args, held: bool, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    for name in &args.names {
        let changed = set_held(&layout, name, held, &ui)?;
        let verb = match (held, changed) {
            (true, true) => "Held",
            (false, true) => "Unheld",
            (true, false) => "Unchanged",
            (false, false) => "Unchanged",
        };
        let what = if held {
            "upgrade leaves it where it is"
        } else {
            "upgrade may move it"
        };
        ctx.printer.status(verb, format!("{name} ({what})"));
    }
    Ok(())
}

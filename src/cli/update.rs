//! `ipkg update`: refresh what the client knows about its registries.
//!
//! Today that is the command index the command-not-found hooks read
//! ([`crate::ops::cmdindex`]), rebuilt from every known registry. Refreshing
//! subscribed (remote) registries comes first once they exist; the index
//! rebuild stays its own step after it.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::cmdindex;
use crate::ops::config::Layout;

use super::Ctx;
use super::printer::Printer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build the command index from this list (tab-separated: command,
    /// registry, package, version, publisher) instead of the registries; for
    /// benchmarks and tests.
    #[arg(long, value_name = "FILE", hide = true)]
    commands_from: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    if let Some(file) = args.commands_from {
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let n = cmdindex::write(&layout, cmdindex::parse_list(&text, &file)?)?;
        ctx.printer
            .status("Indexed", format!("{n} commands from `{}`", file.display()));
        return Ok(());
    }
    rebuild_command_index(&layout, &ctx.printer)
}

/// Rebuild the command index and say how it went. Registries whose index
/// does not load are reported and left out; the others are still indexed.
pub fn rebuild_command_index(layout: &Layout, p: &Printer) -> Result<(), Error> {
    let report = cmdindex::rebuild(layout)?;
    for (name, e) in &report.skipped {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            why.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        p.warn(format!(
            "registry `{name}` left out of the command index: {why}"
        ));
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    p.status(
        "Indexed",
        format!(
            "{} from {}",
            plural(report.commands, "command", "commands"),
            plural(report.registries, "registry", "registries")
        ),
    );
    Ok(())
}

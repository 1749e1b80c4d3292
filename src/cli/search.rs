//! `ipkg search [TERM]`: packages in the registry indexes on disk.

use crate::ops::Error;
use crate::ops::lifecycle::query::search;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Searches names, descriptions and commands in the verified indexes already on disk (`ipkg update` refreshes them); fetches nothing.\n\nExamples:\n  ipkg search\n  ipkg search greet"
)]
pub struct Args {
    /// Text to look for (any case); every package without it.
    term: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let found = search(&layout, args.term.as_deref())?;
    let p = &ctx.printer;
    if p.json {
        return p
            .json(&serde_json::to_value(&found).unwrap_or_default())
            .map_err(stdout_err);
    }
    if found.is_empty() {
        let known = !crate::ops::publish::registry::Registry::list(&layout)?.is_empty()
            || !crate::ops::resolve::subscriptions::list(&layout)?.is_empty();
        if known {
            p.status("Found", "no package matches");
        } else {
            p.status(
                "Found",
                "nothing: no registries yet; add one with `ipkg registry add NAME k51…`",
            );
        }
    }
    for f in found {
        let version = f.version.as_deref().unwrap_or("(all yanked)");
        let desc = if f.description.is_empty() {
            String::new()
        } else {
            format!(" - {}", f.description)
        };
        p.data(format!("{}/{} {version}{desc}", f.registry, f.name))
            .map_err(stdout_err)?;
    }
    Ok(())
}

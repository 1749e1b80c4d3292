//! `ipkg verify [NAME…]`: re-hash installed packages against their CIDs.

use crate::ops::Error;
use crate::ops::lifecycle::verify::verify;

use super::ui::CliUi;
use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packages to verify (default: all).
    names: Vec<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let results = verify(&layout, &args.names, &ui)?;
    let p = &ctx.printer;
    let bad: usize = results.iter().map(|r| r.problems.len()).sum();
    if p.json {
        p.json(&serde_json::to_value(&results).unwrap_or_default())
            .map_err(stdout_err)?;
    } else {
        for r in &results {
            for pr in &r.problems {
                p.data(format!(
                    "{} {}: {} ({})",
                    r.name, pr.kind, pr.path, pr.detail
                ))
                .map_err(stdout_err)?;
            }
            if r.problems.is_empty() {
                p.status(
                    "Verified",
                    format!(
                        "{} {} ({} files, {})",
                        r.name,
                        r.version,
                        r.files,
                        super::gc::human_bytes(r.bytes)
                    ),
                );
            }
        }
    }
    if bad > 0 {
        return Err(Error::VerifyFailed { problems: bad });
    }
    Ok(())
}

//! `ipkg doctor`: check this machine and what is installed; repair what can
//! be repaired safely.

use crate::ops::Error;
use crate::ops::doctor::{Status, doctor};

use super::printer::esc;
use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only report; repair nothing.
    #[arg(long)]
    no_fix: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let checks = doctor(&ctx.layout()?, !args.no_fix)?;
    let p = &ctx.printer;
    if p.json {
        p.json(&serde_json::to_value(&checks).unwrap_or_default())
            .map_err(stdout_err)?;
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
                Status::Fixed => "fixed",
            };
            p.data(format!("{tag:>5}  {}: {}", esc(&c.name), esc(&c.detail)))
                .map_err(stdout_err)?;
            if let Some(h) = &c.hint {
                p.data(format!("       hint: {h}")).map_err(stdout_err)?;
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        return Err(Error::Refused {
            message: format!("`ipkg doctor` found {failed} problem(s) it could not repair"),
        });
    }
    Ok(())
}

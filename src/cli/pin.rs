//! `ipkg pin`: the roots garbage collection keeps.

use crate::content::cid::parse;
use crate::ops::Error;
use crate::ops::pins::Pins;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Keep a CID (and everything it links to) through `ipkg gc`.
    Add {
        cid: String,
        /// Why it is kept.
        #[arg(long, default_value = "user")]
        label: String,
    },
    /// Stop keeping a CID (every label, or only `--label`).
    Rm {
        cid: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// List pinned CIDs with their labels.
    Ls,
}

pub fn run(cmd: Command, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let pins = Pins::open(layout.pins_dir())?;
    let cid_arg = |s: &str| parse(s).map_err(|e| Error::Usage(e.to_string()));
    match cmd {
        Command::Add { cid, label } => {
            let cid = cid_arg(&cid)?;
            pins.add(&cid, &label)?;
            ctx.printer.status("Pinned", format!("`{cid}` ({label})"));
        }
        Command::Rm { cid, label } => {
            let cid = cid_arg(&cid)?;
            let removed = match &label {
                Some(l) => pins.remove(&cid, l)?,
                None => pins.remove_all(&cid)?,
            };
            if !removed {
                return Err(Error::Usage(format!("`{cid}` is not pinned")));
            }
            ctx.printer.status("Unpinned", format!("`{cid}`"));
        }
        Command::Ls => {
            let list = pins.list()?;
            if ctx.printer.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|(c, l)| serde_json::json!({"cid": c.to_string(), "labels": l}))
                    .collect();
                ctx.printer
                    .json(&serde_json::Value::Array(v))
                    .map_err(stdout_err)?;
            } else {
                for (cid, labels) in list {
                    let labels: Vec<_> = labels.into_iter().collect();
                    ctx.printer
                        .data(format!("{cid} {}", labels.join(",")))
                        .map_err(stdout_err)?;
                }
            }
        }
    }
    Ok(())
}

//! `ipkg init`: write a starting `ipkg.toml`.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::publish::pack::{InitOptions, init};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package directory (default: the current one).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Package name (default: from the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Package version (default: 0.1.0).
    #[arg(long)]
    version: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let s = init(
        &args.dir,
        &InitOptions {
            name: args.name,
            version: args.version,
        },
    )?;
    let m = &s.manifest;
    ctx.printer.status(
        "Created",
        format!(
            "`{}` for {} {} ({} command{})",
            s.path.display(),
            m.package.name,
            m.package.version,
            m.commands.len(),
            if m.commands.len() == 1 { "" } else { "s" }
        ),
    );
    Ok(())
}

//! `ipkg run NAME|CID [-- ARGS]`: run a program, installed or not.

use std::os::unix::process::CommandExt;

use crate::ops::Error;
use crate::ops::install::{Options, prepare_run};

use super::Ctx;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An installed package, or anything `ipkg install` takes.
    package: String,
    /// Which of the package's commands (default: the one named like the
    /// package, or its only one).
    #[arg(long, short = 'c', value_name = "NAME")]
    command: Option<String>,
    /// Run content no trusted registry vouches for.
    #[arg(long)]
    allow_unsigned: bool,
    /// Arguments for the program (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let opts = Options {
        allow_unsigned: args.allow_unsigned,
        ..Options::default()
    };
    let target = prepare_run(&layout, &args.package, args.command.as_deref(), &opts, &ui)?;
    // Replace ipkg with the program: its exit status and signals are the
    // caller's to see, and no ipkg lock is held while it runs.
    let err = std::process::Command::new(&target.program)
        .arg0(&target.command)
        .args(&args.args)
        .exec();
    Err(Error::io(&target.program, err))
}

//! `ipkg mount TARGET MOUNTPOINT` and `ipkg unmount MOUNTPOINT`: a read-only
//! FUSE view of a UnixFS DAG whose blocks are fetched, verified, as they
//! are read (`docs/lazy.md`).

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::lifecycle::install::{Options, resolve_for_run};
use crate::ops::mount;

use super::Ctx;
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:\n  \
    ipkg mount hello ~/mnt            # a package by name, from its registry\n  \
    ipkg mount bafy…/docs ~/mnt       # any UnixFS DAG, or a path inside one\n  \
    ipkg unmount ~/mnt")]
pub struct Args {
    /// A CID (`CID/path`, `/ipfs/CID/path`) or a package (`hello`,
    /// `hello@1.2.0`, `alice/hello`, …).
    target: String,
    /// An existing empty directory.
    mountpoint: PathBuf,
    /// Mount a package no trusted registry vouches for.
    #[arg(long)]
    allow_unsigned: bool,
}

#[derive(Debug, clap::Args)]
pub struct UnmountArgs {
    /// Where `ipkg mount` mounted.
    mountpoint: PathBuf,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    if !args.mountpoint.is_dir() {
        return Err(Error::Mount {
            what: args.target,
            reason: format!("`{}` is not a directory", args.mountpoint.display()),
        });
    }
    let (root, path, car) = match super::split_cid_path(&args.target) {
        Ok((cid, path)) => (cid, path, None),
        Err(_) => {
            let ui = CliUi::new(&ctx.printer);
            let opts = Options {
                allow_unsigned: args.allow_unsigned,
                ..Options::default()
            };
            let t = resolve_for_run(&layout, &args.target, &opts, &ui)?;
            (t.package, String::new(), t.car)
        }
    };
    let blocks = mount::lazy_blocks(&layout, car.as_deref())?;
    let root = if path.is_empty() {
        root
    } else {
        crate::content::reader::resolve_path(blocks.as_ref(), &root, &path).map_err(|e| {
            Error::Mount {
                what: args.target.clone(),
                reason: e.to_string(),
            }
        })?
    };
    let shown = args.mountpoint.display().to_string();
    let printer = &ctx.printer;
    mount::mount_foreground(&layout, blocks, &root, &args.mountpoint, &|| {
        printer.status(
            "Mounted",
            format!("{root} at {shown} (`ipkg unmount {shown}` or Ctrl-C to end)"),
        );
    })
}

pub fn unmount(args: UnmountArgs, ctx: &Ctx) -> Result<(), Error> {
    mount::unmount(&args.mountpoint)?;
    ctx.printer
        .status("Unmounted", args.mountpoint.display().to_string());
    Ok(())
}

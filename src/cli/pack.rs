//! `ipkg pack`: check a package directory and print its CID.

use std::path::PathBuf;

use crate::content::NullSink;
use crate::ops::pins::Pins;
use crate::ops::publish::pack::pack;
use crate::ops::{Error, Progress};
use crate::sources::store::{BlockStore, StoreLock};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package directory, with `ipkg.toml` at its root.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Also write the package as a CAR file.
    #[arg(long, value_name = "FILE", conflicts_with = "only_hash")]
    car: Option<PathBuf>,
    /// Only compute the CID; store nothing.
    #[arg(short = 'n', long)]
    only_hash: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let p = &ctx.printer;
    let bar = p.progress();
    let progress: &dyn Progress = &bar;
    let packed = if args.only_hash {
        pack(&args.dir, &mut NullSink, progress)?
    } else {
        let layout = ctx.layout()?;
        let _lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        let packed = pack(&args.dir, &mut store.sink(), progress)?;
        store.sync().map_err(|e| Error::io(store.dir(), e))?;
        Pins::open(layout.pins_dir())?.add(&packed.cid, "pack")?;
        if let Some(car) = &args.car {
            crate::ops::content::car::export(&store, &packed.cid, car, &crate::ops::NoProgress)?;
            p.status("Wrote", format!("`{}`", car.display()));
        }
        packed
    };
    let m = &packed.manifest;
    p.status(
        "Packed",
        format!(
            "{} {} ({} files, {} bytes)",
            m.package.name, m.package.version, packed.summary.files, packed.summary.total_bytes
        ),
    );
    if p.json {
        p.json(&serde_json::json!({
            "name": m.package.name,
            "version": m.package.version.to_string(),
            "cid": packed.cid.to_string(),
            "files": packed.summary.files,
            "bytes": packed.summary.total_bytes,
        }))
        .map_err(stdout_err)?;
    } else {
        p.data(packed.cid.to_string()).map_err(stdout_err)?;
    }
    Ok(())
}

//! `ipkg get`: write a file or a directory from the local store to disk.

use std::path::PathBuf;

use crate::ops::content::get::get;
use crate::ops::{Error, Progress};
use crate::sources::store::BlockStore;

use super::gc::human_bytes;
use super::{Ctx, split_cid_path};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `CID`, `CID/path/in/dag` or `/ipfs/CID/path`.
    #[arg(value_name = "CID[/PATH]")]
    target: String,

    /// Where to write it (must not exist; default: the CID or the last path
    /// element, in the current directory).
    #[arg(short, long, value_name = "DEST")]
    output: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let (root, path) = split_cid_path(&args.target)?;
    let dest = args.output.unwrap_or_else(|| {
        PathBuf::from(
            path.rsplit('/')
                .find(|s| !s.is_empty())
                .map(String::from)
                .unwrap_or_else(|| root.to_string()),
        )
    });
    let layout = ctx.layout()?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let bar = ctx.printer.progress();
    // Whatever the store lacks comes from the configured sources, verified.
    let sources = crate::ops::resolve::fetch::configured_sources(&layout)?;
    if !sources.is_empty() {
        let _lock = crate::sources::store::StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let refs: Vec<&dyn crate::sources::BlockSource> = sources.iter().map(|s| &**s).collect();
        let fetched = crate::ops::resolve::fetch::fetch_dag(&store, &refs, &root, &bar)?;
        if fetched.blocks > 0 {
            ctx.printer.status(
                "Fetched",
                format!(
                    "`{root}` ({} blocks, {})",
                    fetched.blocks,
                    human_bytes(fetched.bytes)
                ),
            );
        }
    }
    bar.start("Writing", None);
    let report = get(&store, &root, &path, &dest, &bar)?;
    bar.finish();
    ctx.printer.status(
        "Wrote",
        format!(
            "`{}` ({} files, {} directories, {} symlinks, {})",
            dest.display(),
            report.files,
            report.dirs,
            report.symlinks,
            human_bytes(report.bytes)
        ),
    );
    Ok(())
}

//! `ipkg car export|import`: move DAGs in and out as CAR files.

use std::path::PathBuf;

use crate::content::cid::parse;
use crate::ops::Error;
use crate::ops::content::car::{export, import};
use crate::ops::pins::Pins;
use crate::sources::store::{BlockStore, StoreLock};

use super::gc::human_bytes;
use super::{Ctx, stdout_err};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the DAG under a CID to a CARv1 file.
    Export {
        /// The root CID.
        cid: String,
        /// Where to write the CAR (must not exist).
        #[arg(short, long, value_name = "FILE.car")]
        output: PathBuf,
    },
    /// Verify and store every block of a CAR (v1 or v2); print its roots.
    Import {
        /// The CAR file.
        #[arg(value_name = "FILE.car")]
        file: PathBuf,
        /// Do not pin the roots.
        #[arg(long)]
        no_pin: bool,
    },
}

pub fn run(cmd: Command, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let p = &ctx.printer;
    match cmd {
        Command::Export { cid, output } => {
            let cid = parse(&cid).map_err(|e| Error::Usage(e.to_string()))?;
            if output.symlink_metadata().is_ok() {
                return Err(Error::DestExists { path: output });
            }
            let bar = p.progress();
            crate::ops::Progress::start(&bar, "Exporting", None);
            let (blocks, bytes) = export(&store, &cid, &output, &bar)?;
            crate::ops::Progress::finish(&bar);
            p.status(
                "Exported",
                format!(
                    "`{cid}` to `{}` ({blocks} blocks, {})",
                    output.display(),
                    human_bytes(bytes)
                ),
            );
        }
        Command::Import { file, no_pin } => {
            let bar = p.progress();
            let total = std::fs::metadata(&file).map(|m| m.len()).ok();
            crate::ops::Progress::start(&bar, "Importing", total);
            let report = import(&store, &file, &bar)?;
            crate::ops::Progress::finish(&bar);
            p.status(
                "Imported",
                format!(
                    "{} new blocks ({}), {} already stored",
                    report.stats.blocks_new,
                    human_bytes(report.stats.bytes_new),
                    report.stats.blocks_existing
                ),
            );
            let pins = Pins::open(layout.pins_dir())?;
            for root in &report.roots {
                if !no_pin && !report.incomplete.iter().any(|(r, _)| r == root) {
                    pins.add(root, "car-import")?;
                }
                p.data(root.to_string()).map_err(stdout_err)?;
            }
            if let Some((root, missing)) = report.incomplete.first() {
                p.warn(format!(
                    "root `{root}` is incomplete: missing block `{missing}`; it was not pinned"
                ));
                return Err(Error::Block(crate::content::GetError::Missing(*missing)));
            }
        }
    }
    Ok(())
}

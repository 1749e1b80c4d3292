//! `ipkg serve`: a trustless gateway over the local store.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::resolve::names::RecordCache;
use crate::sources::store::BlockStore;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Worker threads.
    #[arg(long, value_name = "N", default_value_t = 8)]
    threads: usize,
    /// Also serve the IPNS records in DIR (`NAME[_anything].ipns-record`),
    /// each verified first.
    #[arg(long, value_name = "DIR")]
    records: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let p = &ctx.printer;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let cache = RecordCache::open(&layout);
    if let Some(dir) = &args.records {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".ipns-record") else {
                continue;
            };
            let name = stem.split('_').next().unwrap_or(stem);
            let bytes = std::fs::read(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            match crate::names::ipns::verify(name, &bytes, std::time::SystemTime::now()) {
                Ok(rec) => {
                    cache.offer(name, &bytes, &rec)?;
                }
                Err(e) => p.warn(format!("not serving `{file}`: {e}")),
            }
        }
    }
    crate::ops::serve::serve(store, cache, &args.listen, args.threads, &|addr| {
        p.status("Serving", format!("trustless gateway on http://{addr}"));
        let _ = p.data(format!("http://{addr}")).map_err(stdout_err);
    })
}

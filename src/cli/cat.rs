//! `ipkg cat`: print a file's bytes from the local store.

use std::io::{self, Write};

use crate::ops::Error;
use crate::ops::content::get::cat;
use crate::sources::store::BlockStore;

use super::{Ctx, split_cid_path, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `CID`, `CID/path/in/dag` or `/ipfs/CID/path`.
    #[arg(value_name = "CID[/PATH]")]
    target: String,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let (root, path) = split_cid_path(&args.target)?;
    let layout = ctx.layout()?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    cat(&store, &root, &path, &mut out)?;
    out.flush().map_err(stdout_err)
}

//! `ipkg add`: import files and directories into the local store.

use std::path::PathBuf;

use crate::content::NullSink;
use crate::content::profile::{Profile, parse_chunker};
use crate::ops::content::add::{AddOptions, ModePolicy, add_path_listing, total_size};
use crate::ops::pins::Pins;
use crate::ops::{Error, NoProgress, Progress};
use crate::sources::store::{BlockStore, StoreLock};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to add (directories are always added recursively).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Import profile: `unixfs-v1-2025` (default) or `unixfs-v0-2015` (Kubo's
    /// default for `ipfs add`).
    #[arg(long, default_value = "unixfs-v1-2025", value_name = "PROFILE")]
    profile: Profile,

    /// CID version (0 or 1), overriding the profile.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=1))]
    cid_version: Option<u8>,

    /// Use raw blocks for leaves, overriding the profile.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    raw_leaves: Option<bool>,

    /// Chunker: `size-N` for fixed chunks of N bytes, overriding the profile.
    #[arg(long, value_name = "size-N", value_parser = parse_chunker)]
    chunker: Option<usize>,

    /// Include files and directories whose names start with a dot.
    #[arg(long)]
    hidden: bool,

    /// Record permission bits in the DAG (UnixFS `mode`).
    #[arg(long)]
    preserve_mode: bool,

    /// Only compute the CIDs; store nothing.
    #[arg(short = 'n', long)]
    only_hash: bool,

    /// Print only the root CID of each path.
    #[arg(short, long, visible_short_alias = 'Q')]
    quiet: bool,

    /// Accepted for familiarity with `ipfs add -r`; directories are always
    /// recursive.
    #[arg(short, long, hide = true)]
    recursive: bool,

    /// Pin the roots so `ipkg gc` keeps them (default: true).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pin: bool,
}

impl Args {
    fn profile(&self) -> Profile {
        let mut p = self.profile.clone();
        if let Some(v) = self.cid_version {
            p.cid_version = v;
            // Kubo: `--cid-version=1` implies raw leaves unless told otherwise.
            if v == 1 && self.raw_leaves.is_none() {
                p.raw_leaves = true;
            }
        }
        if let Some(raw) = self.raw_leaves {
            p.raw_leaves = raw;
        }
        if let Some(size) = self.chunker {
            p.chunk_size = size;
        }
        p.hidden |= self.hidden;
        p.preserve_mode |= self.preserve_mode;
        p
    }
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let profile = args.profile();
    // As in Kubo, raw leaves under CIDv0 are allowed: the leaves are CIDv1 raw
    // blocks and every dag-pb node above them stays CIDv0.
    let opts = AddOptions {
        profile,
        modes: ModePolicy::AsProfile,
        skip_names: &[],
    };
    let printer = &ctx.printer;
    let bar = printer.progress();
    let progress: &dyn Progress = if args.quiet { &NoProgress } else { &bar };

    // Only take the store (and its lock) when something will be written.
    let store = if args.only_hash {
        None
    } else {
        let layout = ctx.layout()?;
        let lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        let pins = Pins::open(layout.pins_dir())?;
        Some((store, pins, lock))
    };

    for path in &args.paths {
        let total = total_size(path, opts.profile.hidden);
        progress.start("Adding", Some(total));
        // Like `ipfs add`: one `added CID PATH` line per entry, children first.
        let mut write_err = None;
        let quiet = args.quiet;
        let mut on_entry = |rel: &str, imported: &crate::content::importer::Imported| {
            if !quiet && write_err.is_none() {
                write_err = printer.data(format!("added {} {rel}", imported.cid)).err();
            }
        };
        let imported = match &store {
            None => add_path_listing(path, &opts, &mut NullSink, progress, &mut on_entry)?,
            Some((store, pins, _lock)) => {
                let mut sink = store.sink();
                let imported = add_path_listing(path, &opts, &mut sink, progress, &mut on_entry)?;
                store.sync().map_err(|e| Error::io(store.dir(), e))?;
                if args.pin {
                    pins.add(&imported.cid, "add")?;
                }
                imported
            }
        };
        progress.finish();
        if let Some(e) = write_err {
            return Err(stdout_err(e));
        }
        if args.quiet {
            printer.data(imported.cid.to_string()).map_err(stdout_err)?;
        }
    }
    Ok(())
}

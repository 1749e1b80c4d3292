//! `ipkg gc`: delete blocks no pinned root reaches.

use crate::ops::Error;
use crate::ops::lifecycle::gc::gc;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report what would be deleted without deleting it.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let report = gc(&layout, args.dry_run)?;
    let p = &ctx.printer;
    if p.json {
        let v = serde_json::to_value(&report).unwrap_or_default();
        return p.json(&v).map_err(stdout_err);
    }
    for cid in &report.missing {
        p.warn(format!(
            "a pinned root reaches `{cid}`, which is not in the store"
        ));
    }
    for cid in &report.corrupt {
        p.warn(format!("block `{cid}` was damaged and is removed"));
    }
    let verb = if args.dry_run { "Would free" } else { "Freed" };
    if report.trees_removed + report.files_removed > 0 {
        p.status(
            verb,
            format!(
                "{} in {} unpacked files ({} unused package trees)",
                human_bytes(report.file_bytes_freed),
                report.files_removed,
                report.trees_removed
            ),
        );
    }
    p.status(
        verb,
        format!(
            "{} ({} blocks; {} kept for {} roots)",
            human_bytes(report.bytes_freed),
            report.blocks_removed,
            report.blocks_kept,
            report.roots
        ),
    );
    Ok(())
}

/// Bytes as a short human string (`12.4 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

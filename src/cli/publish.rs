//! `ipkg publish`: sign a release and the registry's next index.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::publish::keystore::KeyStore;
use crate::ops::publish::{DEFAULT_EXPIRES_DAYS, PublishOptions, PublishReport, publish, yank};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package directory, with `ipkg.toml` at its root.
    #[arg(required_unless_present = "yank")]
    dir: Option<PathBuf>,
    /// The registry to publish to (`ipkg registry list`).
    #[arg(long, value_name = "NAME")]
    registry: String,
    /// The publisher key (default: the registry's key).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Days until the new index expires.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_EXPIRES_DAYS,
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    expires_in: u64,
    /// Mark VERSION of `--package` as bad instead of publishing.
    #[arg(
        long,
        value_name = "VERSION",
        requires = "package",
        conflicts_with = "dir"
    )]
    yank: Option<semver::Version>,
    /// With `--yank`, clear the mark instead.
    #[arg(long, requires = "yank")]
    undo: bool,
    /// The package `--yank` is about.
    #[arg(long, value_name = "NAME", requires = "yank")]
    package: Option<String>,
    /// Also hand the registry out: `kubo` puts it (index, releases,
    /// packages) into a Kubo node, pinned, and publishes its IPNS record
    /// there; `routers` sends the record to the configured delegated routers.
    #[arg(long, value_name = "DEST", value_enum)]
    to: Vec<Destination>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Destination {
    Kubo,
    Routers,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let layout = ctx.layout()?;
    let keys = KeyStore::open_default()?;
    let p = &ctx.printer;
    let report = if let (Some(version), Some(package)) = (&args.yank, &args.package) {
        let (report, changed) = yank(
            &layout,
            &keys,
            &args.registry,
            package,
            version,
            !args.undo,
            args.expires_in,
        )?;
        let what = if args.undo { "Unyanked" } else { "Yanked" };
        if changed == 0 {
            p.status("Unchanged", format!("{package} {version} was already so"));
        } else {
            p.status(what, format!("{package} {version} in `{}`", args.registry));
        }
        report
    } else {
        let dir = args.dir.as_deref().unwrap_or(std::path::Path::new("."));
        let report = publish(
            &layout,
            &keys,
            dir,
            &PublishOptions {
                registry: &args.registry,
                key: args.key.as_deref(),
                expires_in_days: args.expires_in,
            },
            &p.progress(),
        )?;
        for r in &report.releases {
            if r.new {
                p.status(
                    "Published",
                    format!("{} {} ({}) `{}`", r.name, r.version, r.target, r.package),
                );
            } else {
                p.status(
                    "Unchanged",
                    format!(
                        "{} {} ({}) is already published with this content",
                        r.name, r.version, r.target
                    ),
                );
            }
        }
        report
    };
    if args.to.contains(&Destination::Routers) {
        let reg = crate::ops::publish::registry::Registry::open(&layout, &args.registry)?;
        let path = reg.dir.join("ipns-record");
        let record = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let sent = crate::ops::resolve::names::publish_record(&layout, &reg.state.ipns, &record)?;
        if sent.is_empty() {
            return Err(Error::Usage(
                "no delegated router to publish to: set `routers` in config.toml".into(),
            ));
        }
        for (to, r) in sent {
            match r {
                Ok(()) => p.status("Published", format!("IPNS record to {to}")),
                Err(e) => return Err(Error::Usage(format!("{to}: {e}"))),
            }
        }
    }
    if args.to.contains(&Destination::Kubo) {
        let _lock = crate::sources::store::StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store = crate::sources::store::BlockStore::open(layout.blocks_dir())
            .map_err(|e| Error::io(layout.blocks_dir(), e))?;
        let pushed = crate::ops::resolve::seed::push_registry(&layout, &store, &args.registry)?;
        p.status(
            "Pushed",
            format!(
                "registry `{}` to Kubo at {} (index `{}`{})",
                args.registry,
                pushed.kubo,
                pushed.root,
                if pushed.record {
                    ", IPNS record published"
                } else {
                    ""
                }
            ),
        );
    }
    print_report(ctx, &report)?;
    // A freshly published command is found by the command-not-found hooks.
    if let Err(e) = super::update::rebuild_command_index(&layout, p) {
        p.warn(format!("the command index was not rebuilt: {e}"));
    }
    Ok(())
}

fn print_report(ctx: &Ctx, r: &PublishReport) -> Result<(), Error> {
    let p = &ctx.printer;
    if r.index.is_some() {
        p.status(
            "Signed",
            format!("index of `{}` (sequence {})", r.registry, r.sequence),
        );
    }
    if p.json {
        return p.json(&serde_json::json!(r)).map_err(stdout_err);
    }
    for rel in &r.releases {
        p.data(&rel.release).map_err(stdout_err)?;
    }
    p.data(format!("/ipns/{}", r.ipns)).map_err(stdout_err)
}

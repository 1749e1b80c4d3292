//! `ipkg run TARGET [-- ARGS]`: run a program without installing it, plainly,
//! in a sandbox (`--sandbox`), or as a pure computation (`--pure`).
//!
//! TARGET is a CID (`CID`, `CID/path/in/it`, `/ipfs/CID/...`) or a local
//! file or directory. A package directory runs `path` when given, else the
//! only command of its `ipkg.toml` (or the command named like the package).

use std::path::PathBuf;
use std::time::Duration;

use crate::ops::Error;
use crate::ops::execute::{self, Program, PureOptions, SandboxOptions};
use crate::sandbox::{Limits, RunOutcome};
use crate::sources::store::{BlockStore, StoreLock};

use super::Ctx;
use super::execute::{PureArgs, parse_duration, parse_size};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to run: a CID, `CID/path`, or a local file or directory.
    #[arg(value_name = "TARGET")]
    target: String,
    /// Arguments for the program (after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,

    /// Run under bubblewrap: no network, the package read-only, private `/tmp`
    /// and `HOME`, only the host's system directories.
    #[arg(long, conflicts_with = "pure")]
    sandbox: bool,
    /// Share a host path read-write with the sandbox (repeatable).
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    bind: Vec<PathBuf>,
    /// Let the sandboxed program use the network.
    #[arg(long, requires = "sandbox")]
    net: bool,

    /// Run as a pure computation: only the rootfs, `/input` and `/output`;
    /// `/output` is added to the store and its CID printed.
    #[arg(long)]
    pure: bool,
    /// Root file system of a pure run (a CID of a tree or `.tar.gz`). With it,
    /// an absolute TARGET is a path inside the rootfs.
    #[arg(long, value_name = "CID", requires = "pure")]
    rootfs: Option<String>,
    /// Mounted read-only at `/input` in a pure run: a CID or a local path.
    #[arg(long, value_name = "CID|PATH", requires = "pure")]
    input: Option<String>,

    /// Kill the program after this long (`90s`, `500ms`; bare numbers are seconds).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Memory limit (`256M`, `1G`).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// Most processes the program may have at once.
    #[arg(long, value_name = "N")]
    pids: Option<u32>,
    /// Most bytes `/output` may hold (pure runs).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "pure")]
    max_output: Option<u64>,
    /// Run even when the same pure run is memoised.
    #[arg(long, requires = "pure")]
    no_cache: bool,
    /// Run a pure computation twice and report whether the outputs differ.
    #[arg(long, requires = "pure")]
    check: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    if args.pure {
        let program = if args.rootfs.is_some()
            && args.target.starts_with('/')
            && !args.target.starts_with("/ipfs/")
        {
            Program::InRootfs(args.target.clone())
        } else {
            Program::Package(args.target.clone())
        };
        let pure = PureArgs {
            timeout: args.timeout,
            memory: args.memory,
            pids: args.pids,
            max_output: args.max_output,
            no_cache: args.no_cache,
            check: args.check,
        };
        let opts = PureOptions {
            program,
            rootfs: args.rootfs,
            input: args.input,
            args: args.args,
            limits: pure.limits(),
            no_cache: pure.no_cache,
            check: pure.check,
        };
        return super::execute::pure(&opts, ctx);
    }

    let layout = ctx.layout()?;
    let (pkg_dir, command) = {
        let _lock = StoreLock::shared(&layout.store_lock())
            .map_err(|e| Error::io(layout.store_lock(), e))?;
        let store =
            BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
        execute::resolve_package(&layout, &store, &args.target)?
    };
    let limits = Limits {
        timeout: args.timeout,
        memory: args.memory,
        pids: args.pids,
        file_size: None,
    };
    if args.sandbox {
        let opts = SandboxOptions {
            binds: args.bind,
            net: args.net,
            limits,
        };
        let outcome = execute::run_sandboxed(&layout, &pkg_dir, &command, &args.args, &opts)?;
        return finish(&args.target, &outcome, &limits, ctx);
    }
    if limits != Limits::default() {
        return Err(Error::Usage(
            "`--timeout`, `--memory` and `--pids` need `--sandbox` or `--pure`".into(),
        ));
    }
    let code = execute::run_plain(&pkg_dir, &command, &args.args)?;
    ctx.set_exit(code);
    Ok(())
}

/// Report a limit hit as an error; otherwise pass the exit code through.
fn finish(target: &str, outcome: &RunOutcome, limits: &Limits, ctx: &Ctx) -> Result<(), Error> {
    if let Some(reason) = execute::limit_reason(outcome, limits) {
        return Err(Error::LimitHit {
            program: target.to_string(),
            reason,
        });
    }
    ctx.set_exit(outcome.code());
    Ok(())
}

//! `ipkg run PACKAGE [-- ARGS]`: run a program, installed or not; plainly,
//! in a sandbox (`--sandbox`), or as a pure computation (`--pure`).
//!
//! Plain and `--sandbox` runs take any PACKAGE `ipkg install` takes (an
//! installed name first). `--pure` takes a CID, `CID/path`, or a local file or
//! directory; with `--rootfs`, an absolute path is a program inside the rootfs.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ops::Error;
use crate::ops::execute::{self, Program, PureOptions, SandboxOptions};
use crate::ops::lifecycle::install::{Options, prepare_run};
use crate::ops::mount::run::{LazyRun, run_lazy};
use crate::sandbox::Limits;

use super::Ctx;
use super::execute::{parse_duration, parse_size};
use super::ui::CliUi;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An installed package, or anything `ipkg install` takes (with `--pure`:
    /// a CID, `CID/path`, or a local path).
    package: String,
    /// Which of the package's commands (default: the one named like the
    /// package, or its only one).
    #[arg(long, short = 'c', value_name = "NAME", conflicts_with = "pure")]
    command: Option<String>,
    /// Run content no trusted registry vouches for.
    #[arg(long)]
    allow_unsigned: bool,
    /// Arguments for the program (after `--`).
    #[arg(last = true)]
    args: Vec<String>,

    /// Run under bubblewrap: no network, the package read-only, private `/tmp`
    /// and `HOME`, only the host's system directories (`docs/sandbox.md`).
    #[arg(long, conflicts_with = "pure")]
    sandbox: bool,
    /// Share a host path read-write with the sandbox (repeatable).
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    bind: Vec<PathBuf>,
    /// Let the sandboxed program use the host's network namespace (loopback
    /// services included: docs/sandbox.md).
    #[arg(long, requires = "sandbox")]
    net: bool,

    /// Run from a lazy mount: start at once, fetching (and verifying) only
    /// the blocks the program reads (`docs/lazy.md`).
    #[arg(long, conflicts_with = "sandbox")]
    lazy: bool,

    /// Run as a pure computation: only the rootfs, `/input` and `/output`;
    /// `/output` is added to the store and its CID printed.
    #[arg(long)]
    pure: bool,
    /// Root file system of a pure run (a CID of a tree or `.tar.gz`).
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
    let limits = Limits {
        timeout: args.timeout,
        memory: args.memory,
        pids: args.pids,
        file_size: None,
    };
    if args.pure {
        let in_rootfs = args.rootfs.is_some()
            && args.package.starts_with('/')
            && !args.package.starts_with("/ipfs/");
        let opts = PureOptions {
            program: if in_rootfs {
                Program::InRootfs(args.package)
            } else {
                Program::Package(args.package)
            },
            rootfs: args.rootfs,
            input: args.input,
            args: args.args,
            limits: execute::ExecLimits {
                timeout: args.timeout,
                memory: args.memory,
                pids: args.pids,
                max_output: args.max_output,
            },
            no_cache: args.no_cache,
            check: args.check,
            lazy: args.lazy,
        };
        return super::execute::pure(&opts, ctx);
    }
    if !args.sandbox && limits != Limits::default() {
        return Err(Error::Usage(
            "`--timeout`, `--memory` and `--pids` need `--sandbox` or `--pure`".into(),
        ));
    }

    let layout = ctx.layout()?;
    let ui = CliUi::new(&ctx.printer);
    let opts = Options {
        allow_unsigned: args.allow_unsigned,
        ..Options::default()
    };
    if args.lazy {
        let installed = crate::trust::manifest::check_package_name(&args.package).is_ok()
            && crate::ops::lifecycle::installed::load(&layout, &args.package)?.is_some();
        // An installed package is already local: run it as usual.
        if !installed {
            let what = LazyRun {
                package: &args.package,
                command: args.command.as_deref(),
                args: &args.args,
            };
            let code = run_lazy(&layout, &what, &opts, &ui)?;
            ctx.set_exit(code);
            return Ok(());
        }
    }
    let target = prepare_run(&layout, &args.package, args.command.as_deref(), &opts, &ui)?;
    if args.sandbox {
        let rel = target
            .program
            .strip_prefix(&target.tree)
            .map_err(|_| Error::NoCommand {
                program: args.package.clone(),
                reason: "its command is outside the package".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let sandbox = SandboxOptions {
            binds: args.bind,
            net: args.net,
            limits,
        };
        let outcome = execute::run_sandboxed(&layout, &target.tree, &rel, &args.args, &sandbox)?;
        if let Some(reason) = execute::limit_reason(&outcome, &limits) {
            return Err(Error::LimitHit {
                program: args.package,
                reason,
            });
        }
        ctx.set_exit(outcome.code());
        return Ok(());
    }
    // Replace ipkg with the program: its exit status and signals are the
    // caller's to see, and no ipkg lock is held while it runs; only its lease
    // (an open descriptor the program inherits) keeps its tree from `gc`.
    if let Some(lease) = &target.lease {
        lease
            .keep_across_exec()
            .map_err(|e| Error::io(&target.program, e))?;
    }
    let err = std::process::Command::new(&target.program)
        .arg0(&target.command)
        .args(&args.args)
        .exec();
    Err(Error::io(&target.program, err))
}

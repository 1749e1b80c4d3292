//! The command line: clap definitions, one file per subcommand.
//!
//! Each subcommand file holds its `Args` and a `run` that parses what clap could
//! not, calls one operation in [`crate::ops`] and prints through the
//! [`printer::Printer`]. Errors are rendered once, here, with their causes and a
//! hint, and turned into the documented exit code.

use std::io;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::ops::config::{Layout, Overrides};
use crate::ops::{Error, ExitCode};

mod add;
mod bundle;
mod car;
mod cat;
mod command_not_found;
mod config;
mod doctor;
mod execute;
mod gc;
mod get;
mod history;
mod hold;
mod info;
mod init;
mod install;
mod key;
mod list;
mod mount;
mod outdated;
mod pack;
mod pin;
pub mod printer;
mod publish;
mod registry;
mod remove;
mod rollback;
mod run;
mod search;
mod serve;
mod shell_init;
mod switch;
mod ui;
mod update;
mod upgrade;
mod verify;
mod which;

use printer::{Printer, Verbosity};

/// ipkg: install all-in-one programs from IPFS, verified end to end.
#[derive(Debug, Parser)]
#[command(
    name = "ipkg",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_long_help = "Examples:\n  ipkg registry add alice k51…\n  ipkg search\n  ipkg install hello\n  ipkg install hello@1.0.0\n  ipkg upgrade"
)]
pub struct Cli {
    /// Where packages live (default: `/opt/ipfs_programs` for root, the XDG data
    /// dir otherwise).
    #[arg(
        long,
        global = true,
        env = "IPKG_PREFIX",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    prefix: Option<PathBuf>,

    /// Where command links go (default: `/usr/local/bin` for root, `~/.local/bin`
    /// otherwise).
    #[arg(
        long,
        global = true,
        env = "IPKG_BIN_DIR",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    bin_dir: Option<PathBuf>,

    /// Kubo's RPC API address (default: `IPFS_API`, the config, or the `api`
    /// file of `$IPFS_PATH` or `~/.ipfs`); `off` to leave Kubo alone.
    #[arg(
        long,
        global = true,
        value_name = "MULTIADDR",
        help_heading = "Global options"
    )]
    api: Option<String>,

    /// A trustless gateway to fetch from (repeatable; replaces the configured
    /// ones).
    #[arg(
        long = "gateway",
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    gateways: Vec<String>,

    /// Print data as JSON.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,

    /// Say less on stderr: only warnings and errors.
    #[arg(
        short,
        long,
        global = true,
        visible_alias = "silent",
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    quiet: bool,

    /// Say more on stderr (`-v`: the layout and sources in use; `-vv`: also
    /// the config files read).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    verbose: u8,

    /// Answer yes to questions about what a command will do (never to
    /// content no registry vouches for: that is `--allow-unsigned`).
    #[arg(short, long, global = true, help_heading = "Global options")]
    yes: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install packages (and their dependencies), verified end to end.
    Install(install::Args),
    /// Remove packages: their commands, links and roots.
    #[command(visible_alias = "uninstall")]
    Remove(remove::Args),
    /// Make another version of a package current, atomically.
    Switch(switch::Args),
    /// Go back to the version before the last change.
    Rollback(rollback::Args),
    /// Install the newest release of installed packages.
    Upgrade(upgrade::Args),
    /// List installed packages the cached indexes have newer releases of.
    Outdated(outdated::Args),
    /// Keep packages at their current version through `upgrade`.
    Hold(hold::Args),
    /// Let held packages upgrade again.
    Unhold(hold::Args),
    /// List installed packages.
    #[command(visible_alias = "ls")]
    List(list::Args),
    /// Show an installed package.
    Info(info::Args),
    /// Find packages in the registry indexes on disk.
    Search(search::Args),
    /// Show a package's installs, switches and rollbacks.
    History(history::Args),
    /// Check installed packages byte for byte against their CIDs.
    Verify(verify::Args),
    /// Run a package's command, installed or not.
    Run(run::Args),
    /// Mount a package or any UnixFS DAG read-only, fetching blocks as they are read.
    Mount(mount::Args),
    /// Unmount what `ipkg mount` mounted.
    Unmount(mount::UnmountArgs),
    /// Show which package provides a command.
    Which(which::Args),
    /// Check the machine and the installed packages; repair what is broken.
    Doctor(doctor::Args),
    /// Add files or directories to the local store and print their CIDs.
    Add(add::Args),
    /// Print a file's bytes from the local store.
    Cat(cat::Args),
    /// Write a file or directory from the local store to disk.
    Get(get::Args),
    /// Export or import CAR files.
    #[command(subcommand)]
    Car(car::Command),
    /// Keep, drop or list roots that garbage collection keeps.
    #[command(subcommand)]
    Pin(pin::Command),
    /// Delete blocks, trees and files nothing installed or pinned needs.
    Gc(gc::Args),
    /// Write a starting `ipkg.toml` for a package directory.
    // `--version` here is the package's, not ipkg's.
    #[command(disable_version_flag = true)]
    Init(init::Args),
    /// Check a package directory against its manifest and print its CID.
    Pack(pack::Args),
    /// Make an all-in-one package from dynamically linked programs: their
    /// shared libraries, loader and launchers.
    // `--version` here is the package's, not ipkg's.
    #[command(disable_version_flag = true)]
    Bundle(bundle::Args),
    /// Pack, sign and publish a release to a registry.
    Publish(publish::Args),
    /// Make, list, export, import and rotate signing keys.
    #[command(subcommand)]
    Key(key::Command),
    /// Create, list, verify and export registries.
    #[command(subcommand)]
    Registry(registry::Command),
    /// Serve the local store as a trustless gateway.
    Serve(serve::Args),
    /// Refresh what ipkg knows about its registries (and the command index).
    Update(update::Args),
    /// Print the command-not-found hook for a shell, for `eval`.
    ShellInit(shell_init::Args),
    /// What the shell hooks call when a command is missing.
    #[command(hide = true, name = "command-not-found")]
    NotFound(command_not_found::Args),
    /// Run ROOTFS's `/sbin/init` as a pure computation over INPUT; print the
    /// CID of its `/output`.
    Execute(execute::Args),
    /// Show or change the configuration: every setting and where it comes from.
    #[command(subcommand)]
    Config(config::Command),
    /// Print a completion script for a shell.
    #[command(
        after_long_help = "Examples:\n  source <(ipkg completions bash)\n  ipkg completions zsh > ~/.zfunc/_ipkg\n  ipkg completions fish | source"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this help.
    #[command(after_long_help = "Example:\n  ipkg man > ipkg.1 && man -l ipkg.1")]
    Man,
}

/// Everything a command needs besides its own arguments.
pub struct Ctx {
    pub printer: Printer,
    overrides: Overrides,
    /// `-y/--yes`: do not ask.
    pub yes: bool,
    /// The exit code of a command that succeeded but passes on a program's.
    exit: std::cell::Cell<i32>,
}

impl Ctx {
    /// The resolved prefix and bin dir.
    pub fn layout(&self) -> Result<Layout, Error> {
        let layout = Layout::resolve(&self.overrides)?;
        // A lazy mount whose ipkg was killed is detached by the next command.
        crate::ops::mount::reap_stale(&layout);
        Ok(layout)
    }

    /// Exit with `code` once the command returns `Ok` (a program's status).
    pub fn set_exit(&self, code: i32) {
        self.exit.set(code);
    }
}

/// Run the CLI and return the process exit code.
pub fn main() -> i32 {
    // The shell hooks run this on every missing command: skip building clap.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "command-not-found")
        && let Some(args) = command_not_found::parse_fast(&argv[2..])
    {
        return command_not_found::run(args, &Overrides::default());
    }
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => ExitCode::Usage as i32,
            };
        }
    };
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ctx = Ctx {
        printer: Printer::new(verbosity, cli.json),
        overrides: Overrides {
            prefix: cli.prefix,
            bin_dir: cli.bin_dir,
            api: cli.api,
            gateways: cli.gateways,
        },
        yes: cli.yes,
        exit: std::cell::Cell::new(0),
    };
    if cli.verbose > 0 {
        say_where(&ctx, cli.verbose);
    }
    let result = match cli.command {
        Command::Install(args) => install::run(args, &ctx),
        Command::Remove(args) => remove::run(args, &ctx),
        Command::Switch(args) => switch::run(args, &ctx),
        Command::Rollback(args) => rollback::run(args, &ctx),
        Command::Upgrade(args) => upgrade::run(args, &ctx),
        Command::Outdated(args) => outdated::run(args, &ctx),
        Command::Hold(args) => hold::run(args, true, &ctx),
        Command::Unhold(args) => hold::run(args, false, &ctx),
        Command::List(args) => list::run(args, &ctx),
        Command::Info(args) => info::run(args, &ctx),
        Command::Search(args) => search::run(args, &ctx),
        Command::History(args) => history::run(args, &ctx),
        Command::Verify(args) => verify::run(args, &ctx),
        Command::Run(args) => run::run(args, &ctx),
        Command::Mount(args) => mount::run(args, &ctx),
        Command::Unmount(args) => mount::unmount(args, &ctx),
        Command::Which(args) => which::run(args, &ctx),
        Command::Doctor(args) => doctor::run(args, &ctx),
        Command::Add(args) => add::run(args, &ctx),
        Command::Cat(args) => cat::run(args, &ctx),
        Command::Get(args) => get::run(args, &ctx),
        Command::Car(cmd) => car::run(cmd, &ctx),
        Command::Pin(cmd) => pin::run(cmd, &ctx),
        Command::Gc(args) => gc::run(args, &ctx),
        Command::Init(args) => init::run(args, &ctx),
        Command::Pack(args) => pack::run(args, &ctx),
        Command::Bundle(args) => bundle::run(args, &ctx),
        Command::Publish(args) => publish::run(args, &ctx),
        Command::Key(cmd) => key::run(cmd, &ctx),
        Command::Registry(cmd) => registry::run(cmd, &ctx),
        Command::Serve(args) => serve::run(args, &ctx),
        Command::Execute(args) => execute::run(args, &ctx),
        Command::Update(args) => update::run(args, &ctx),
        Command::ShellInit(args) => shell_init::run(args, &ctx),
        Command::NotFound(args) => return command_not_found::run(args, &ctx.overrides),
        Command::Config(cmd) => config::run(cmd, &ctx),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ipkg", &mut io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut io::stdout())
            .map_err(stdout_err),
    };
    match result {
        Ok(()) => ctx.exit.get(),
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let hint = e.hint();
            ctx.printer.error(&e, hint.as_deref());
            e.exit_code() as i32
        }
    }
}

/// `-v`: the layout and sources in force; `-vv`: also the config files.
fn say_where(ctx: &Ctx, level: u8) {
    let p = &ctx.printer;
    match crate::ops::config::effective(&ctx.overrides) {
        Ok(settings) => {
            for s in settings
                .iter()
                .filter(|s| !s.value.is_empty() && s.value != "[]")
            {
                p.status("Using", format!("{} = {} ({})", s.key, s.value, s.source));
            }
        }
        Err(e) => p.warn(format!("{e}")),
    }
    if level > 1 {
        for (f, exists) in crate::ops::config::config_files() {
            let state = if exists { "read" } else { "absent" };
            p.status("Config", format!("`{}` ({state})", f.display()));
        }
    }
}

/// A reader that went away (`ipkg cat x | head`) is not a failure (as ripgrep).
fn is_broken_pipe(e: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// Turn a failed write to stdout into an [`Error`].
/// Tell a reader that a receipt is damaged and what it sees instead.
pub(crate) fn warn_damaged(layout: &crate::ops::Layout, printer: &printer::Printer) {
    for (_, e) in crate::ops::lifecycle::installed::damaged_receipts(layout) {
        printer.warn(format!(
            "{e}; shown as `ipkg doctor` would rebuild it: run `ipkg doctor`"
        ));
    }
}

/// Warn about key files other users can read.
pub(crate) fn warn_loose_keys(
    keys: &crate::ops::publish::keystore::KeyStore,
    printer: &printer::Printer,
) {
    for f in keys.loose_files() {
        printer.warn(format!(
            "`{}` is readable by other users, and a key is a secret: `chmod 600` it (`chmod 700` for the directory)",
            f.display()
        ));
    }
}

pub(crate) fn stdout_err(e: io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Split `CID/path`, `/ipfs/CID/path` or `ipfs://CID/path` into the root and the
/// path inside it.
pub(crate) fn split_cid_path(target: &str) -> Result<(crate::content::Cid, String), Error> {
    let t = target
        .strip_prefix("ipfs://")
        .or_else(|| target.strip_prefix("/ipfs/"))
        .unwrap_or(target);
    let (cid, path) = match t.split_once('/') {
        Some((c, p)) => (c, p),
        None => (t, ""),
    };
    let cid = crate::content::cid::parse(cid).map_err(|e| Error::Usage(e.to_string()))?;
    Ok((cid, path.trim_matches('/').to_string()))
}

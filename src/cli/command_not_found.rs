//! `ipkg command-not-found [--hook] CMD [ARGS…]` (hidden): what the shell
//! hooks call when a command is missing (`docs/command-not-found.md`).
//!
//! Exit status: 127 when the command was not run (not in the index,
//! declined, or only suggested). Alone, a hit that gets installed `exec`s the
//! command, so its status is the command's. With `--hook` (the shell hooks)
//! the handler never runs the command itself: it prints the installed
//! command's path on stdout and exits 0 for the hook to run it, and exits 3
//! on a miss, printing nothing, so the hook can hand over to the handler it
//! replaced or print the shell's own message.
//!
//! Startup is kept short: `cli::main` sends `argv[1] == "command-not-found"`
//! here before clap is built, and a lookup reads the config and the command
//! index only.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;

use crate::ops::cnf::cmdindex::{self, Candidate};
use crate::ops::cnf::{self, Decision};
use crate::ops::config::{Layout, Overrides, load_config};

use super::printer::{Printer, Verbosity};

/// The shell's code for "command not found".
pub const NOT_RUN: i32 = 127;
/// `--hook`: no registry provides the command.
pub const HOOK_MISS: i32 = 3;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Called from a shell hook: print the installed command's path instead
    /// of running it, exit 3 on a miss.
    #[arg(long)]
    hook: bool,
    /// The command that was not found.
    command: OsString,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Parse `[--hook] [--] CMD [ARGS…]` without clap (the fast path).
pub fn parse_fast(argv: &[OsString]) -> Option<Args> {
    let mut rest = argv;
    let mut hook = false;
    if rest.first().is_some_and(|a| a == "--hook") {
        hook = true;
        rest = &rest[1..];
    }
    if rest.first().is_some_and(|a| a == "--") {
        rest = &rest[1..];
    }
    let (command, args) = rest.split_first()?;
    if command.to_str().is_some_and(|c| c.starts_with('-')) {
        return None;
    }
    Some(Args {
        hook,
        command: command.clone(),
        args: args.to_vec(),
    })
}

/// Run the handler; returns the exit status.
pub fn run(args: Args, overrides: &Overrides) -> i32 {
    let p = Printer::new(Verbosity::Normal, false);
    let command = args.command.to_string_lossy().into_owned();
    let miss = |p: &Printer| {
        if args.hook {
            HOOK_MISS
        } else {
            p.message(format!("{command}: command not found"));
            NOT_RUN
        }
    };
    let found = load_config().and_then(|config| {
        let layout = Layout::resolve_with(overrides, &config)?;
        let candidates = match args.command.to_str() {
            Some(c) => cmdindex::lookup(&layout, c)?,
            None => Vec::new(),
        };
        Ok((config, layout, candidates))
    });
    let (config, layout, candidates) = match found {
        Ok(found) => found,
        Err(e) => {
            // A broken config or index must not break the shell.
            p.error(&e, e.hint().as_deref());
            return miss(&p);
        }
    };
    if candidates.is_empty() {
        return miss(&p);
    }
    // Installed already, but the shell did not find it: offering to install
    // it again would not help.
    let installed = cnf::command_path(&layout, &command);
    if installed.exists() {
        p.message(format!(
            "`{command}` is installed as `{}`, but `{}` is not on `PATH`",
            installed.display(),
            layout.bin_dir.display()
        ));
        p.message(format!(
            "  hint: add `{}` to `PATH`, e.g. in your shell's startup file",
            layout.bin_dir.display()
        ));
        return NOT_RUN;
    }
    let cnf_config = config.command_not_found.unwrap_or_default();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let chosen = match cnf::decide(&cnf_config, &candidates, interactive) {
        Decision::Suggest => {
            suggest(&p, &command, &candidates);
            return NOT_RUN;
        }
        Decision::Install(c) => {
            p.message(format!(
                "`{command}` is not installed: installing {} (policy `auto`, trusted registry)",
                describe(c)
            ));
            c
        }
        Decision::Ask(list) => match ask(&command, &list) {
            Some(c) => c,
            None => return NOT_RUN,
        },
    };
    install_and_run(&p, &layout, chosen, &args)
}

/// `ipkg install` it, then run it (or, for a hook, say where it is).
fn install_and_run(p: &Printer, layout: &Layout, c: &Candidate, args: &Args) -> i32 {
    match cnf::install(layout, c) {
        Ok(status) if status.success() => {}
        Ok(_) => {
            p.message(format!("`{}` was not installed", c.command));
            return NOT_RUN;
        }
        Err(e) => {
            p.error(&e, None);
            return NOT_RUN;
        }
    }
    let path = cnf::command_path(layout, &c.command);
    if !path.exists() {
        p.warn(format!(
            "`{}` was installed but `{}` does not exist",
            c.install_spec(),
            path.display()
        ));
        return NOT_RUN;
    }
    if args.hook {
        return match p.data(path.display().to_string()) {
            Ok(()) => 0,
            Err(_) => NOT_RUN,
        };
    }
    let err = std::process::Command::new(&path)
        .arg0(&args.command)
        .args(&args.args)
        .exec();
    p.error(&crate::ops::Error::io(&path, err), None);
    126
}

fn describe(c: &Candidate) -> String {
    format!(
        "`{}` {} from registry `{}` (publisher {})",
        c.package,
        c.version,
        c.registry,
        cnf::short_key(&c.publisher)
    )
}

/// How to install it, for scripts and for `never`.
fn suggest(p: &Printer, command: &str, candidates: &[Candidate]) {
    p.message(format!("`{command}` is not installed. It is provided by:"));
    for c in candidates {
        p.message(format!(
            "  {}: `ipkg install {}`",
            describe(c),
            c.install_spec()
        ));
    }
}

/// Ask on the terminal; `None` when declined (or the terminal went away).
fn ask<'a>(command: &str, list: &[&'a Candidate]) -> Option<&'a Candidate> {
    let term = dialoguer::console::Term::stderr();
    if let [one] = list {
        let yes = dialoguer::Confirm::new()
            .with_prompt(format!(
                "`{command}` is not installed. Install {}?",
                describe(one)
            ))
            .default(false)
            .interact_on_opt(&term);
        return matches!(yes, Ok(Some(true))).then_some(*one);
    }
    let mut items: Vec<String> = list.iter().map(|c| describe(c)).collect();
    items.push("none: do not install anything".into());
    let pick = dialoguer::Select::new()
        .with_prompt(format!(
            "`{command}` is not installed. Install it from one of these?"
        ))
        .items(&items)
        .default(items.len() - 1)
        .interact_on_opt(&term);
    match pick {
        Ok(Some(i)) => list.get(i).copied(),
        _ => None,
    }
}

//! `ipkg bundle`: make an all-in-one package from dynamically linked programs.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::bundle::{Request, bundle};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The programs, as `[COMMAND=]PATH` (the command defaults to the file
    /// name; a bare name is looked up on `PATH`).
    #[arg(required = true, value_name = "[COMMAND=]PROGRAM")]
    programs: Vec<String>,
    /// The package directory to write (must be absent or empty).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// The package name.
    #[arg(long)]
    name: String,
    /// The package version (semver).
    #[arg(long = "version", value_name = "VERSION")]
    pkg_version: String,
    /// A one-line description for `ipkg.toml`.
    #[arg(long)]
    description: Option<String>,
    /// The license (SPDX) for `ipkg.toml`.
    #[arg(long)]
    license: Option<String>,
    /// The homepage for `ipkg.toml`.
    #[arg(long)]
    homepage: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let p = &ctx.printer;
    let commands = args
        .programs
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((cmd, path)) => Ok((cmd.to_owned(), PathBuf::from(path))),
            None => {
                let path = PathBuf::from(spec);
                let cmd = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| Error::Usage(format!("`{spec}` names no program")))?;
                Ok((cmd, path))
            }
        })
        .collect::<Result<Vec<_>, Error>>()?;
    p.status(
        "Bundling",
        format!(
            "{} {} ({} program{})",
            args.name,
            args.pkg_version,
            commands.len(),
            if commands.len() == 1 { "" } else { "s" }
        ),
    );
    let b = bundle(&Request {
        out: args.out.clone(),
        commands,
        name: args.name,
        version: args.pkg_version,
        description: args.description,
        license: args.license,
        homepage: args.homepage,
    })?;
    for c in b.programs.iter().chain(&b.libraries) {
        if p.verbosity < super::printer::Verbosity::Verbose {
            break;
        }
        p.status(
            "Copied",
            format!(
                "`{}` -> {}{}",
                c.source.display(),
                c.path,
                c.debian_package
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        );
    }
    p.status(
        "Bundled",
        format!(
            "{} {}: {}, {} bytes in `{}`",
            b.manifest.package.name,
            b.manifest.package.version,
            counted(b.programs.len(), b.libraries.len()),
            b.bytes,
            args.out.display()
        ),
    );
    if p.json {
        let files = |v: &[crate::ops::bundle::Copied]| {
            v.iter()
                .map(|c| {
                    serde_json::json!({
                        "path": c.path,
                        "source": c.source,
                        "debian-package": c.debian_package,
                        "bytes": c.bytes,
                    })
                })
                .collect::<Vec<_>>()
        };
        p.json(&serde_json::json!({
            "dir": args.out,
            "name": b.manifest.package.name,
            "version": b.manifest.package.version.to_string(),
            "commands": b.manifest.commands,
            "programs": files(&b.programs),
            "libraries": files(&b.libraries),
            "bytes": b.bytes,
        }))
        .map_err(stdout_err)?;
    } else {
        p.data(args.out.display().to_string()).map_err(stdout_err)?;
    }
    Ok(())
}

/// `2 programs, the loader and 39 libraries` (the loader is listed among the
/// libraries when there is one).
fn counted(programs: usize, libraries: usize) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let p = plural(programs, "program", "programs");
    match libraries {
        0 => p,
        n => format!(
            "{p}, the loader and {}",
            plural(n - 1, "library", "libraries")
        ),
    }
}

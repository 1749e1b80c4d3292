//! `ipkg shell-init bash|zsh|fish`: print the command-not-found hook for
//! `eval` (`shell-hooks/`, `docs/command-not-found.md`).
//!
//! The hook files are embedded as they are in the repository, except their
//! `__ipkg_bin` line, which is set to this binary's absolute path: a hook that
//! looked `ipkg` up on `PATH` would call itself forever when ipkg is not there.

use std::path::Path;

use crate::ops::Error;

use super::{Ctx, stdout_err};

pub const BASH: &str = include_str!("../../shell-hooks/ipkg.bash");
pub const ZSH: &str = include_str!("../../shell-hooks/ipkg.zsh");
pub const FISH: &str = include_str!("../../shell-hooks/ipkg.fish");

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to print the hook for.
    shell: Shell,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
    let script = hook(args.shell, &exe)?;
    ctx.printer.data(script.trim_end()).map_err(stdout_err)
}

/// The hook for `shell`, calling the ipkg at `exe`.
pub fn hook(shell: Shell, exe: &Path) -> Result<String, Error> {
    let exe = exe.to_str().ok_or_else(|| {
        Error::Usage(format!(
            "the path of ipkg, `{}`, is not UTF-8; shell hooks need it spelled in the script",
            exe.display()
        ))
    })?;
    let (text, marker, line) = match shell {
        Shell::Bash => (
            BASH,
            "__ipkg_bin=ipkg\n",
            format!("__ipkg_bin={}\n", sh_quote(exe)),
        ),
        Shell::Zsh => (
            ZSH,
            "typeset -g __ipkg_bin=ipkg\n",
            format!("typeset -g __ipkg_bin={}\n", sh_quote(exe)),
        ),
        Shell::Fish => (
            FISH,
            "set -g __ipkg_bin ipkg\n",
            format!("set -g __ipkg_bin {}\n", fish_quote(exe)),
        ),
    };
    Ok(text.replacen(marker, &line, 1))
}

/// `'…'` for bash and zsh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `'…'` for fish, where `\` and `'` are escaped inside single quotes.
fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_path_is_set_in_every_hook() {
        let exe = Path::new("/opt/it's here/ipkg");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = hook(shell, exe).unwrap();
            assert!(text.contains("it"), "{shell:?}");
            assert!(!text.contains("__ipkg_bin=ipkg\n"), "{shell:?}");
            assert!(!text.contains("__ipkg_bin ipkg\n"), "{shell:?}");
        }
        assert!(
            hook(Shell::Bash, exe)
                .unwrap()
                .contains(r"__ipkg_bin='/opt/it'\''s here/ipkg'")
        );
        assert!(
            hook(Shell::Fish, exe)
                .unwrap()
                .contains(r"set -g __ipkg_bin '/opt/it\'s here/ipkg'")
        );
    }
}

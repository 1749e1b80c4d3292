//! `ipkg config list|get|set`: the settings in force, where each comes
//! from, and a way to change the user's config file.

use crate::ops::Error;
use crate::ops::config::{config_files, effective, user_config_file};

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every setting in force and where it comes from (flag, variable,
    /// file, built-in default), then the files read.
    #[command(after_long_help = "Examples:\n  ipkg config list\n  ipkg config list --json")]
    List,
    /// One setting's value.
    #[command(after_long_help = "Example:\n  ipkg config get gateways")]
    Get { key: String },
    /// Write a setting into the user's config file (`IPKG_CONFIG`'s, else
    /// `$XDG_CONFIG_HOME/ipkg/config.toml`). VALUE is TOML (`'["http://…"]'`,
    /// `3`, `'"off"'`); a bare word is taken as a string.
    #[command(
        after_long_help = "Examples:\n  ipkg config set gateways '[\"http://127.0.0.1:8080\"]'\n  ipkg config set kubo-api off"
    )]
    Set { key: String, value: String },
}

pub fn run(cmd: Command, ctx: &Ctx) -> Result<(), Error> {
    let p = &ctx.printer;
    match cmd {
        Command::List => {
            let settings = effective(&ctx.overrides)?;
            let files = config_files();
            if p.json {
                let v = serde_json::json!({
                    "settings": settings,
                    "files": files.iter().map(|(f, e)| serde_json::json!({
                        "path": f.display().to_string(), "exists": e,
                    })).collect::<Vec<_>>(),
                });
                return p.json(&v).map_err(stdout_err);
            }
            for s in &settings {
                let value = if s.value.is_empty() {
                    "(unset)"
                } else {
                    &s.value
                };
                p.data(format!("{} = {value}  # {}", s.key, s.source))
                    .map_err(stdout_err)?;
            }
            for (f, exists) in files {
                let state = if exists { "read" } else { "absent" };
                p.data(format!("# file {} ({state})", f.display()))
                    .map_err(stdout_err)?;
            }
        }
        Command::Get { key } => {
            let settings = effective(&ctx.overrides)?;
            let s = settings.iter().find(|s| s.key == key).ok_or_else(|| {
                let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
                Error::Usage(format!(
                    "no setting `{key}`; the settings are {}",
                    keys.join(", ")
                ))
            })?;
            p.data(&s.value).map_err(stdout_err)?;
        }
        Command::Set { key, value } => {
            let path = user_config_file()?;
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(Error::io(&path, e)),
            };
            let mut table: toml::Table = text.parse().map_err(|e| Error::Config {
                path: path.clone(),
                message: format!("{e}"),
            })?;
            let parsed: toml::Value = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            table.insert(key.clone(), parsed);
            let new = toml::to_string(&table).map_err(|e| Error::Usage(e.to_string()))?;
            // Refuse what the config would not load.
            toml::from_str::<crate::ops::config::ConfigFile>(&new).map_err(|e| {
                Error::Usage(format!("`{key} = {value}` is not a valid setting: {e}"))
            })?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            crate::ops::pins::write_atomic(&path, new.as_bytes())
                .map_err(|e| Error::io(&path, e))?;
            p.status("Set", format!("{key} in `{}`", path.display()));
        }
    }
    Ok(())
}

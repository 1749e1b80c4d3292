//! `ipkg key`: the maintainer's signing keys.

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::publish::keystore::{KeyFormat, KeyStore};
use crate::ops::publish::{now, rotate_registries};
use crate::sources::store::{BlockStore, StoreLock};
use crate::trust::succession::KeySuccession;

use super::{Ctx, stdout_err};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a new ed25519 key and print its IPNS name.
    Gen { name: String },
    /// List keys with their IPNS names (`k51…`).
    List,
    /// Write a key to a file (never replacing one; mode 0600).
    Export {
        name: String,
        /// `libp2p-protobuf-cleartext` (Kubo's default) or `pem-pkcs8-cleartext`.
        #[arg(short, long, default_value = "libp2p-protobuf-cleartext")]
        format: KeyFormat,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Import a key file (as written by `ipkg key export` or `ipfs key export`).
    Import {
        name: String,
        file: PathBuf,
        /// The file's format; detected when not given.
        #[arg(short, long)]
        format: Option<KeyFormat>,
    },
    /// Declare NEW the successor of OLD: a statement signed by OLD, stored, and
    /// linked from every registry OLD owns (which NEW then signs).
    Rotate { old: String, new: String },
}

pub fn run(cmd: Command, ctx: &Ctx) -> Result<(), Error> {
    let keys = KeyStore::open_default()?;
    let p = &ctx.printer;
    match cmd {
        Command::Gen { name } => {
            let k = keys.generate(&name)?;
            p.status("Generated", format!("key `{}` ({})", k.name, k.ipns));
            if p.json {
                p.json(&serde_json::json!(k)).map_err(stdout_err)?;
            } else {
                p.data(&k.ipns).map_err(stdout_err)?;
            }
        }
        Command::List => {
            let list = keys.list()?;
            if p.json {
                p.json(&serde_json::json!(list)).map_err(stdout_err)?;
            } else {
                for k in list {
                    p.data(format!("{} {}", k.ipns, k.name))
                        .map_err(stdout_err)?;
                }
            }
        }
        Command::Export {
            name,
            format,
            output,
        } => {
            let k = keys.export(&name, &output, format)?;
            p.status(
                "Exported",
                format!("key `{}` ({}) to `{}`", k.name, k.ipns, output.display()),
            );
        }
        Command::Import { name, file, format } => {
            let k = keys.import(&name, &file, format)?;
            p.status("Imported", format!("key `{}` ({})", k.name, k.ipns));
            if p.json {
                p.json(&serde_json::json!(k)).map_err(stdout_err)?;
            } else {
                p.data(&k.ipns).map_err(stdout_err)?;
            }
        }
        Command::Rotate { old, new } => {
            let old_key = keys.load(&old)?;
            let new_key = keys.load(&new)?;
            let statement = KeySuccession::sign(&old_key, &new_key.ipns_name(), now())?;
            let layout = ctx.layout()?;
            {
                let _lock = StoreLock::shared(&layout.store_lock())
                    .map_err(|e| Error::io(layout.store_lock(), e))?;
                let store = BlockStore::open(layout.blocks_dir())
                    .map_err(|e| Error::io(layout.blocks_dir(), e))?;
                store
                    .put_trusted(&statement.cid(), statement.encode())
                    .map_err(|e| Error::io(store.dir(), e))?;
                store.sync().map_err(|e| Error::io(store.dir(), e))?;
                crate::ops::pins::Pins::open(layout.pins_dir())?
                    .add(&statement.cid(), &format!("key/{old}"))?;
            }
            p.status(
                "Rotated",
                format!(
                    "`{old}` ({}) -> `{new}` ({})",
                    statement.old(),
                    statement.new_key()
                ),
            );
            for r in rotate_registries(&layout, &keys, &statement, &new)? {
                p.status(
                    "Updated",
                    format!(
                        "registry `{}` (/ipns/{}, sequence {})",
                        r.registry, r.ipns, r.sequence
                    ),
                );
            }
            p.data(statement.cid().to_string()).map_err(stdout_err)?;
        }
    }
    Ok(())
}

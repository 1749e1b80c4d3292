//! The maintainer's keys: one file per key in the config directory.
//!
//! `$XDG_CONFIG_HOME/ipkg/keys/NAME.key` (or `~/.config/ipkg/keys`), holding the
//! key in Kubo's keystore format (the libp2p `PrivateKey` protobuf), so a key
//! file can be copied into `$IPFS_PATH/keystore` and back. The directory is
//! 0700 and every file 0600; files are written beside their destination and
//! renamed into place, and never replaced: a key once written is only removed
//! by hand. Key material is never printed; `export` writes it to a file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::trust::keys::Keypair;

use super::Error;

/// The two formats Kubo's `ipfs key export`/`import` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `libp2p-protobuf-cleartext`: the libp2p `PrivateKey` protobuf (Kubo's default).
    Protobuf,
    /// `pem-pkcs8-cleartext`: a PKCS#8 PEM block.
    Pem,
}

impl std::str::FromStr for KeyFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<KeyFormat, String> {
        match s {
            "libp2p-protobuf-cleartext" => Ok(KeyFormat::Protobuf),
            "pem-pkcs8-cleartext" => Ok(KeyFormat::Pem),
            _ => Err(format!(
                "unknown key format `{s}`: use `libp2p-protobuf-cleartext` or `pem-pkcs8-cleartext`"
            )),
        }
    }
}

/// A key in the store: its local name and its IPNS name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub name: String,
    pub ipns: String,
}

/// The key directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The key directory of this user (it is created on first write).
    pub fn default_dir() -> Result<PathBuf, Error> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })
            .ok_or(Error::NoHome)?;
        Ok(config.join("ipkg/keys"))
    }

    pub fn open_default() -> Result<KeyStore, Error> {
        Ok(KeyStore::at(KeyStore::default_dir()?))
    }

    pub fn at(dir: impl Into<PathBuf>) -> KeyStore {
        KeyStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        // An existing directory keeps its mode only if it is already private.
        let meta = fs::metadata(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(&self.dir, e))?;
        }
        Ok(())
    }

    /// Whether a key called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    /// Load the key called `name`.
    pub fn load(&self, name: &str) -> Result<Keypair, Error> {
        check_key_name(name)?;
        let path = self.path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::KeyNotFound {
                    name: name.to_owned(),
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        Keypair::from_libp2p_protobuf(&bytes).map_err(|source| Error::Key { path, source })
    }

    /// Store `key` as `name`; refuses to replace an existing key.
    pub fn insert(&self, name: &str, key: &Keypair) -> Result<KeyInfo, Error> {
        check_key_name(name)?;
        self.ensure_dir()?;
        let path = self.path(name);
        write_private_new(&path, &key.to_libp2p_protobuf()).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::KeyExists {
                    name: name.to_owned(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        Ok(KeyInfo {
            name: name.to_owned(),
            ipns: key.ipns_name(),
        })
    }

    /// Make a new key called `name`.
    pub fn generate(&self, name: &str) -> Result<KeyInfo, Error> {
        check_key_name(name)?;
        if self.contains(name) {
            return Err(Error::KeyExists {
                name: name.to_owned(),
            });
        }
        let key = Keypair::generate().map_err(|source| Error::Key {
            path: self.path(name),
            source,
        })?;
        self.insert(name, &key)
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".key")) else {
                continue;
            };
            if check_key_name(name).is_err() {
                continue;
            }
            let key = self.load(name)?;
            out.push(KeyInfo {
                name: name.to_owned(),
                ipns: key.ipns_name(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The local name of the key whose IPNS name is `ipns`, if it is here.
    pub fn find_by_ipns(&self, ipns: &str) -> Result<Option<String>, Error> {
        Ok(self
            .list()?
            .into_iter()
            .find(|k| k.ipns == ipns)
            .map(|k| k.name))
    }

    /// Write key `name` to `dest` in `format` (0600, never replacing a file).
    pub fn export(&self, name: &str, dest: &Path, format: KeyFormat) -> Result<KeyInfo, Error> {
        let key = self.load(name)?;
        let bytes = match format {
            KeyFormat::Protobuf => key.to_libp2p_protobuf(),
            KeyFormat::Pem => key
                .to_pem()
                .map_err(|source| Error::Key {
                    path: self.path(name),
                    source,
                })?
                .into_bytes(),
        };
        write_private_new(dest, &bytes).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::DestExists {
                    path: dest.to_path_buf(),
                }
            } else {
                Error::io(dest, e)
            }
        })?;
        Ok(KeyInfo {
            name: name.to_owned(),
            ipns: key.ipns_name(),
        })
    }

    /// Read a key file in `format` (detected when `None`) and store it as `name`.
    pub fn import(
        &self,
        name: &str,
        src: &Path,
        format: Option<KeyFormat>,
    ) -> Result<KeyInfo, Error> {
        check_key_name(name)?;
        if self.contains(name) {
            return Err(Error::KeyExists {
                name: name.to_owned(),
            });
        }
        let bytes = fs::read(src).map_err(|e| Error::io(src, e))?;
        let format = format.unwrap_or_else(|| detect_format(&bytes));
        let key = match format {
            KeyFormat::Protobuf => Keypair::from_libp2p_protobuf(&bytes),
            KeyFormat::Pem => match std::str::from_utf8(&bytes) {
                Ok(text) => Keypair::from_pem(text),
                Err(_) => Keypair::from_pem(""),
            },
        }
        .map_err(|source| Error::Key {
            path: src.to_path_buf(),
            source,
        })?;
        self.insert(name, &key)
    }
}

/// PEM files start with `-----BEGIN`; anything else is taken as protobuf.
fn detect_format(bytes: &[u8]) -> KeyFormat {
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &bytes[i..]);
    if trimmed.starts_with(b"-----BEGIN") {
        KeyFormat::Pem
    } else {
        KeyFormat::Protobuf
    }
}

/// Key names are file names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
pub fn check_key_name(name: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::KeyName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > 64 {
        return Err(bad("it must be 1 to 64 characters long"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("it must start with a letter or a digit"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad("use only letters, digits, `.`, `_` and `-`"));
    }
    Ok(())
}

/// Write `data` to a new file at `path`, mode 0600: a temporary file beside it,
/// fsync, then a rename that fails if `path` exists (`AlreadyExists`).
pub fn write_private_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

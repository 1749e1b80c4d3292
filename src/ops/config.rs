//! Where ipkg keeps things: the prefix, the bin dir and the config files.
//!
//! Precedence, highest first: `--prefix`/`--bin-dir`, `IPKG_PREFIX`/`IPKG_BIN_DIR`,
//! the user config (`$XDG_CONFIG_HOME/ipkg/config.toml`), the system config
//! (`/etc/ipkg/config.toml`), then the defaults: `/opt/ipfs_programs` and
//! `/usr/local/bin` for root, `$XDG_DATA_HOME/ipfs_programs` and `~/.local/bin`
//! for everyone else. `IPKG_CONFIG` names one config file to use instead of both.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Error;

/// The settings a config file may hold.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub prefix: Option<PathBuf>,
    pub bin_dir: Option<PathBuf>,
    /// Trustless gateways to fetch from, in order (`docs/network.md`).
    pub gateways: Option<Vec<String>>,
    /// Kubo's RPC API (`/ip4/127.0.0.1/tcp/5001`), or `off`.
    pub kubo_api: Option<String>,
    /// Name servers for DNSLink (`127.0.0.1:53`); the system's when unset.
    pub dns_servers: Option<Vec<String>>,
    /// Delegated routing endpoints (`/routing/v1`) for IPNS records.
    pub routers: Option<Vec<String>>,
    /// Network timeout (`30s`, `500ms`).
    pub timeout: Option<String>,
    /// Extra attempts after a failed request.
    pub retries: Option<u32>,
    /// What the command-not-found hooks may do (`ops::cnf`).
    pub command_not_found: Option<CnfConfig>,
}

impl ConfigFile {
    fn load(path: &Path) -> Result<Option<ConfigFile>, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map(Some).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Values of `other` win over `self`'s.
    fn merge(self, other: ConfigFile) -> ConfigFile {
        ConfigFile {
            prefix: other.prefix.or(self.prefix),
            bin_dir: other.bin_dir.or(self.bin_dir),
            gateways: other.gateways.or(self.gateways),
            kubo_api: other.kubo_api.or(self.kubo_api),
            dns_servers: other.dns_servers.or(self.dns_servers),
            routers: other.routers.or(self.routers),
            timeout: other.timeout.or(self.timeout),
            retries: other.retries.or(self.retries),
            command_not_found: other.command_not_found.or(self.command_not_found),
        }
    }
}

/// Overrides given on the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub prefix: Option<PathBuf>,
    pub bin_dir: Option<PathBuf>,
    /// `--api`: Kubo's RPC API address.
    pub api: Option<String>,
    /// `--gateway` (repeatable): replaces the configured gateways.
    pub gateways: Vec<String>,
}

/// Network settings for one run, after flags, environment and config files
/// (`docs/network.md`). Values are as written; `ops::resolve::fetch` and
/// `ops::resolve::names` turn them into sources and resolvers.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub gateways: Vec<String>,
    /// An explicit Kubo API address; `None` looks for Kubo's `api` file,
    /// `Some("off")` disables Kubo.
    pub kubo_api: Option<String>,
    pub dns_servers: Vec<String>,
    pub routers: Vec<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
}

/// A list from the environment: entries separated by commas or spaces.
fn env_list(name: &str) -> Option<Vec<String>> {
    let v = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
    Some(
        v.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The resolved locations for one run.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `/opt/ipfs_programs` or the per-user equivalent.
    pub prefix: PathBuf,
    /// Where command links go.
    pub bin_dir: PathBuf,
    /// Where content and names come from besides the local store.
    pub network: Network,
}

impl Layout {
    /// Resolve the layout from overrides, environment and config files.
    pub fn resolve(overrides: &Overrides) -> Result<Layout, Error> {
        Layout::resolve_with(overrides, &load_config()?)
    }

    /// Resolve the layout from overrides, environment and an already loaded
    /// config (for callers that need other settings from it too).
    pub fn resolve_with(overrides: &Overrides, config: &ConfigFile) -> Result<Layout, Error> {
        let env_path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let is_root = unsafe { libc::geteuid() } == 0;
        let home = std::env::var_os("HOME").map(PathBuf::from);

        let prefix = overrides
            .prefix
            .clone()
            .or_else(|| env_path("IPKG_PREFIX"))
            .or_else(|| config.prefix.clone())
            .or_else(|| {
                if is_root {
                    Some(PathBuf::from("/opt/ipfs_programs"))
                } else {
                    env_path("XDG_DATA_HOME")
                        .or_else(|| home.as_ref().map(|h| h.join(".local/share")))
                        .map(|d| d.join("ipfs_programs"))
                }
            })
            .ok_or(Error::NoHome)?;
        let bin_dir = overrides
            .bin_dir
            .clone()
            .or_else(|| env_path("IPKG_BIN_DIR"))
            .or_else(|| config.bin_dir.clone())
            .or_else(|| {
                if is_root {
                    Some(PathBuf::from("/usr/local/bin"))
                } else {
                    home.as_ref().map(|h| h.join(".local/bin"))
                }
            })
            .ok_or(Error::NoHome)?;
        let env_str = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let network = Network {
            gateways: if overrides.gateways.is_empty() {
                env_list("IPKG_GATEWAYS")
                    .or_else(|| config.gateways.clone())
                    .unwrap_or_default()
            } else {
                overrides.gateways.clone()
            },
            kubo_api: overrides
                .api
                .clone()
                .or_else(|| env_str("IPFS_API"))
                .or_else(|| config.kubo_api.clone()),
            dns_servers: env_list("IPKG_DNS_SERVERS")
                .or_else(|| config.dns_servers.clone())
                .unwrap_or_default(),
            routers: env_list("IPKG_ROUTERS")
                .or_else(|| config.routers.clone())
                .unwrap_or_default(),
            timeout: env_str("IPKG_TIMEOUT").or_else(|| config.timeout.clone()),
            retries: config.retries,
        };
        Ok(Layout {
            prefix,
            bin_dir,
            network,
        })
    }

    /// A layout rooted at `prefix` (tests and tools).
    pub fn at(prefix: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Layout {
        Layout {
            prefix: prefix.into(),
            bin_dir: bin_dir.into(),
            network: Network::default(),
        }
    }

    /// `<prefix>/.ipkg`: everything ipkg keeps besides the package links.
    pub fn state_root(&self) -> PathBuf {
        self.prefix.join(".ipkg")
    }

    pub fn blocks_dir(&self) -> PathBuf {
        self.state_root().join("blocks")
    }

    pub fn pins_dir(&self) -> PathBuf {
        self.state_root().join("pins")
    }

    pub fn store_lock(&self) -> PathBuf {
        self.state_root().join("store.lock")
    }

    /// `<prefix>/.ipkg/pkgs`: unpacked, read-only package trees by CID.
    pub fn pkgs_dir(&self) -> PathBuf {
        self.state_root().join("pkgs")
    }

    /// `<prefix>/.ipkg/files`: one copy of every installed file, by CID; the
    /// package trees hard-link to these.
    pub fn files_dir(&self) -> PathBuf {
        self.state_root().join("files")
    }

    /// `<prefix>/.ipkg/state`: receipts, history, pinned keys.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root().join("state")
    }

    /// The per-package directory hooks may write (`IPKG_STATE_DIR`).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.state_dir().join("data").join(name)
    }

    /// `<prefix>/.ipkg/journal`: the transaction in progress, if any.
    pub fn journal_dir(&self) -> PathBuf {
        self.state_root().join("journal")
    }

    /// `<prefix>/.ipkg/lock`: every mutation of installed state holds it.
    pub fn lock_path(&self) -> PathBuf {
        self.state_root().join("lock")
    }

    /// `<prefix>/<name>`: the link to the current version of a package.
    pub fn package_link(&self, name: &str) -> PathBuf {
        self.prefix.join(name)
    }

    /// The unpacked tree of a package CID.
    pub fn package_tree(&self, cid: &crate::content::Cid) -> PathBuf {
        self.pkgs_dir().join(cid.to_string())
    }
}

/// The config in force: `IPKG_CONFIG`'s file, or the user's over the system's.
pub fn load_config() -> Result<ConfigFile, Error> {
    if let Some(path) = std::env::var_os("IPKG_CONFIG").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return ConfigFile::load(&path)?.ok_or(Error::Io {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            path,
        });
    }
    let system = ConfigFile::load(Path::new("/etc/ipkg/config.toml"))?.unwrap_or_default();
    let user_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let user = match user_dir {
        Some(dir) => ConfigFile::load(&dir.join("ipkg/config.toml"))?.unwrap_or_default(),
        None => ConfigFile::default(),
    };
    Ok(system.merge(user))
}

/// What to do when a missing command is in the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Ask before installing (the default).
    #[default]
    Prompt,
    /// Never install: print how to.
    Never,
    /// Install from a trusted registry without asking.
    Auto,
}

/// The `[command-not-found]` table of the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CnfConfig {
    #[serde(default)]
    pub policy: Policy,
    /// Registries `auto` may install from without asking.
    #[serde(default)]
    pub trusted_registries: Vec<String>,
}

//! The errors operations return, and the exit code of each class.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | an operation failed (I/O, a source failed) |
//! | 2 | the command line was wrong |
//! | 3 | something named was not found (a block, a path, a package) |
//! | 4 | verification failed (a hash, a signature, a rollback) |
//! | 5 | unsafe input refused (a hostile path or symlink) |
//! | 6 | a conflict (the destination exists, a file ipkg does not own) |
//! | 7 | a sandbox limit stopped the program (time, memory, processes, output size) |
//!
//! A program run by `ipkg run` or `ipkg execute` that exits on its own passes
//! its exit status through instead.

use std::path::PathBuf;

use crate::content::GetError;
use crate::content::reader::ReadError;
use crate::trust::index::IndexError;
use crate::trust::keys::KeyError;
use crate::trust::manifest::ManifestError;
use crate::trust::release::ReleaseError;
use crate::trust::succession::SuccessionError;

/// Exit codes, one per failure class (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Failure = 1,
    Usage = 2,
    NotFound = 3,
    Verification = 4,
    Unsafe = 5,
    Conflict = 6,
    Limit = 7,
}

/// An operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not access `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file `{}`: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("cannot find a home directory: set `HOME`, or pass `--prefix`")]
    NoHome,
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Block(#[from] GetError),
    // Boxed: a reader error carries CIDs inline and would make every `Result`
    // of this crate large (clippy::result_large_err).
    #[error(transparent)]
    Read(Box<ReadError>),
    #[error("`{}` already exists", path.display())]
    DestExists { path: PathBuf },
    #[error("refusing `{path}`: {reason}")]
    Unsafe { path: String, reason: String },
    #[error("cannot read CAR file `{}`", path.display())]
    Car {
        path: PathBuf,
        #[source]
        source: Box<crate::content::car::CarError>,
    },
    #[error("`{}` is a {kind}, which ipkg cannot add", path.display())]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
    #[error("no manifest: `{}` does not exist", path.display())]
    NoManifest { path: PathBuf },
    #[error(transparent)]
    Manifest(Box<ManifestError>),
    #[error("no key named `{name}` in `{}`", dir.display())]
    KeyNotFound { name: String, dir: PathBuf },
    #[error("a key named `{name}` already exists")]
    KeyExists { name: String },
    #[error("invalid key name `{name}`: {reason}")]
    KeyName { name: String, reason: String },
    #[error("cannot use the key in `{}`", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("no registry named `{name}`")]
    RegistryNotFound { name: String },
    #[error("a registry named `{name}` already exists")]
    RegistryExists { name: String },
    #[error("invalid registry name `{name}`: {reason}")]
    RegistryName { name: String, reason: String },
    #[error("registry `{registry}`")]
    Index {
        registry: String,
        #[source]
        source: Box<IndexError>,
    },
    #[error("registry `{registry}`: release statement `{cid}`")]
    Release {
        registry: String,
        cid: String,
        #[source]
        source: Box<ReleaseError>,
    },
    #[error(transparent)]
    Succession(Box<SuccessionError>),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error("`{program}` was stopped: {reason}")]
    LimitHit { program: String, reason: String },
    #[error("the output of `{program}` is {size} bytes, over the limit of {limit} bytes")]
    OutputTooLarge {
        program: String,
        size: u64,
        limit: u64,
    },
    #[error("`{program}`: {reason}")]
    NoCommand { program: String, reason: String },
    /// A lazy mount could not be made or removed.
    #[error("could not mount `{what}`: {reason}")]
    Mount { what: String, reason: String },
    #[error("`{program}` is not reproducible: the first run gave `{first}`, the second `{second}`")]
    NotReproducible {
        program: String,
        first: String,
        second: String,
    },
    #[error("`{cid}` is not an ipkg package: {reason}")]
    NotAPackage {
        cid: crate::content::Cid,
        reason: String,
    },
    #[error("refusing package `{cid}`")]
    BadPackage {
        cid: crate::content::Cid,
        #[source]
        source: Box<ManifestError>,
    },
    #[error("package `{name}` is not installed")]
    NotInstalled { name: String },
    #[error("`{name}` is held at {version}")]
    Held { name: String, version: String },
    #[error("command `{command}` is already provided by {owner}")]
    CommandConflict { command: String, owner: String },
    #[error("`{}` exists and does not belong to ipkg", path.display())]
    NotOurs { path: PathBuf },
    #[error("no package named `{name}`{}", if searched.is_empty() { String::new() } else { format!(" in {}", searched.join(", ")) })]
    PackageNotFound {
        name: String,
        searched: Vec<String>,
        /// Known names close to `name`, closest first (for "did you mean").
        similar: Vec<String>,
    },
    #[error("registry `{registry}` has no release of `{name}` matching `{req}` for `{target}`{}", if available.is_empty() { String::new() } else { format!(" (it has {})", available.join(", ")) })]
    NoMatchingRelease {
        name: String,
        req: String,
        target: String,
        registry: String,
        available: Vec<String>,
    },
    #[error("`{name}` is in more than one registry: {}", found.join(", "))]
    Ambiguous { name: String, found: Vec<String> },
    #[error("`{what}` is not vouched for by any registry you trust")]
    Unsigned { what: String },
    #[error("{message}")]
    Refused { message: String },
    #[error("the {hook} hook of `{name}` {what}")]
    Hook {
        name: String,
        hook: String,
        what: String,
    },
    #[error("`{name}` {installed} is installed; {requested} is older")]
    Downgrade {
        name: String,
        installed: String,
        requested: String,
    },
    #[error("{problems} installed file(s) or link(s) differ from their packages")]
    VerifyFailed { problems: usize },
    #[error("dependency conflict: {message}")]
    DependencyConflict { message: String },
    #[error(
        "publisher key changed for `{name}`: it was pinned to `{pinned}`, this release is signed by `{signer}`"
    )]
    PublisherChanged {
        name: String,
        pinned: String,
        signer: String,
    },
    #[error("cannot fetch `{cid}`{}", fetch_attempts(attempts))]
    Fetch {
        cid: crate::content::Cid,
        /// Each source tried, and why it failed.
        attempts: Vec<(String, String)>,
    },
    #[error("cannot resolve `/ipns/{name}`{}", fetch_attempts(attempts))]
    Resolve {
        name: String,
        /// Each source asked, and why its answer was not used.
        attempts: Vec<(String, String)>,
    },
    #[error("cannot resolve the DNSLink of `{domain}`: {reason}")]
    DnsLink { domain: String, reason: String },
    #[error(
        "DNSLink of `{domain}` now names `{found}`, but this host pinned `{pinned}` when the registry was added"
    )]
    DnsLinkKeyChanged {
        domain: String,
        pinned: String,
        found: String,
    },
    #[error("cannot bundle `{}`: {reason}", path.display())]
    CannotBundle { path: PathBuf, reason: String },
    #[error("cannot bundle `{}`: it needs `{library}`, which is not on this machine (looked in {})", needed_by.display(), searched.join(", "))]
    MissingLibrary {
        library: String,
        needed_by: PathBuf,
        searched: Vec<String>,
    },
    #[error("command index `{}` is damaged: {reason}", path.display())]
    CommandIndex { path: PathBuf, reason: String },
    /// A file of local state that ipkg wrote but cannot read back (cut short
    /// by a crash of the machine, or edited by hand).
    #[error("{what} `{}` is damaged: {reason}", path.display())]
    Damaged {
        /// What the file is (`the receipt of package `xmr``, `the registry file`).
        what: String,
        path: PathBuf,
        reason: String,
        /// What to do about it.
        fix: String,
    },
    #[error("no source confirmed the index of {} in this run (`update --strict`)", registries.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "))]
    Unconfirmed { registries: Vec<String> },
}

fn fetch_attempts(attempts: &[(String, String)]) -> String {
    if attempts.is_empty() {
        return ": no source has it".to_owned();
    }
    let mut out = String::new();
    for (source, why) in attempts {
        out.push_str(&format!("\n  {source}: {why}"));
    }
    out
}

// The trust layer's errors carry CIDs and versions; boxed here so every
// `Result<_, Error>` stays small.
impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Error {
        Error::Manifest(Box::new(e))
    }
}

impl From<crate::content::reader::ReadError> for Error {
    fn from(e: crate::content::reader::ReadError) -> Error {
        Error::Read(Box::new(e))
    }
}

impl From<SuccessionError> for Error {
    fn from(e: SuccessionError) -> Error {
        Error::Succession(Box::new(e))
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The block failure underneath, whether it came straight from a store or
    /// through the UnixFS reader.
    fn block_error(&self) -> Option<&GetError> {
        match self {
            Error::Block(e) => Some(e),
            Error::Read(r) => match r.as_ref() {
                ReadError::Get(e) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }

    /// The exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        if let Some(e) = self.block_error() {
            return match e {
                GetError::Missing(_) => ExitCode::NotFound,
                GetError::Corrupt { .. } => ExitCode::Verification,
                GetError::Io { .. } => ExitCode::Failure,
            };
        }
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Read(e) => match e.as_ref() {
                ReadError::BadName { .. } | ReadError::DuplicateName { .. } => ExitCode::Unsafe,
                ReadError::NotFound { .. } => ExitCode::NotFound,
                ReadError::WrongKind { .. } | ReadError::NotADirectory { .. } => ExitCode::Failure,
                _ => ExitCode::Verification,
            },
            Error::Unsafe { .. } => ExitCode::Unsafe,
            Error::DestExists { .. } => ExitCode::Conflict,
            Error::NoManifest { .. }
            | Error::KeyNotFound { .. }
            | Error::RegistryNotFound { .. } => ExitCode::NotFound,
            Error::KeyExists { .. } | Error::RegistryExists { .. } => ExitCode::Conflict,
            Error::KeyName { .. } | Error::RegistryName { .. } => ExitCode::Usage,
            Error::Index { source, .. } => match source.as_ref() {
                IndexError::BadSignature { .. }
                | IndexError::WrongRegistry { .. }
                | IndexError::Rollback { .. }
                | IndexError::Fork { .. }
                | IndexError::Expired { .. }
                | IndexError::DocMismatch { .. }
                | IndexError::Decode { .. }
                | IndexError::OutOfRange { .. }
                | IndexError::PublisherMismatch { .. }
                | IndexError::SuccessionMismatch { .. } => ExitCode::Verification,
                IndexError::MissingDoc { .. }
                | IndexError::NoSuchPackage { .. }
                | IndexError::NoSuchVersion { .. } => ExitCode::NotFound,
                IndexError::VersionExists { .. } => ExitCode::Conflict,
                _ => ExitCode::Failure,
            },
            Error::Release { source, .. } => match source.as_ref() {
                ReleaseError::Encode { .. } => ExitCode::Failure,
                _ => ExitCode::Verification,
            },
            Error::Succession(_) => ExitCode::Verification,
            Error::LimitHit { .. } | Error::OutputTooLarge { .. } => ExitCode::Limit,
            Error::NoCommand { .. } => ExitCode::NotFound,
            Error::Mount { .. } => ExitCode::Failure,
            Error::NotReproducible { .. } => ExitCode::Verification,
            Error::NotAPackage { .. }
            | Error::PublisherChanged { .. }
            | Error::VerifyFailed { .. } => ExitCode::Verification,
            Error::NotInstalled { .. }
            | Error::PackageNotFound { .. }
            | Error::NoMatchingRelease { .. } => ExitCode::NotFound,
            Error::CommandConflict { .. }
            | Error::NotOurs { .. }
            | Error::Ambiguous { .. }
            | Error::DependencyConflict { .. }
            | Error::Held { .. }
            | Error::Downgrade { .. } => ExitCode::Conflict,
            Error::Unsigned { .. } | Error::Refused { .. } | Error::BadPackage { .. } => {
                ExitCode::Unsafe
            }
            Error::Fetch { .. } => ExitCode::Failure,
            Error::Resolve { .. } | Error::DnsLink { .. } => ExitCode::NotFound,
            Error::DnsLinkKeyChanged { .. } => ExitCode::Verification,
            Error::MissingLibrary { .. } => ExitCode::NotFound,
            _ => ExitCode::Failure,
        }
    }

    /// A next step for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match (self, self.block_error()) {
            (_, Some(GetError::Missing(_))) => Some(
                "the content is not in the local store: import a CAR with `ipkg car import`, or add it with `ipkg add`"
                    .into(),
            ),
            (_, Some(GetError::Corrupt { .. })) => {
                Some("run `ipkg gc` to drop damaged blocks, then fetch the content again".into())
            }
            (Error::NoManifest { path }, _) => Some(format!(
                "create one with `ipkg init {}`",
                path.parent().map(|p| p.display().to_string()).unwrap_or_default()
            )),
            (Error::KeyNotFound { .. }, _) => {
                Some("create one with `ipkg key gen NAME`, or see `ipkg key list`".into())
            }
            (Error::RegistryNotFound { .. }, _) => Some(
                "create one with `ipkg registry init NAME --key KEY`, or see `ipkg registry list`"
                    .into(),
            ),
            (Error::Index { source, .. }, _) if matches!(**source, IndexError::VersionExists { .. }) => Some(
                "a published version never changes: bump `version` in `ipkg.toml`, or yank the old one with `ipkg publish --yank`"
                    .into(),
            ),
            (Error::Sandbox(e), _) => e.hint(),
            (Error::LimitHit { .. } | Error::OutputTooLarge { .. }, _) => Some(
                "raise the limit (`--timeout`, `--memory`, `--pids`, `--max-output`) if the program needs more"
                    .into(),
            ),
            (Error::CommandIndex { .. }, _) => Some("rebuild it with `ipkg update`".into()),
            (Error::Damaged { fix, .. }, _) => Some(fix.clone()),
            (Error::Key { path, .. }, _) => Some(format!(
                "the key file is damaged or not a key: restore it from a backup with `ipkg key import NAME FILE` (move `{}` aside first)",
                path.display()
            )),
            (Error::Config { path, .. }, _) => Some(format!(
                "fix `{}`, or move it aside to use the defaults",
                path.display()
            )),
            (Error::MissingLibrary { library, .. }, _) => Some(format!(
                "install the package that provides `{library}` (`apt-file search {library}` on Debian), then bundle again"
            )),
            (Error::DestExists { .. }, _) => Some("choose another `-o` path, or remove it first".into()),
            (Error::Io { source, .. }, _) if source.kind() == std::io::ErrorKind::StorageFull => {
                Some("free some space; `ipkg gc` removes blocks and files nothing installed needs".into())
            }
            (Error::NotInstalled { .. }, _) => Some("see what is installed with `ipkg list`".into()),
            (Error::Held { name, .. }, _) => Some(format!(
                "let it move with `ipkg unhold {name}`, or name a version exactly (`ipkg install {name}@X.Y.Z`)"
            )),
            (Error::Resolve { .. }, _) => Some(
                "name a source: `--gateway URL`, or `kubo-api`, `gateways` or `routers` in `~/.config/ipkg/config.toml` (`ipkg doctor` shows what is configured)".into(),
            ),
            (Error::DnsLinkKeyChanged { domain, .. }, _) => Some(format!(
                "if the registry really moved to a new key, remove it and add it again: `ipkg registry remove ALIAS` then `ipkg registry add ALIAS {domain}`"
            )),
            (Error::PackageNotFound { searched, .. }, _) if searched.is_empty() => Some(
                "no registries yet: add one with `ipkg registry add NAME k51…`".into(),
            ),
            (Error::PackageNotFound { similar, .. }, _) if !similar.is_empty() => Some(format!(
                "did you mean {}?",
                similar
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            (Error::PackageNotFound { .. }, _) => Some(
                "look for it with `ipkg search TERM`, or see the registries ipkg knows with `ipkg registry list`".into(),
            ),
            (Error::Ambiguous { name, found }, _) => found
                .first()
                .map(|r| format!("name the registry: `ipkg install {r}/{name}`")),
            (Error::Unsigned { .. }, _) => Some(
                "install it by a registry name, or pass `--allow-unsigned` if you trust its source".into(),
            ),
            (Error::CommandConflict { .. }, _) | (Error::NotOurs { .. }, _) => Some(
                "remove the other command first, or install with another `--bin-dir`".into(),
            ),
            (Error::Downgrade { name, requested, .. }, _) => Some(format!(
                "going back is explicit: `ipkg install {name}@{requested}`"
            )),
            (Error::VerifyFailed { .. }, _) => Some(
                "reinstall the package to restore it: `ipkg install --reinstall NAME`".into(),
            ),
            (Error::PublisherChanged { .. }, _) => Some(
                "a publisher changes keys only with a succession statement signed by the old key; if you trust the new key, `ipkg remove` the package and install it again".into(),
            ),
            _ => None,
        }
    }
}

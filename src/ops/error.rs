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

use std::path::PathBuf;

use crate::content::GetError;
use crate::content::reader::ReadError;

/// Exit codes, one per failure class (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Failure = 1,
    Usage = 2,
    NotFound = 3,
    Verification = 4,
    Unsafe = 5,
    Conflict = 6,
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
            (Error::DestExists { .. }, _) => Some("choose another `-o` path, or remove it first".into()),
            _ => None,
        }
    }
}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Error {
        Error::Read(Box::new(e))
    }
}

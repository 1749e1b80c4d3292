//! Operations: every major operation is implemented here; each CLI command is a
//! thin wrapper around one of them.
//!
//! Operations do the I/O that the pure layers below refuse to do: they walk
//! directories, open the block store, take locks, and write files atomically.
//! They report progress through [`Progress`] and never print.

pub mod config;
pub mod error;

pub use config::Layout;
pub use error::{Error, ExitCode};

/// How an operation reports progress. The CLI turns this into progress bars on
/// a terminal; tests and `--json` use [`NoProgress`].
pub trait Progress {
    /// A long step starts; `total` bytes when known.
    fn start(&self, _what: &str, _total: Option<u64>) {}
    /// `n` more bytes done.
    fn advance(&self, _n: u64) {}
    /// The step is over.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

pub mod add;
pub mod car;
pub mod execute;
pub mod gc;
pub mod get;
pub mod keystore;
pub mod pack;
pub mod pins;
pub mod publish;
pub mod registry;

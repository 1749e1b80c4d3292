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
    /// Something went wrong but the operation goes on (a source failed and
    /// the next one is tried).
    fn warn(&self, _message: &str) {}
}

/// How a long, multi-step operation (install, remove, …) talks to the user:
/// status lines, warnings, questions and progress. The CLI implements it
/// over its printer and dialoguer; tests and scripts use [`Quiet`].
pub trait Ui {
    /// A step: a right-aligned verb and its object (`Installing hello 1.0.0`).
    fn status(&self, _verb: &str, _message: &str) {}
    /// Something the user should know that does not stop the operation.
    fn warn(&self, _message: &str) {}
    /// Ask a yes/no question. Without a terminal to ask on, the answer is no.
    fn confirm(&self, _question: &str) -> bool {
        false
    }
    /// Where byte progress goes.
    fn progress(&self) -> &dyn Progress {
        &NoProgress
    }
}

/// A [`Ui`] that says nothing and answers no.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Ui for Quiet {}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

pub mod add;
pub mod car;
pub mod cmdindex;
pub mod cnf;
pub mod doctor;
pub mod execute;
pub mod fetch;
pub mod gc;
pub mod get;
pub mod hooks;
pub mod install;
pub mod installed;
pub mod journal;
pub mod keystore;
pub mod lock;
pub mod mount;
pub mod names;
pub mod pack;
pub mod pins;
pub mod publish;
pub mod query;
pub mod registry;
pub mod resolve;
pub mod seed;
pub mod serve;
pub mod subscriptions;
pub mod unpack;
pub mod verify;

//! Operations: every major operation is implemented here; each CLI command is a
//! thin wrapper around one of them.
//!
//! Operations do the I/O that the pure layers below refuse to do: they walk
//! directories, open the block store, take locks, and write files atomically.
//! They report progress through [`Progress`] and never print.
//!
//! One folder per capability, each opening with what it owns and what it must
//! not touch. Dependencies go one way (no capability imports one that imports
//! it back):
//!
//! ```text
//! lifecycle ─► resolve, publish, content
//! cnf       ─► resolve, publish
//! serve     ─► resolve
//! resolve   ─► publish, content
//! publish   ─► content
//! execute   ─► content, mount
//! mount     ─► lifecycle, resolve
//! (known circle to undo: lifecycle's hooks use execute's limit helpers,
//! and execute mounts a lazy rootfs through mount, which resolves through
//! lifecycle)
//! bundle    ─► only the shared modules
//! content   ─► only the shared modules
//! ```
//!
//! - [`lifecycle`]: installed state and every change to it;
//! - [`publish`]: publishing and the maintainer's keys and registries;
//! - [`resolve`]: the registry client, name resolution, fetching, seeding;
//! - [`serve`]: the trustless gateway server;
//! - [`execute`]: sandboxed and pure runs;
//! - [`cnf`]: command-not-found and the command index;
//! - [`content`]: files and CAR files in and out of the store;
//! - [`bundle`]: all-in-one package trees from dynamically linked programs;
//! - [`mount`]: lazy, verified FUSE views of DAGs (`ipkg mount`, `run --lazy`).
//!
//! Shared by all of them: [`config`] (where things are, the config file),
//! [`error`] (one error type, rendered and mapped to exit codes in one place),
//! [`pins`] (the roots garbage collection keeps) and the traits below.
//! [`doctor`] looks across all of them.

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

// Shared by every capability.
pub mod pins;

// Looks across all of them.
pub mod doctor;

// One folder per capability.
pub mod bundle;
pub mod cnf;
pub mod content;
pub mod execute;
pub mod lifecycle;
pub mod mount;
pub mod publish;
pub mod resolve;
pub mod serve;

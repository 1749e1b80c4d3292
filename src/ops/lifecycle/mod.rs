//! The install lifecycle: what is installed under a prefix, and every change
//! to it.
//!
//! Owns the prefix's installed state: unpacked package trees
//! (`<prefix>/.ipkg/pkgs`), the command links in the bin dir, the receipts
//! ([`installed`]), the journal that makes every change crash-safe
//! ([`journal`]) and the prefix lock ([`lock`]).
//!
//! - [`install`]: `install`, `switch`, `rollback`, `upgrade`, `remove`; the
//!   installer session every one of them runs in.
//! - [`unpack`] and [`verify`]: from a package DAG in the store to a tree on
//!   disk, and back to check it.
//! - [`hooks`]: a package's lifecycle scripts, sandboxed.
//! - [`gc`]: what nothing pins or uses any more goes.
//! - [`query`]: `list`, `info`, `history`, `which` (read-only).
//!
//! Must not touch: registries and keys (it asks [`super::publish`] only to
//! pack a local directory), the network and names (it gets a verified release
//! and its blocks from [`super::resolve`]), the block store's format
//! ([`crate::sources::store`]). It is the only capability that writes installed
//! state; the others read it through [`installed`] and [`query`].

// The shared vocabulary of the operations, for `super::{Error, …}` below.
use super::{Error, Layout, Progress, Ui};

pub mod gc;
pub mod hooks;
pub mod install;
pub mod installed;
pub mod journal;
pub mod lock;
pub mod query;
pub mod unpack;
pub mod verify;

//! Content operations: files and CAR files in and out of the block store,
//! with no package semantics.
//!
//! - [`add`]: `ipkg add`, files and directories to UnixFS (as `ipfs add -r`).
//! - [`get`]: `ipkg get` and `ipkg cat`, files and trees back from a DAG,
//!   everything read treated as untrusted.
//! - [`car`]: `ipkg car export` and `ipkg car import`.
//!
//! Owns the I/O around the pure content layer ([`crate::content`]): walking
//! directories, writing files and trees safely, reading and writing CAR files.
//!
//! Must not touch: manifests, registries, installed state or the network. The
//! other capabilities build on these (packing is an add, unpacking reuses
//! [`get`]'s safe writes, fetching checks completeness with [`car`]); nothing
//! here depends on them.

// The shared vocabulary of the operations, for `super::{Error, …}` below.
use super::{Error, Progress};

pub mod add;
pub mod car;
pub mod get;

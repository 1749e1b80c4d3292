//! Trust: manifests, release statements, the registry index, keys and signatures.
//!
//! Everything here is pure: it takes bytes and returns values, and never opens a
//! file or a socket. Callers in [`crate::ops`] do the I/O.
//!
//! - [`manifest`]: `ipkg.toml`, parsed and checked against a package tree
//!   (`spec/manifest.md` is the normative text).
//! - [`keys`]: ed25519 keys, their IPNS names, Kubo's key file formats.
//! - [`release`]: signed release statements.
//! - [`index`]: the signed registry index and the client's update checks.
//! - [`succession`]: key succession statements and publisher pinning.

mod cbor;
pub mod index;
pub mod keys;
pub mod manifest;
pub mod release;
pub mod succession;

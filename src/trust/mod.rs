//! Trust: manifests, release statements, the registry index, keys and signatures.
//!
//! Everything here is pure: it takes bytes and returns values, and never opens a
//! file or a socket. Callers in [`crate::ops`] do the I/O.

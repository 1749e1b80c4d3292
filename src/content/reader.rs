//! The UnixFS reader: resolves paths, streams file bytes and walks trees over any
//! [`super::BlockGet`].
//!
//! TODO(content-core): implement.

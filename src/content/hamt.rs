//! HAMT-sharded directories, read and written as Kubo does.
//!
//! TODO(content-core): implement.

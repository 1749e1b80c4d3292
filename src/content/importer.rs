//! The UnixFS importer: files (balanced layout), directories, symlinks.
//!
//! Pure: the caller reads chunks and walks directories; the importer turns them
//! into blocks and hands each finished block to a [`super::BlockSink`].
//!
//! TODO(content-core): implement.

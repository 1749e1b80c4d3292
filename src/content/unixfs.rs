//! UnixFS `Data` messages (the protobuf inside a dag-pb node's data field).
//!
//! Every field of the spec is read and written: Type, Data, filesize, blocksizes,
//! hashType, fanout, mode, mtime. Fields are written in field-number order, as
//! gogo-protobuf does, so encodings are byte-identical to Kubo's.
//!
//! TODO(content-core): implement.

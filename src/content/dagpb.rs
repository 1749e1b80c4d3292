//! dag-pb (codec 0x70): the canonical encoder and a tolerant decoder.
//!
//! Encoding follows the dag-pb spec and go-merkledag: links (field 2) before data
//! (field 1), links sorted by name bytes (stable, so the empty names of file
//! chunks keep their order), and a `Name` field written even when empty, as Kubo
//! does on file-chunk links.
//!
//! TODO(content-core): implement.

use super::Cid;

/// One link of a dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    pub cid: Cid,
    /// `None` when the field is absent; `Some("")` is written as an empty name.
    pub name: Option<String>,
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

/// Why bytes are not a dag-pb node.
#[derive(Debug, thiserror::Error)]
#[error("invalid dag-pb: {0}")]
pub struct DagPbError(pub String);

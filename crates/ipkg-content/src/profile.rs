//! Import profiles (IPIP-499): the settings that decide a tree's CID.
//!
//! Two named profiles, as Kubo names them: `unixfs-v1-2025` (the default for
//! packages) and `unixfs-v0-2015` (Kubo's own default for `ipfs add`). Each field
//! can be overridden from the command line (`--cid-version`, `--raw-leaves`,
//! `--chunker size-N`, `--hidden`, `--preserve-mode`).

use std::fmt;
use std::str::FromStr;

/// How a directory's size is estimated to decide when it becomes a HAMT.
///
/// Kubo (boxo `io/directory.go`) switches when the estimate is strictly greater
/// than [`Profile::hamt_threshold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HamtEstimate {
    /// Sum over links of `len(name) + len(cid bytes)` (boxo `SizeEstimationLinks`).
    Links,
    /// The exact serialized size of the basic directory block
    /// (boxo `SizeEstimationBlock`).
    Block,
}

/// Every setting that changes the CID of an imported tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// 0 or 1. CIDv0 implies dag-pb leaves.
    pub cid_version: u8,
    /// Leaves are raw blocks (codec 0x55) rather than UnixFS File nodes.
    pub raw_leaves: bool,
    /// Fixed chunk size in bytes.
    pub chunk_size: usize,
    /// Most links in one file node (balanced layout).
    pub max_links: usize,
    /// A directory whose estimate is strictly greater than this becomes a HAMT.
    pub hamt_threshold: usize,
    pub hamt_estimate: HamtEstimate,
    /// Width of a HAMT shard (a power of two; Kubo uses 256).
    pub hamt_fanout: usize,
    /// Include files and directories whose name starts with `.`.
    pub hidden: bool,
    /// Record permission bits in UnixFS `mode` (ipkg packs normalise them to
    /// 0644/0755 first; see `ops::content::add`).
    pub preserve_mode: bool,
}

impl Profile {
    /// `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links, HAMT past
    /// 256 KiB by block size.
    pub const fn v1_2025() -> Profile {
        Profile {
            name: "unixfs-v1-2025",
            cid_version: 1,
            raw_leaves: true,
            chunk_size: 1024 * 1024,
            max_links: 1024,
            hamt_threshold: 256 * 1024,
            hamt_estimate: HamtEstimate::Block,
            hamt_fanout: 256,
            hidden: false,
            preserve_mode: false,
        }
    }

    /// `unixfs-v0-2015`: Kubo's default. CIDv0, dag-pb leaves, 256 KiB chunks,
    /// 174 links, HAMT past 256 KiB by link estimate.
    pub const fn v0_2015() -> Profile {
        Profile {
            name: "unixfs-v0-2015",
            cid_version: 0,
            raw_leaves: false,
            chunk_size: 256 * 1024,
            max_links: 174,
            hamt_threshold: 256 * 1024,
            hamt_estimate: HamtEstimate::Links,
            hamt_fanout: 256,
            hidden: false,
            preserve_mode: false,
        }
    }

    /// The names `--profile` accepts.
    pub const NAMES: [&'static str; 2] = ["unixfs-v1-2025", "unixfs-v0-2015"];
}

impl Default for Profile {
    fn default() -> Self {
        Profile::v1_2025()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// An unknown profile name.
#[derive(Debug, thiserror::Error)]
#[error("unknown import profile `{0}` (expected `unixfs-v1-2025` or `unixfs-v0-2015`)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unixfs-v1-2025" => Ok(Profile::v1_2025()),
            "unixfs-v0-2015" | "legacy-cid-v0" => Ok(Profile::v0_2015()),
            other => Err(UnknownProfile(other.to_string())),
        }
    }
}

/// Parse Kubo's `--chunker` syntax; only fixed-size chunking (`size-N`) is
/// supported.
pub fn parse_chunker(s: &str) -> Result<usize, String> {
    let n = s
        .strip_prefix("size-")
        .ok_or_else(|| format!("unsupported chunker `{s}` (only `size-N` is supported)"))?;
    let n: usize = n
        .parse()
        .map_err(|_| format!("chunker `{s}`: `{n}` is not a whole number of bytes"))?;
    if n == 0 || n > super::MAX_BLOCK_SIZE - 1024 {
        return Err(format!(
            "chunker `{s}`: the chunk size must be between 1 and {} bytes",
            super::MAX_BLOCK_SIZE - 1024
        ));
    }
    Ok(n)
}

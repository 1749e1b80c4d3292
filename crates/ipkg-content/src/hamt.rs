//! HAMT-sharded directories, read and written as Kubo does.
//!
//! The layout follows boxo `ipld/unixfs/hamt` rather than the spec prose where
//! they differ:
//!
//! - the key hash is the first half (`h1`) of murmur3-x64-128 (seed 0) of the
//!   entry name, taken as 8 big-endian bytes (Go's `murmur3.New64().Sum`);
//! - each level consumes `log2(fanout)` bits from the most significant end of
//!   those bytes;
//! - a shard node is a dag-pb node whose UnixFS data is `HAMTShard` with
//!   `hashType = 0x22`, `fanout`, and `Data` = the occupancy bitfield as a
//!   big-endian integer with its leading zero bytes trimmed (go-bitfield);
//! - link names start with the slot index as upper-case hex padded to the width
//!   of `fanout - 1` (`%02X` for 256); an entry's link appends its name, a link
//!   to a child shard is the prefix alone;
//! - a slot holds a child shard exactly when two or more names share it, so the
//!   trie built here from the final set of names is the one Kubo reaches by
//!   inserting them one at a time in any order;
//! - only the root shard carries mode/mtime (boxo `NewShard` for children sets
//!   no stat).
//!
//! Non-goals: in-place mutation of an existing HAMT (ipkg always rebuilds).

use super::dagpb::{PbLink, PbNode};
use super::unixfs::{Data, DataType};
use super::{BlockSink, Cid, Codec, cid::cid_of};

/// Multicodec of murmur3-x64-64, the only HAMT hash Kubo writes or reads.
pub const HASH_MURMUR3: u64 = 0x22;

/// Largest fanout accepted from a block (boxo `maximumHamtWidth`).
pub const MAX_FANOUT: u64 = 1024;

/// The 8 hash bytes a name is placed by.
pub fn hash_name(name: &str) -> [u8; 8] {
    let mut input = name.as_bytes();
    // Reading from a byte slice cannot fail.
    let h = murmur3::murmur3_x64_128(&mut input, 0).unwrap_or(0);
    (h as u64).to_be_bytes()
}

/// `bits` bits of `hash` starting `consumed` bits from the most significant end,
/// or `None` once the hash is used up ("sharded directory too deep").
pub fn hash_bits(hash: &[u8; 8], consumed: u32, bits: u32) -> Option<usize> {
    if bits == 0 || consumed + bits > 64 {
        return None;
    }
    let v = u64::from_be_bytes(*hash);
    let shifted = (v << consumed) >> (64 - bits);
    Some(shifted as usize)
}

/// Width of a link name prefix for `fanout` (`len(fmt.Sprintf("%X", fanout-1))`).
pub fn pad_len(fanout: u64) -> usize {
    format!("{:X}", fanout.saturating_sub(1)).len()
}

/// The link name prefix for a slot.
pub fn slot_prefix(idx: usize, pad: usize) -> String {
    format!("{idx:0pad$X}")
}

/// log2 of a valid fanout: a power of two, a multiple of 8 and at most
/// [`MAX_FANOUT`] (boxo `validShardWidth`).
pub fn fanout_bits(fanout: u64) -> Option<u32> {
    if (8..=MAX_FANOUT).contains(&fanout) && fanout.is_power_of_two() {
        Some(fanout.trailing_zeros())
    } else {
        None
    }
}

/// The occupancy bitfield of `slots` set bits in a table of `fanout`.
pub fn bitfield(slots: impl Iterator<Item = usize>, fanout: usize) -> Vec<u8> {
    let n = fanout.div_ceil(8);
    let mut bytes = vec![0u8; n];
    for s in slots {
        bytes[n - 1 - s / 8] |= 1 << (s % 8);
    }
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(n);
    bytes.drain(..first);
    bytes
}

/// Whether slot `idx` is set in a (trimmed, big-endian) bitfield.
pub fn bit_is_set(bitfield: &[u8], idx: usize) -> bool {
    let byte = idx / 8;
    if byte >= bitfield.len() {
        return false;
    }
    bitfield[bitfield.len() - 1 - byte] & (1 << (idx % 8)) != 0
}

/// One directory entry to place in a HAMT.
#[derive(Debug, Clone)]
pub struct HamtEntry {
    pub name: String,
    pub cid: Cid,
    pub tsize: u64,
}

/// Why a HAMT could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HamtWriteError {
    #[error("HAMT fanout {0} is not a power of two between 8 and 1024")]
    Fanout(u64),
    #[error(
        "names `{0}` and `{1}` have the same 64-bit HAMT hash; the directory cannot be sharded"
    )]
    TooDeep(String, String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Write a HAMT holding `entries` (distinct names) and return the root's CID and
/// cumulative size (block plus every link's Tsize, as Kubo's link Tsize).
pub fn write_hamt(
    entries: Vec<HamtEntry>,
    fanout: u64,
    cid_version: u8,
    mode: Option<u32>,
    sink: &mut dyn BlockSink,
) -> Result<(Cid, u64), HamtWriteError> {
    let bits = fanout_bits(fanout).ok_or(HamtWriteError::Fanout(fanout))?;
    let hashed: Vec<([u8; 8], HamtEntry)> = entries
        .into_iter()
        .map(|e| (hash_name(&e.name), e))
        .collect();
    let w = Writer {
        fanout,
        bits,
        pad: pad_len(fanout),
        cid_version,
    };
    w.shard(hashed, 0, mode, sink)
}

struct Writer {
    fanout: u64,
    bits: u32,
    pad: usize,
    cid_version: u8,
}

impl Writer {
    fn shard(
        &self,
        entries: Vec<([u8; 8], HamtEntry)>,
        depth: u32,
        mode: Option<u32>,
        sink: &mut dyn BlockSink,
    ) -> Result<(Cid, u64), HamtWriteError> {
        let consumed = depth * self.bits;
        let mut slots: Vec<Vec<([u8; 8], HamtEntry)>> =
            (0..self.fanout).map(|_| Vec::new()).collect();
        for (h, e) in entries {
            let Some(idx) = hash_bits(&h, consumed, self.bits) else {
                return Err(HamtWriteError::TooDeep(e.name, String::new()));
            };
            slots[idx].push((h, e));
        }
        let mut links = Vec::new();
        let mut cumulative = 0u64;
        for (idx, mut group) in slots.into_iter().enumerate() {
            let prefix = slot_prefix(idx, self.pad);
            match group.len() {
                0 => continue,
                1 => {
                    let (_, e) = group.remove(0);
                    cumulative += e.tsize;
                    links.push(PbLink::new(e.cid, prefix + &e.name, e.tsize));
                }
                _ => {
                    if hash_bits(&group[0].0, consumed + self.bits, self.bits).is_none() {
                        let a = group[0].1.name.clone();
                        let b = group[1].1.name.clone();
                        return Err(HamtWriteError::TooDeep(a, b));
                    }
                    let (cid, tsize) = self.shard(group, depth + 1, None, sink)?;
                    cumulative += tsize;
                    links.push(PbLink::new(cid, prefix, tsize));
                }
            }
        }
        let set: Vec<usize> = links
            .iter()
            .filter_map(|l| {
                let n = l.name.as_deref()?;
                usize::from_str_radix(&n[..self.pad], 16).ok()
            })
            .collect();
        let mut data = Data::new(DataType::HAMTShard);
        data.data = Some(bitfield(set.into_iter(), self.fanout as usize));
        data.hash_type = Some(HASH_MURMUR3);
        data.fanout = Some(self.fanout);
        data.mode = mode;
        let node = PbNode {
            links,
            data: Some(data.encode()),
        };
        let bytes = node.encode();
        let cid = cid_of(self.cid_version, Codec::DagPb, &bytes);
        sink.put(&cid, &bytes)?;
        Ok((cid, cumulative + bytes.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_from_the_top() {
        let h = [0xab, 0xcd, 0, 0, 0, 0, 0, 0x01];
        assert_eq!(hash_bits(&h, 0, 8), Some(0xab));
        assert_eq!(hash_bits(&h, 8, 8), Some(0xcd));
        assert_eq!(hash_bits(&h, 0, 4), Some(0xa));
        assert_eq!(hash_bits(&h, 4, 8), Some(0xbc));
        assert_eq!(hash_bits(&h, 56, 8), Some(0x01));
        assert_eq!(hash_bits(&h, 64, 8), None);
    }

    #[test]
    fn bitfield_is_big_endian_trimmed() {
        assert_eq!(bitfield([0usize, 9].into_iter(), 256), vec![0x02, 0x01]);
        assert_eq!(bitfield([255usize].into_iter(), 256).len(), 32);
        assert!(bit_is_set(&[0x02, 0x01], 9));
        assert!(bit_is_set(&[0x02, 0x01], 0));
        assert!(!bit_is_set(&[0x02, 0x01], 1));
        assert!(!bit_is_set(&[0x02, 0x01], 200));
    }

    #[test]
    fn prefixes() {
        assert_eq!(pad_len(256), 2);
        assert_eq!(pad_len(16), 1);
        assert_eq!(pad_len(1024), 3);
        assert_eq!(slot_prefix(10, 2), "0A");
    }
}

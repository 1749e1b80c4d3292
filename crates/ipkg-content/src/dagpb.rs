//! dag-pb (codec 0x70): the canonical encoder and a tolerant decoder.
//!
//! Encoding follows the dag-pb spec and go-merkledag: links (field 2) before data
//! (field 1), links sorted by name bytes (stable, so the empty names of file
//! chunks keep their order), and a `Name` field written even when empty, as Kubo
//! does on file-chunk links (boxo `merkledag/coding.go` always sets `Name` and
//! `Tsize`).
//!
//! Decoding accepts the two fields in either order (the spec's strict decoder
//! demands links first; older encoders did not always comply), but refuses
//! anything that could hide data or make two byte strings mean one node:
//! unknown fields, wrong wire types, a second data field, duplicate fields inside
//! a link, links without a hash, hashes that are not CIDs, non-UTF-8 names,
//! truncated varints and trailing garbage.
//!
//! Non-goals: preserving a non-canonical byte form. A decoded node re-encodes in
//! canonical form, which hashes differently if the input was not canonical.

use std::io::Cursor;

use super::Cid;
use super::varint::{self, Reader, WT_LEN, WT_VARINT, WireError};

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

impl From<WireError> for DagPbError {
    fn from(e: WireError) -> Self {
        DagPbError(e.to_string())
    }
}

impl PbLink {
    /// A link as Kubo writes it: name and Tsize both present.
    pub fn new(cid: Cid, name: impl Into<String>, tsize: u64) -> PbLink {
        PbLink {
            cid,
            name: Some(name.into()),
            tsize: Some(tsize),
        }
    }

    fn name_bytes(&self) -> &[u8] {
        self.name.as_deref().unwrap_or("").as_bytes()
    }

    /// Length of the link message body (without its tag and length prefix).
    fn body_len(&self) -> usize {
        let cid_len = self.cid.encoded_len();
        let mut n = 1 + varint::len(cid_len as u64) + cid_len;
        if let Some(name) = &self.name {
            n += 1 + varint::len(name.len() as u64) + name.len();
        }
        if let Some(t) = self.tsize {
            n += 1 + varint::len(t);
        }
        n
    }

    /// Bytes this link adds to an encoded node (boxo `linkSerializedSize`).
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        1 + varint::len(body as u64) + body
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        varint::put_tag(out, 2, WT_LEN);
        varint::put(out, self.body_len() as u64);
        varint::put_tag(out, 1, WT_LEN);
        varint::put(out, self.cid.encoded_len() as u64);
        // Writing into a Vec cannot fail.
        let _ = self.cid.write_bytes(&mut *out);
        if let Some(name) = &self.name {
            varint::put_bytes(out, 2, name.as_bytes());
        }
        if let Some(t) = self.tsize {
            varint::put_tag(out, 3, WT_VARINT);
            varint::put(out, t);
        }
    }
}

impl PbNode {
    /// The canonical encoding: links sorted by name (stable), then data.
    pub fn encode(&self) -> Vec<u8> {
        let mut order: Vec<&PbLink> = self.links.iter().collect();
        order.sort_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
        let mut len = self
            .data
            .as_ref()
            .map_or(0, |d| 1 + varint::len(d.len() as u64) + d.len());
        len += order.iter().map(|l| l.encoded_len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        for l in order {
            l.encode_into(&mut out);
        }
        if let Some(d) = &self.data {
            varint::put_bytes(&mut out, 1, d);
        }
        out
    }

    /// Decode a dag-pb block; see the module doc for what is refused.
    pub fn decode(bytes: &[u8]) -> Result<PbNode, DagPbError> {
        let mut r = Reader::new(bytes);
        let mut node = PbNode::default();
        while let Some((field, wt)) = r.tag()? {
            match (field, wt) {
                (1, WT_LEN) => {
                    if node.data.is_some() {
                        return Err(DagPbError(format!("second Data field at byte {}", r.pos())));
                    }
                    node.data = Some(r.bytes(1)?.to_vec());
                }
                (2, WT_LEN) => {
                    let at = r.pos();
                    let body = r.bytes(2)?;
                    let link = decode_link(body).map_err(|e| {
                        DagPbError(format!("link {} at byte {at}: {}", node.links.len(), e.0))
                    })?;
                    node.links.push(link);
                }
                (1 | 2, wt) => {
                    return Err(DagPbError(format!(
                        "field {field} has wire type {wt}, expected 2"
                    )));
                }
                (f, _) => {
                    return Err(DagPbError(format!("unknown field {f}")));
                }
            }
        }
        Ok(node)
    }
}

fn decode_link(body: &[u8]) -> Result<PbLink, DagPbError> {
    let mut r = Reader::new(body);
    let mut cid = None;
    let mut name = None;
    let mut tsize = None;
    while let Some((field, wt)) = r.tag()? {
        match (field, wt) {
            (1, WT_LEN) => {
                if cid.is_some() {
                    return Err(DagPbError("second Hash field".into()));
                }
                cid = Some(parse_cid_bytes(r.bytes(1)?)?);
            }
            (2, WT_LEN) => {
                if name.is_some() {
                    return Err(DagPbError("second Name field".into()));
                }
                let raw = r.bytes(2)?;
                let s =
                    std::str::from_utf8(raw).map_err(|_| DagPbError("Name is not UTF-8".into()))?;
                name = Some(s.to_string());
            }
            (3, WT_VARINT) => {
                if tsize.is_some() {
                    return Err(DagPbError("second Tsize field".into()));
                }
                tsize = Some(r.varint()?);
            }
            (1..=3, wt) => {
                return Err(DagPbError(format!(
                    "link field {field} has the wrong wire type {wt}"
                )));
            }
            (f, _) => return Err(DagPbError(format!("unknown link field {f}"))),
        }
    }
    let cid = cid.ok_or_else(|| DagPbError("link has no Hash".into()))?;
    Ok(PbLink { cid, name, tsize })
}

/// Parse binary CID bytes that must be exactly one CID.
pub fn parse_cid_bytes(bytes: &[u8]) -> Result<Cid, DagPbError> {
    let mut cur = Cursor::new(bytes);
    let cid = Cid::read_bytes(&mut cur).map_err(|e| DagPbError(format!("invalid CID: {e}")))?;
    if cur.position() != bytes.len() as u64 {
        return Err(DagPbError("trailing bytes after CID".into()));
    }
    Ok(cid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codec, cid::cid_of};
    use proptest::prelude::*;

    fn some_cid(i: u8) -> Cid {
        cid_of(i & 1, Codec::DagPb, &[i])
    }

    #[test]
    fn empty_dir_bytes() {
        let n = PbNode {
            links: vec![],
            data: Some(vec![8, 1]),
        };
        assert_eq!(n.encode(), vec![0x0a, 2, 8, 1]);
        assert_eq!(
            cid_of(0, Codec::DagPb, &n.encode()).to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
    }

    #[test]
    fn links_sorted_stably_and_before_data() {
        let n = PbNode {
            links: vec![
                PbLink::new(some_cid(1), "b", 1),
                PbLink::new(some_cid(2), "", 2),
                PbLink::new(some_cid(3), "a", 3),
                PbLink::new(some_cid(4), "", 4),
            ],
            data: Some(vec![1, 2, 3]),
        };
        let enc = n.encode();
        assert_eq!(enc[0], 0x12);
        let d = PbNode::decode(&enc).unwrap();
        let names: Vec<_> = d.links.iter().map(|l| l.tsize.unwrap()).collect();
        assert_eq!(names, vec![2, 4, 3, 1]);
        assert_eq!(d.data, Some(vec![1, 2, 3]));
        let len: usize = n.links.iter().map(|l| l.encoded_len()).sum();
        assert_eq!(len + 5, enc.len());
    }

    #[test]
    fn accepts_data_first() {
        let n = PbNode {
            links: vec![PbLink::new(some_cid(1), "x", 7)],
            data: Some(vec![9]),
        };
        let enc = n.encode();
        let split = enc.len() - 3;
        let mut swapped = enc[split..].to_vec();
        swapped.extend_from_slice(&enc[..split]);
        assert_eq!(PbNode::decode(&swapped).unwrap(), n);
    }

    #[test]
    fn refuses_bad_input() {
        let good = PbNode {
            links: vec![PbLink::new(some_cid(1), "x", 7)],
            data: Some(vec![9]),
        }
        .encode();
        // truncated anywhere but at the field boundary after the link
        let link_end = good.len() - 3;
        for i in (1..good.len()).filter(|&i| i != link_end) {
            assert!(PbNode::decode(&good[..i]).is_err(), "prefix {i}");
        }
        // trailing garbage
        let mut g = good.clone();
        g.push(0x00);
        assert!(PbNode::decode(&g).is_err());
        // duplicate data
        assert!(PbNode::decode(&[0x0a, 0, 0x0a, 0]).is_err());
        // wrong wire type for data
        assert!(PbNode::decode(&[0x08, 1]).is_err());
        // unknown field
        assert!(PbNode::decode(&[0x1a, 0]).is_err());
        // link without hash
        assert!(PbNode::decode(&[0x12, 2, 0x18, 1]).is_err());
        // link with invalid cid
        assert!(PbNode::decode(&[0x12, 3, 0x0a, 1, 0xff]).is_err());
        // empty input is a valid empty node
        assert_eq!(PbNode::decode(&[]).unwrap(), PbNode::default());
    }

    fn arb_link() -> impl Strategy<Value = PbLink> {
        (
            any::<u8>(),
            proptest::option::of("[a-z\u{e9}]{0,6}"),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(i, name, tsize)| PbLink {
                cid: some_cid(i),
                name,
                tsize,
            })
    }

    proptest! {
        #[test]
        fn round_trip(
            mut links in proptest::collection::vec(arb_link(), 0..8),
            data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        ) {
            links.sort_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
            let n = PbNode { links, data };
            let enc = n.encode();
            let d = PbNode::decode(&enc).unwrap();
            prop_assert_eq!(&d, &n);
            prop_assert_eq!(d.encode(), enc);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PbNode::decode(&bytes);
        }
    }
}

//! UnixFS `Data` messages (the protobuf inside a dag-pb node's data field).
//!
//! Every field of the spec is read and written: Type, Data, filesize, blocksizes,
//! hashType, fanout, mode, mtime. Fields are written in field-number order, as
//! Go's protobuf marshaller does for boxo's proto2 `unixfs.proto`, so encodings
//! are byte-identical to Kubo's: optional fields only when set, `blocksizes`
//! unpacked (proto2 default), mtime nanos as fixed32.
//!
//! Decoding is tolerant in the protobuf way (unknown fields are skipped, packed
//! `blocksizes` are accepted too) but refuses truncated or ill-typed fields and a
//! missing `Type`, with an error that says which.

use super::varint::{self, Reader, WT_FIXED32, WT_LEN, WT_VARINT, WireError};

/// The UnixFS node types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HAMTShard = 5,
}

impl DataType {
    pub fn from_code(code: u64) -> Option<DataType> {
        Some(match code {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HAMTShard,
            _ => return None,
        })
    }
}

/// A modification time (UnixFS `IPFSTimestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: Option<u32>,
}

/// A UnixFS `Data` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    pub data_type: DataType,
    pub data: Option<Vec<u8>>,
    pub filesize: Option<u64>,
    pub blocksizes: Vec<u64>,
    pub hash_type: Option<u64>,
    pub fanout: Option<u64>,
    pub mode: Option<u32>,
    pub mtime: Option<Mtime>,
}

/// Why bytes are not a UnixFS `Data` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnixFsError {
    #[error("invalid UnixFS data: {0}")]
    Wire(#[from] WireError),
    #[error("invalid UnixFS data: field {field} has wire type {wire_type}")]
    WireType { field: u32, wire_type: u8 },
    #[error("invalid UnixFS data: the required Type field is missing")]
    MissingType,
    #[error("invalid UnixFS data: unknown node type {0}")]
    UnknownType(u64),
    #[error("invalid UnixFS data: mode {0:#o} does not fit in 32 bits")]
    ModeRange(u64),
    #[error("invalid UnixFS data: mtime has no seconds")]
    MtimeSeconds,
}

/// The permission bits UnixFS records: `rwxrwxrwx` plus setuid, setgid and
/// sticky (boxo `files.ModePermsToUnixPerms`).
pub const MODE_PERMS: u32 = 0o7777;

/// Normalise permission bits the way ipkg packs do (DESIGN §3): 0755 when the
/// owner may execute, 0644 otherwise.
pub fn normalize_mode(mode: u32) -> u32 {
    if mode & 0o100 != 0 { 0o755 } else { 0o644 }
}

impl Data {
    /// A bare message of the given type, every optional field unset.
    pub fn new(data_type: DataType) -> Data {
        Data {
            data_type,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// Encode in field-number order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self.data.as_ref().map_or(0, |d| d.len()) + 5 * self.blocksizes.len(),
        );
        self.encode_into(&mut out);
        out
    }

    /// Append the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        varint::put_tag(out, 1, WT_VARINT);
        varint::put(out, self.data_type as u64);
        if let Some(d) = &self.data {
            varint::put_bytes(out, 2, d);
        }
        if let Some(s) = self.filesize {
            varint::put_tag(out, 3, WT_VARINT);
            varint::put(out, s);
        }
        for &b in &self.blocksizes {
            varint::put_tag(out, 4, WT_VARINT);
            varint::put(out, b);
        }
        if let Some(h) = self.hash_type {
            varint::put_tag(out, 5, WT_VARINT);
            varint::put(out, h);
        }
        if let Some(f) = self.fanout {
            varint::put_tag(out, 6, WT_VARINT);
            varint::put(out, f);
        }
        if let Some(m) = self.mode {
            varint::put_tag(out, 7, WT_VARINT);
            varint::put(out, u64::from(m));
        }
        if let Some(t) = self.mtime {
            let mut inner = Vec::with_capacity(16);
            varint::put_tag(&mut inner, 1, WT_VARINT);
            // int64 is sign-extended: a negative time takes ten bytes.
            varint::put(&mut inner, t.secs as u64);
            if let Some(n) = t.nanos {
                varint::put_tag(&mut inner, 2, WT_FIXED32);
                inner.extend_from_slice(&n.to_le_bytes());
            }
            varint::put_bytes(out, 8, &inner);
        }
    }

    /// Decode a `Data` message.
    pub fn decode(bytes: &[u8]) -> Result<Data, UnixFsError> {
        let mut r = Reader::new(bytes);
        let mut ty = None;
        let mut d = Data::new(DataType::Raw);
        while let Some((field, wt)) = r.tag()? {
            match (field, wt) {
                (1, WT_VARINT) => {
                    let code = r.varint()?;
                    ty = Some(DataType::from_code(code).ok_or(UnixFsError::UnknownType(code))?);
                }
                (2, WT_LEN) => d.data = Some(r.bytes(2)?.to_vec()),
                (3, WT_VARINT) => d.filesize = Some(r.varint()?),
                (4, WT_VARINT) => d.blocksizes.push(r.varint()?),
                (4, WT_LEN) => {
                    // Packed form: legal protobuf, though Kubo never writes it.
                    let mut p = Reader::new(r.bytes(4)?);
                    while !p.is_empty() {
                        d.blocksizes.push(p.varint()?);
                    }
                }
                (5, WT_VARINT) => d.hash_type = Some(r.varint()?),
                (6, WT_VARINT) => d.fanout = Some(r.varint()?),
                (7, WT_VARINT) => {
                    let m = r.varint()?;
                    d.mode = Some(u32::try_from(m).map_err(|_| UnixFsError::ModeRange(m))?);
                }
                (8, WT_LEN) => d.mtime = Some(decode_mtime(r.bytes(8)?)?),
                (1..=8, wire_type) => return Err(UnixFsError::WireType { field, wire_type }),
                (f, w) => r.skip(f, w)?,
            }
        }
        d.data_type = ty.ok_or(UnixFsError::MissingType)?;
        Ok(d)
    }

    /// Permission bits, if recorded.
    pub fn perms(&self) -> Option<u32> {
        self.mode.map(|m| m & MODE_PERMS)
    }
}

fn decode_mtime(bytes: &[u8]) -> Result<Mtime, UnixFsError> {
    let mut r = Reader::new(bytes);
    let mut secs = None;
    let mut nanos = None;
    while let Some((field, wt)) = r.tag()? {
        match (field, wt) {
            (1, WT_VARINT) => secs = Some(r.varint()? as i64),
            (2, WT_FIXED32) => nanos = Some(r.fixed32(2)?),
            (1 | 2, wire_type) => return Err(UnixFsError::WireType { field, wire_type }),
            (f, w) => r.skip(f, w)?,
        }
    }
    Ok(Mtime {
        secs: secs.ok_or(UnixFsError::MtimeSeconds)?,
        nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut f = Data::new(DataType::File);
        f.filesize = Some(0);
        assert_eq!(f.encode(), vec![8, 2, 0x18, 0]);
        assert_eq!(Data::new(DataType::Directory).encode(), vec![8, 1]);
        let mut s = Data::new(DataType::Symlink);
        s.data = Some(b"a.txt".to_vec());
        assert_eq!(s.encode(), b"\x08\x04\x12\x05a.txt".to_vec());
        let mut m = Data::new(DataType::File);
        m.mtime = Some(Mtime {
            secs: -1,
            nanos: Some(5),
        });
        let e = m.encode();
        assert_eq!(e.len(), 2 + 2 + 11 + 5);
        assert_eq!(Data::decode(&e).unwrap(), m);
    }

    #[test]
    fn decode_errors() {
        assert_eq!(Data::decode(&[]), Err(UnixFsError::MissingType));
        assert_eq!(Data::decode(&[8, 9]), Err(UnixFsError::UnknownType(9)));
        assert!(matches!(
            Data::decode(&[0x10, 1]),
            Err(UnixFsError::WireType { field: 2, .. })
        ));
        assert!(Data::decode(&[8, 2, 0x12, 5, 1]).is_err());
        // unknown fields are skipped; packed blocksizes accepted
        let d = Data::decode(&[8, 2, 0x48, 1, 0x22, 2, 3, 4]).unwrap();
        assert_eq!(d.blocksizes, vec![3, 4]);
    }

    fn arb_data() -> impl Strategy<Value = Data> {
        (
            0u64..6,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(any::<u64>(), 0..5),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of((any::<i64>(), proptest::option::of(any::<u32>()))),
        )
            .prop_map(
                |(t, data, filesize, blocksizes, hash_type, fanout, mode, mt)| Data {
                    data_type: DataType::from_code(t).unwrap(),
                    data,
                    filesize,
                    blocksizes,
                    hash_type,
                    fanout,
                    mode,
                    mtime: mt.map(|(secs, nanos)| Mtime { secs, nanos }),
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(d in arb_data()) {
            let e = d.encode();
            let back = Data::decode(&e).unwrap();
            prop_assert_eq!(&back, &d);
            prop_assert_eq!(back.encode(), e);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Data::decode(&bytes);
        }
    }
}

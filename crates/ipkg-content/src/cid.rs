//! CIDs and blocks: computing, verifying, parsing and printing CIDs.
//!
//! CIDv0 is always dag-pb + sha2-256 and prints as base58btc (`Qm…`); CIDv1
//! prints as base32 (`b…`) by default. Parsing accepts base32 (`b`), base36
//! (`k`) and base58btc (`z`) as well as bare CIDv0.

use sha2::{Digest, Sha256};

/// A CID of up to 64 digest bytes (sha2-256 needs 32).
pub type Cid = cid::Cid;

/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of identity (the digest is the data itself).
pub const IDENTITY: u64 = 0x00;

/// The multicodecs ipkg reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Raw,
    DagPb,
    DagCbor,
    Libp2pKey,
}

impl Codec {
    pub const fn code(self) -> u64 {
        match self {
            Codec::Raw => 0x55,
            Codec::DagPb => 0x70,
            Codec::DagCbor => 0x71,
            Codec::Libp2pKey => 0x72,
        }
    }

    pub fn from_code(code: u64) -> Option<Codec> {
        Some(match code {
            0x55 => Codec::Raw,
            0x70 => Codec::DagPb,
            0x71 => Codec::DagCbor,
            0x72 => Codec::Libp2pKey,
            _ => return None,
        })
    }
}

/// A block: bytes and the CID they hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub cid: Cid,
    pub data: Vec<u8>,
}

/// Why a CID or a block was refused.
#[derive(Debug, thiserror::Error)]
pub enum CidError {
    #[error("`{input}` is not a CID: {reason}")]
    Parse { input: String, reason: String },
    #[error("block `{cid}` does not hash to its CID")]
    Mismatch { cid: Cid },
    #[error("block `{cid}` uses hash function 0x{code:x}, which ipkg does not verify")]
    UnsupportedHash { cid: Cid, code: u64 },
}

/// The sha2-256 CID of `data` for the given CID version and codec.
///
/// CIDv0 exists only for dag-pb; asking for v0 with another codec gives v1.
pub fn cid_of(version: u8, codec: Codec, data: &[u8]) -> Cid {
    let digest = Sha256::digest(data);
    let mh = multihash::Multihash::wrap(SHA2_256, &digest).expect("32-byte digest fits");
    if version == 0 && codec == Codec::DagPb {
        Cid::new_v0(mh).expect("sha2-256 dag-pb is a valid CIDv0")
    } else {
        Cid::new_v1(codec.code(), mh)
    }
}

/// Check that `data` hashes to `cid`. Identity CIDs are checked by comparison.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), CidError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => Sha256::digest(data).as_slice() == mh.digest(),
        IDENTITY => mh.digest() == data,
        code => return Err(CidError::UnsupportedHash { cid: *cid, code }),
    };
    if ok {
        Ok(())
    } else {
        Err(CidError::Mismatch { cid: *cid })
    }
}

/// Parse a CID in any of the string forms ipkg accepts.
pub fn parse(input: &str) -> Result<Cid, CidError> {
    let s = input.trim();
    Cid::try_from(s).map_err(|e| CidError::Parse {
        input: input.to_string(),
        reason: e.to_string(),
    })
}

/// The canonical string of a CID: base58btc for v0, base32 for v1.
pub fn to_string(cid: &Cid) -> String {
    cid.to_string()
}

/// A CID as text in the base a user asked for (`b`, `k` or `z`).
pub fn to_string_base(cid: &Cid, base: multibase::Base) -> Result<String, CidError> {
    cid.to_string_of_base(base).map_err(|e| CidError::Parse {
        input: cid.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_raw_leaf() {
        let c = cid_of(1, Codec::Raw, b"hello world");
        assert_eq!(
            c.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        verify(&c, b"hello world").unwrap();
        assert!(verify(&c, b"hello worle").is_err());
    }

    #[test]
    fn parses_every_base() {
        let c = cid_of(1, Codec::DagPb, b"x");
        for base in [
            multibase::Base::Base32Lower,
            multibase::Base::Base36Lower,
            multibase::Base::Base58Btc,
        ] {
            let s = to_string_base(&c, base).unwrap();
            assert_eq!(parse(&s).unwrap(), c, "{s}");
        }
        assert!(parse("not-a-cid").is_err());
    }
}

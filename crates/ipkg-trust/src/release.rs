//! Release statements: a publisher's signed word that `name version` for
//! `target` is the package tree `package`.
//!
//! Wire form (`spec/manifest.md` §"Release statement"): one DAG-CBOR map
//!
//! ```text
//! { name, version, package: CID, target, publisher: "k51…", previous: CID|null,
//!   time: unix seconds, signature: bytes }
//! ```
//!
//! The signature is ed25519 by `publisher` over
//! `b"ipkg-release-v1:" ++ dag-cbor(the same map without "signature")`, the way
//! IPNS V2 records sign `"ipns-signature:" ++ data`. The CID of a release is
//! `CIDv1(dag-cbor, sha2-256)` of the whole signed map: a self-verifying handle.
//!
//! A [`SignedRelease`] value always carries a valid signature: the only ways to
//! get one are [`SignedRelease::sign`] and [`SignedRelease::decode`], which
//! verifies. Whether the signer is the *right* publisher for the package is a
//! policy question answered by [`crate::succession::check_publisher`].

use ipkg_content::cid::{Cid, Codec, cid_of};
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::keys::{Keypair, PublicKey};
use crate::manifest;

/// Domain-separation prefix of release signatures.
pub const RELEASE_SIGNATURE_PREFIX: &[u8] = b"ipkg-release-v1:";
/// Release statements larger than this are refused before decoding.
pub const MAX_RELEASE_BYTES: usize = 64 * 1024;

/// The unsigned fields of a release statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub version: semver::Version,
    /// Root CID of the package's UnixFS tree.
    pub package: Cid,
    /// `x86_64-linux`, `aarch64-linux`, …, or `any`.
    pub target: String,
    /// The publisher's IPNS name (`k51…`); its key signs the statement.
    pub publisher: String,
    /// The CID of the release statement this one follows, if any.
    pub previous: Option<Cid>,
    /// When it was signed, in Unix seconds (UTC).
    pub time: i64,
}

/// A release statement with a signature known to be valid for its `publisher`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRelease {
    release: Release,
    signature: Vec<u8>,
    bytes: Vec<u8>,
    cid: Cid,
}

/// Why a release statement was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("not a valid release statement{}: {reason}", at(.cid))]
    Decode { cid: Option<Cid>, reason: String },
    #[error("release {name} {version}: field `{field}` is invalid: {reason}")]
    Field {
        name: String,
        version: String,
        field: &'static str,
        reason: String,
    },
    #[error("bad signature on release {name} {version} ({cid})")]
    BadSignature {
        name: String,
        version: semver::Version,
        cid: Cid,
    },
    #[error(
        "cannot sign release {name} {version}: it names publisher `{publisher}` but the key is `{key}`"
    )]
    WrongKey {
        name: String,
        version: semver::Version,
        publisher: String,
        key: String,
    },
    #[error("release {name} {version} signed by {signer} but the package publisher is {expected}")]
    PublisherMismatch {
        name: String,
        version: semver::Version,
        signer: String,
        expected: String,
    },
    #[error("could not encode release {name} {version}: {reason}")]
    Encode {
        name: String,
        version: semver::Version,
        reason: String,
    },
}

fn at(cid: &Option<Cid>) -> String {
    cid.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// The DAG-CBOR map. Field names are the wire names; serde_ipld_dagcbor sorts
/// them canonically whatever the order here.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    name: String,
    version: String,
    package: Cid,
    target: String,
    publisher: String,
    previous: Option<Cid>,
    time: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_bytes_opt"
    )]
    signature: Option<Vec<u8>>,
}

/// `Option<Vec<u8>>` as a CBOR byte string (not an array of integers).
pub(crate) mod serde_bytes_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<serde_bytes::ByteBuf>::deserialize(d).map(|o| o.map(|b| b.into_vec()))
    }
}

impl Release {
    fn to_wire(&self, signature: Option<Vec<u8>>) -> Wire {
        Wire {
            name: self.name.clone(),
            version: self.version.to_string(),
            package: self.package,
            target: self.target.clone(),
            publisher: self.publisher.clone(),
            previous: self.previous,
            time: self.time,
            signature,
        }
    }

    /// Check the fields a signer controls: name, target and publisher syntax.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        let field = |field: &'static str, reason: String| ReleaseError::Field {
            name: self.name.clone(),
            version: self.version.to_string(),
            field,
            reason,
        };
        manifest::check_package_name(&self.name).map_err(|r| field("name", r))?;
        manifest::check_target(&self.target).map_err(|r| field("target", r))?;
        PublicKey::from_canonical_name(&self.publisher)
            .map_err(|e| field("publisher", e.to_string()))?;
        Ok(())
    }

    /// The exact bytes the publisher signs:
    /// `b"ipkg-release-v1:" ++ dag-cbor(unsigned map)`.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, ReleaseError> {
        let body = cbor::encode(&self.to_wire(None)).map_err(|reason| ReleaseError::Encode {
            name: self.name.clone(),
            version: self.version.clone(),
            reason,
        })?;
        let mut out = Vec::with_capacity(RELEASE_SIGNATURE_PREFIX.len() + body.len());
        out.extend_from_slice(RELEASE_SIGNATURE_PREFIX);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// `name version (target)` for messages.
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.target)
    }
}

impl SignedRelease {
    /// Sign `release` with `key`, which must be the key `release.publisher` names.
    pub fn sign(release: Release, key: &Keypair) -> Result<SignedRelease, ReleaseError> {
        release.validate()?;
        let key_name = key.ipns_name();
        let publisher_ok = PublicKey::from_ipns_name(&release.publisher)
            .map(|p| p == key.public())
            .unwrap_or(false);
        if !publisher_ok {
            return Err(ReleaseError::WrongKey {
                name: release.name,
                version: release.version,
                publisher: release.publisher,
                key: key_name,
            });
        }
        let signature = key.sign(&release.signing_bytes()?).to_vec();
        let bytes = cbor::encode(&release.to_wire(Some(signature.clone()))).map_err(|reason| {
            ReleaseError::Encode {
                name: release.name.clone(),
                version: release.version.clone(),
                reason,
            }
        })?;
        let cid = cid_of(1, Codec::DagCbor, &bytes);
        Ok(SignedRelease {
            release,
            signature,
            bytes,
            cid,
        })
    }

    /// Decode a signed release and verify its signature against its publisher.
    pub fn decode(bytes: &[u8]) -> Result<SignedRelease, ReleaseError> {
        let cid = cid_of(1, Codec::DagCbor, bytes);
        let decode_err = |reason: String| ReleaseError::Decode {
            cid: Some(cid),
            reason,
        };
        let wire: Wire = cbor::decode_canonical(bytes, MAX_RELEASE_BYTES).map_err(decode_err)?;
        let version = semver::Version::parse(&wire.version).map_err(|e| ReleaseError::Field {
            name: wire.name.clone(),
            version: wire.version.clone(),
            field: "version",
            reason: e.to_string(),
        })?;
        let release = Release {
            name: wire.name,
            version,
            package: wire.package,
            target: wire.target,
            publisher: wire.publisher,
            previous: wire.previous,
            time: wire.time,
        };
        release.validate()?;
        let signature = wire
            .signature
            .ok_or_else(|| decode_err("it has no `signature`".into()))?;
        let bad = || ReleaseError::BadSignature {
            name: release.name.clone(),
            version: release.version.clone(),
            cid,
        };
        let key = PublicKey::from_ipns_name(&release.publisher).map_err(|_| bad())?;
        key.verify(&release.signing_bytes()?, &signature)
            .map_err(|_| bad())?;
        Ok(SignedRelease {
            release,
            signature,
            bytes: bytes.to_vec(),
            cid,
        })
    }

    /// The signed fields.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The 64-byte signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The DAG-CBOR bytes (the block whose CID is [`Self::cid`]).
    pub fn encode(&self) -> &[u8] {
        &self.bytes
    }

    /// `CIDv1(dag-cbor, sha2-256)` of [`Self::encode`].
    pub fn cid(&self) -> Cid {
        self.cid
    }

    /// The publisher's key (already checked to have signed this release).
    pub fn signer(&self) -> Result<PublicKey, ReleaseError> {
        PublicKey::from_ipns_name(&self.release.publisher).map_err(|e| ReleaseError::Field {
            name: self.release.name.clone(),
            version: self.release.version.to_string(),
            field: "publisher",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &Keypair) -> Release {
        Release {
            name: "xmr".into(),
            version: semver::Version::new(1, 2, 3),
            package: cid_of(1, Codec::DagPb, b"tree"),
            target: "x86_64-linux".into(),
            publisher: key.ipns_name(),
            previous: None,
            time: 1_767_225_600,
        }
    }

    #[test]
    fn sign_decode_round_trip() {
        let key = Keypair::from_seed(&[1; 32]);
        let signed = SignedRelease::sign(sample(&key), &key).unwrap();
        let back = SignedRelease::decode(signed.encode()).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.cid(), cid_of(1, Codec::DagCbor, signed.encode()));
        assert!(back.cid().to_string().starts_with("bafyrei"));
    }

    #[test]
    fn wrong_key_refused_at_signing() {
        let key = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let err = SignedRelease::sign(sample(&key), &other).unwrap_err();
        assert!(err.to_string().contains("but the key is"), "{err}");
    }

    #[test]
    fn signature_tamper_named() {
        let key = Keypair::from_seed(&[1; 32]);
        let signed = SignedRelease::sign(sample(&key), &key).unwrap();
        let mut bytes = signed.encode().to_vec();
        // The signature is the last 64 bytes of the map (longest key, sorted last).
        let n = bytes.len();
        bytes[n - 5] ^= 0x01;
        let err = SignedRelease::decode(&bytes).unwrap_err().to_string();
        assert!(
            err.starts_with("bad signature on release xmr 1.2.3 (bafy"),
            "{err}"
        );
    }

    #[test]
    fn non_canonical_refused() {
        let key = Keypair::from_seed(&[1; 32]);
        let signed = SignedRelease::sign(sample(&key), &key).unwrap();
        let mut bytes = signed.encode().to_vec();
        bytes.push(0);
        assert!(SignedRelease::decode(&bytes).is_err());
    }
}

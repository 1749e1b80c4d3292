//! Key succession statements and publisher pinning.
//!
//! `ipkg key rotate OLD NEW` makes a statement signed by the old key naming the
//! new one: DAG-CBOR `{old: "k51…", new: "k51…", time, signature}`, the
//! signature over `b"ipkg-key-succession-v1:" ++ dag-cbor({old, new, time})`.
//! A client that pinned `OLD` for a package (or a registry) accepts `NEW` when
//! it is shown a chain of such statements from `OLD` to `NEW`. The chain only
//! runs forward: once a client follows `OLD → NEW`, releases signed by `OLD`
//! are refused, since a rotation is usually the answer to a lost key.

use std::collections::{BTreeSet, VecDeque};

use ipkg_content::cid::{Cid, Codec, cid_of};
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::keys::{Keypair, PublicKey};
use crate::release::{ReleaseError, SignedRelease, serde_bytes_opt};

/// Domain-separation prefix of succession signatures.
pub const SUCCESSION_SIGNATURE_PREFIX: &[u8] = b"ipkg-key-succession-v1:";
const MAX_SUCCESSION_BYTES: usize = 4096;

/// A verified statement by `old` that `new` succeeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySuccession {
    old: String,
    new: String,
    time: i64,
    signature: Vec<u8>,
    bytes: Vec<u8>,
    cid: Cid,
}

/// Why a succession statement was refused.
#[derive(Debug, thiserror::Error)]
pub enum SuccessionError {
    #[error("not a valid key succession statement ({cid}): {reason}")]
    Decode { cid: Cid, reason: String },
    #[error("bad signature on the key succession {old} -> {new} ({cid})")]
    BadSignature { old: String, new: String, cid: Cid },
    #[error("key succession: `{name}` is not a canonical ed25519 IPNS name (`k51…`)")]
    BadName { name: String },
    #[error("key succession: a key cannot succeed itself ({name})")]
    SelfSuccession { name: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    old: String,
    new: String,
    time: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_bytes_opt"
    )]
    signature: Option<Vec<u8>>,
}

/// `name` must be the canonical `k51…` spelling of an ed25519 key.
fn canonical_key_name(name: &str) -> Option<PublicKey> {
    PublicKey::from_canonical_name(name).ok()
}

fn signing_bytes(old: &str, new: &str, time: i64) -> Result<Vec<u8>, String> {
    let body = cbor::encode(&Wire {
        old: old.to_owned(),
        new: new.to_owned(),
        time,
        signature: None,
    })?;
    Ok([SUCCESSION_SIGNATURE_PREFIX, &body].concat())
}

impl KeySuccession {
    /// `old` declares that the key named `new` (`k51…`) succeeds it.
    pub fn sign(old: &Keypair, new: &str, time: i64) -> Result<KeySuccession, SuccessionError> {
        let old_name = old.ipns_name();
        if canonical_key_name(new).is_none() {
            return Err(SuccessionError::BadName {
                name: new.to_owned(),
            });
        }
        if new == old_name {
            return Err(SuccessionError::SelfSuccession { name: old_name });
        }
        let enc_err = |reason: String| SuccessionError::Decode {
            cid: cid_of(1, Codec::DagCbor, &[]),
            reason,
        };
        let signature = old
            .sign(&signing_bytes(&old_name, new, time).map_err(enc_err)?)
            .to_vec();
        let bytes = cbor::encode(&Wire {
            old: old_name.clone(),
            new: new.to_owned(),
            time,
            signature: Some(signature.clone()),
        })
        .map_err(enc_err)?;
        Ok(KeySuccession {
            old: old_name,
            new: new.to_owned(),
            time,
            signature,
            cid: cid_of(1, Codec::DagCbor, &bytes),
            bytes,
        })
    }

    /// Decode a statement and verify it was signed by its `old` key.
    pub fn decode(bytes: &[u8]) -> Result<KeySuccession, SuccessionError> {
        let cid = cid_of(1, Codec::DagCbor, bytes);
        let wire: Wire = cbor::decode_canonical(bytes, MAX_SUCCESSION_BYTES)
            .map_err(|reason| SuccessionError::Decode { cid, reason })?;
        let old_key = canonical_key_name(&wire.old).ok_or_else(|| SuccessionError::BadName {
            name: wire.old.clone(),
        })?;
        if canonical_key_name(&wire.new).is_none() {
            return Err(SuccessionError::BadName { name: wire.new });
        }
        if wire.old == wire.new {
            return Err(SuccessionError::SelfSuccession { name: wire.old });
        }
        let bad = || SuccessionError::BadSignature {
            old: wire.old.clone(),
            new: wire.new.clone(),
            cid,
        };
        let signature = wire.signature.clone().ok_or_else(bad)?;
        let msg = signing_bytes(&wire.old, &wire.new, wire.time)
            .map_err(|reason| SuccessionError::Decode { cid, reason })?;
        old_key.verify(&msg, &signature).map_err(|_| bad())?;
        Ok(KeySuccession {
            old: wire.old,
            new: wire.new,
            time: wire.time,
            signature,
            bytes: bytes.to_vec(),
            cid,
        })
    }

    pub fn old(&self) -> &str {
        &self.old
    }

    pub fn new_key(&self) -> &str {
        &self.new
    }

    pub fn time(&self) -> i64 {
        self.time
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The DAG-CBOR block.
    pub fn encode(&self) -> &[u8] {
        &self.bytes
    }

    pub fn cid(&self) -> Cid {
        self.cid
    }
}

/// Whether `statements` hold a chain of successions from `from` to `to`
/// (`from == to` counts as a chain of length zero).
pub fn succeeds(from: &str, to: &str, statements: &[KeySuccession]) -> bool {
    let mut seen = BTreeSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(cur) = queue.pop_front() {
        if cur == to {
            return true;
        }
        for s in statements.iter().filter(|s| s.old == cur) {
            if seen.insert(&s.new) {
                queue.push_back(&s.new);
            }
        }
    }
    false
}

/// How a release's signer relates to the pinned publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublisherCheck {
    /// Nothing was pinned: pin the signer (trust on first use).
    FirstUse { publisher: String },
    /// The pinned key signed it.
    Pinned,
    /// A chain of succession statements leads from the pinned key to the
    /// signer; the caller should re-pin to `to`.
    Rotated { from: String, to: String },
}

/// Check that `release` is signed by the pinned publisher of its package, or
/// by a successor the pinned key named.
pub fn check_publisher(
    pinned: Option<&str>,
    release: &SignedRelease,
    successions: &[KeySuccession],
) -> Result<PublisherCheck, ReleaseError> {
    let r = release.release();
    let Some(pinned) = pinned else {
        return Ok(PublisherCheck::FirstUse {
            publisher: r.publisher.clone(),
        });
    };
    if pinned == r.publisher {
        return Ok(PublisherCheck::Pinned);
    }
    if succeeds(pinned, &r.publisher, successions) {
        return Ok(PublisherCheck::Rotated {
            from: pinned.to_owned(),
            to: r.publisher.clone(),
        });
    }
    Err(ReleaseError::PublisherMismatch {
        name: r.name.clone(),
        version: r.version.clone(),
        signer: r.publisher.clone(),
        expected: pinned.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::Release;

    fn release(key: &Keypair) -> SignedRelease {
        SignedRelease::sign(
            Release {
                name: "xmr".into(),
                version: semver::Version::new(1, 0, 0),
                package: cid_of(1, Codec::DagPb, b"t"),
                target: "any".into(),
                publisher: key.ipns_name(),
                previous: None,
                time: 0,
            },
            key,
        )
        .unwrap()
    }

    #[test]
    fn rotation_chain() {
        let a = Keypair::from_seed(&[1; 32]);
        let b = Keypair::from_seed(&[2; 32]);
        let c = Keypair::from_seed(&[3; 32]);
        let ab = KeySuccession::sign(&a, &b.ipns_name(), 10).unwrap();
        let bc = KeySuccession::sign(&b, &c.ipns_name(), 20).unwrap();
        let back = KeySuccession::decode(ab.encode()).unwrap();
        assert_eq!(back, ab);

        let rel = release(&c);
        let err =
            check_publisher(Some(&a.ipns_name()), &rel, std::slice::from_ref(&ab)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "release xmr 1.0.0 signed by {} but the package publisher is {}",
                c.ipns_name(),
                a.ipns_name()
            )
        );
        assert_eq!(
            check_publisher(Some(&a.ipns_name()), &rel, &[ab, bc.clone()]).unwrap(),
            PublisherCheck::Rotated {
                from: a.ipns_name(),
                to: c.ipns_name()
            }
        );
        // Only forward: pinned C does not accept A.
        assert!(check_publisher(Some(&c.ipns_name()), &release(&a), &[bc]).is_err());
    }

    #[test]
    fn tampered_succession_refused() {
        let a = Keypair::from_seed(&[1; 32]);
        let b = Keypair::from_seed(&[2; 32]);
        let ab = KeySuccession::sign(&a, &b.ipns_name(), 10).unwrap();
        let mut bytes = ab.encode().to_vec();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        let e = KeySuccession::decode(&bytes).unwrap_err().to_string();
        assert!(e.starts_with("bad signature on the key succession"), "{e}");
    }
}

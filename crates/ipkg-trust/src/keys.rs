//! Ed25519 keys in the formats Kubo and libp2p use, and the IPNS names they make.
//!
//! A key's public half is also its name: the libp2p `PublicKey` protobuf
//! (`Type = Ed25519 (1)`, `Data` = 32 bytes) wrapped in an identity multihash is
//! the peer ID, and the CIDv1 with codec `libp2p-key` (0x72) of that multihash,
//! printed in base36, is the IPNS name (`k51…`). Kubo prints exactly that with
//! `ipfs key list -l --ipns-base=base36`.
//!
//! Two private-key formats are read and written, the same two that
//! `ipfs key export`/`ipfs key import` understand (kubo `core/commands/keystore.go`):
//!
//! - `libp2p-protobuf-cleartext`: the libp2p `PrivateKey` protobuf whose `Data`
//!   is the 32-byte seed followed by the 32-byte public key (go-libp2p's layout;
//!   the legacy 96-byte form with the public key repeated is accepted on read).
//! - `pem-pkcs8-cleartext`: a PEM `PRIVATE KEY` block holding a PKCS#8 v1
//!   `PrivateKeyInfo` with the seed, as Go's `x509.MarshalPKCS8PrivateKey` and
//!   `pem.Encode` write it (64-column base64, LF line ends). On read the PKCS#8
//!   v2 form (with the public key) is accepted too, as OpenSSL may write it.
//!
//! Goals: byte-exact interoperability with Kubo for ed25519. Non-goals: RSA,
//! secp256k1 and ECDSA keys (refused with a clear error), encrypted key files.
//!
//! Nothing here prints secret material: [`Keypair`]'s `Debug` shows the name only.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use ipkg_content::cid::{Cid, Codec, IDENTITY};

/// libp2p `KeyType` value for ed25519 (`crypto.proto`).
pub const KEY_TYPE_ED25519: u64 = 1;
const KEY_TYPE_NAMES: [&str; 4] = ["RSA", "Ed25519", "Secp256k1", "ECDSA"];

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why a key, a key file, a name or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not get random bytes from the operating system: {0}")]
    Random(String),
    #[error("not a libp2p {what} protobuf: {reason}")]
    Protobuf { what: &'static str, reason: String },
    #[error("{what} uses key type {key_type}; ipkg supports only ed25519 keys")]
    UnsupportedKeyType {
        what: &'static str,
        key_type: String,
    },
    #[error("not an ed25519 key: {reason}")]
    Malformed { reason: String },
    #[error("not a PEM PKCS#8 ed25519 private key: {reason}")]
    Pem { reason: String },
    #[error("`{input}` is not an IPNS key name: {reason}")]
    Name { input: String, reason: String },
    #[error("bad signature by {signer}")]
    BadSignature { signer: String },
}

/// An ed25519 public key: a publisher or registry identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// An ed25519 key pair. `Debug` prints the public name only.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A new key from the operating system's random source (feature `os-rng`;
    /// without it, make the seed elsewhere and use [`Keypair::from_seed`]).
    #[cfg(feature = "os-rng")]
    pub fn generate() -> Result<Keypair, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = Keypair::from_seed(&seed);
        seed.fill(0);
        Ok(key)
    }

    /// The key whose 32-byte ed25519 seed (RFC 8032 private key) is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The IPNS name of the public half (`k51…`).
    pub fn ipns_name(&self) -> String {
        self.public().ipns_name()
    }

    /// Sign `message` as it is. Callers add their own domain-separation prefix.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }

    /// The libp2p `PrivateKey` protobuf, as `ipfs key export` writes it by
    /// default (`libp2p-protobuf-cleartext`). This is secret material.
    pub fn to_libp2p_protobuf(&self) -> Vec<u8> {
        protobuf_encode(&self.signing.to_keypair_bytes())
    }

    /// Read a libp2p `PrivateKey` protobuf (`libp2p-protobuf-cleartext`).
    pub fn from_libp2p_protobuf(bytes: &[u8]) -> Result<Keypair, KeyError> {
        let data = protobuf_decode(bytes, "PrivateKey")?;
        let (seed, public) = match data.len() {
            64 => (&data[..32], &data[32..64]),
            // go-libp2p's legacy layout repeats the public key.
            96 if data[32..64] == data[64..96] => (&data[..32], &data[32..64]),
            n => {
                return Err(KeyError::Malformed {
                    reason: format!("private key data is {n} bytes, expected 64"),
                });
            }
        };
        let mut seed_arr = [0u8; 32];
        seed_arr.copy_from_slice(seed);
        let key = Keypair::from_seed(&seed_arr);
        seed_arr.fill(0);
        if key.public().to_bytes().as_slice() != public {
            return Err(KeyError::Malformed {
                reason: "the public key stored with the private key does not match it".into(),
            });
        }
        Ok(key)
    }

    /// PEM PKCS#8 (`pem-pkcs8-cleartext`), byte for byte as Kubo exports it.
    /// This is secret material.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        // PKCS#8 v1 without the public key, as Go's x509.MarshalPKCS8PrivateKey.
        let bytes = KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        };
        let pem = bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Pem {
                reason: e.to_string(),
            })?;
        Ok(pem.as_str().to_owned())
    }

    /// Read a PEM `PRIVATE KEY` block (PKCS#8 v1 or v2) holding an ed25519 key.
    pub fn from_pem(pem: &str) -> Result<Keypair, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Pem {
            reason: e.to_string(),
        })?;
        Ok(Keypair { signing })
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("name", &self.ipns_name())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// The key with these 32 bytes, if they are a valid ed25519 point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(PublicKey)
            .map_err(|e| KeyError::Malformed {
                reason: e.to_string(),
            })
    }

    /// The raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The libp2p `PublicKey` protobuf (36 bytes for ed25519).
    pub fn to_libp2p_protobuf(&self) -> Vec<u8> {
        protobuf_encode(&self.0.to_bytes())
    }

    /// Read a libp2p `PublicKey` protobuf.
    pub fn from_libp2p_protobuf(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let data = protobuf_decode(bytes, "PublicKey")?;
        let arr: [u8; 32] = data.try_into().map_err(|_| KeyError::Malformed {
            reason: format!("public key data is {} bytes, expected 32", data.len()),
        })?;
        PublicKey::from_bytes(&arr)
    }

    /// The peer ID multihash: identity multihash of the protobuf.
    pub fn peer_id_multihash(&self) -> multihash::Multihash<64> {
        // 36 bytes always fit in 64.
        multihash::Multihash::wrap(IDENTITY, &self.to_libp2p_protobuf())
            .unwrap_or_else(|_| unreachable!("a 36-byte identity digest fits in 64 bytes"))
    }

    /// The CIDv1 (`libp2p-key`) that names this key.
    pub fn to_cid(&self) -> Cid {
        Cid::new_v1(Codec::Libp2pKey.code(), self.peer_id_multihash())
    }

    /// The IPNS name, CIDv1 `libp2p-key` in base36 (`k51…`), as Kubo prints it.
    pub fn ipns_name(&self) -> String {
        let bytes = self.to_cid().to_bytes();
        multibase::encode(multibase::Base::Base36Lower, bytes)
    }

    /// The base58btc peer ID (`12D3KooW…`).
    pub fn peer_id(&self) -> String {
        multibase::Base::Base58Btc.encode(self.peer_id_multihash().to_bytes())
    }

    /// Parse an IPNS key name: a `libp2p-key` CID in any multibase (`k51…`,
    /// `bafz…`) or a base58btc peer ID (`12D3KooW…`); a leading `/ipns/` is
    /// allowed. Only ed25519 keys, whose public key is inlined, are accepted.
    pub fn from_ipns_name(input: &str) -> Result<PublicKey, KeyError> {
        let name_err = |reason: String| KeyError::Name {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        let s = s.strip_prefix("/ipns/").unwrap_or(s);
        let mh_bytes = if s.starts_with("12D3Koo") || s.starts_with("Qm") || s.starts_with('1') {
            multibase::Base::Base58Btc
                .decode(s)
                .map_err(|e| name_err(format!("bad base58 peer ID: {e}")))?
        } else {
            let cid = Cid::try_from(s).map_err(|e| name_err(e.to_string()))?;
            if cid.codec() != Codec::Libp2pKey.code() {
                return Err(name_err(format!(
                    "CID codec is 0x{:x}, expected libp2p-key (0x72)",
                    cid.codec()
                )));
            }
            cid.hash().to_bytes()
        };
        let mh = multihash::Multihash::<64>::from_bytes(&mh_bytes)
            .map_err(|e| name_err(format!("bad multihash: {e}")))?;
        if mh.code() != IDENTITY {
            return Err(name_err(
                "the key is hashed (an RSA key?), not inlined; ipkg supports only ed25519 keys"
                    .into(),
            ));
        }
        PublicKey::from_libp2p_protobuf(mh.digest()).map_err(|e| name_err(e.to_string()))
    }

    /// Parse a name that must already be in its canonical `k51…` spelling, as
    /// names are inside signed documents (so each document has one encoding).
    pub fn from_canonical_name(input: &str) -> Result<PublicKey, KeyError> {
        let key = PublicKey::from_ipns_name(input)?;
        if key.ipns_name() != input {
            return Err(KeyError::Name {
                input: input.to_owned(),
                reason: format!("write it in its canonical form `{}`", key.ipns_name()),
            });
        }
        Ok(key)
    }

    /// Check a signature over `message` (strict RFC 8032 verification).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let bad = || KeyError::BadSignature {
            signer: self.ipns_name(),
        };
        let sig: [u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| bad())?;
        self.0
            .verify_strict(message, &Signature::from_bytes(&sig))
            .map_err(|_| bad())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ipns_name())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.ipns_name())
    }
}

/// Normalise any accepted spelling of a key name to its `k51…` form.
pub fn normalize_name(input: &str) -> Result<String, KeyError> {
    PublicKey::from_ipns_name(input).map(|k| k.ipns_name())
}

/// `{ Type: Ed25519, Data: data }` in protobuf wire format.
fn protobuf_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    out.push(0x08); // field 1, varint
    out.push(KEY_TYPE_ED25519 as u8);
    out.push(0x12); // field 2, length-delimited
    out.push(data.len() as u8); // 32 or 64: one varint byte
    out.extend_from_slice(data);
    out
}

/// Read `{ Type, Data }` and return `Data` if `Type` is ed25519.
fn protobuf_decode<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8], KeyError> {
    let err = |reason: &str| KeyError::Protobuf {
        what,
        reason: reason.to_owned(),
    };
    let mut pos = 0;
    let mut key_type = None;
    let mut data = None;
    while pos < bytes.len() {
        let (tag, n) = read_varint(&bytes[pos..]).ok_or_else(|| err("truncated field tag"))?;
        pos += n;
        match tag {
            0x08 => {
                let (v, n) = read_varint(&bytes[pos..]).ok_or_else(|| err("truncated key type"))?;
                pos += n;
                if key_type.replace(v).is_some() {
                    return Err(err("key type given twice"));
                }
            }
            0x12 => {
                let (len, n) = read_varint(&bytes[pos..]).ok_or_else(|| err("truncated length"))?;
                pos += n;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|len| pos.checked_add(len))
                    .filter(|&end| end <= bytes.len())
                    .ok_or_else(|| err("data runs past the end"))?;
                if data.replace(&bytes[pos..end]).is_some() {
                    return Err(err("key data given twice"));
                }
                pos = end;
            }
            _ => return Err(err(&format!("unexpected field tag 0x{tag:x}"))),
        }
    }
    match key_type {
        None => Err(err("no key type")),
        Some(KEY_TYPE_ED25519) => data.ok_or_else(|| err("no key data")),
        Some(t) => Err(KeyError::UnsupportedKeyType {
            what,
            key_type: usize::try_from(t)
                .ok()
                .and_then(|i| KEY_TYPE_NAMES.get(i))
                .map_or_else(|| t.to_string(), |s| (*s).to_owned()),
        }),
    }
}

fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_round_trip() {
        let k = Keypair::from_seed(&[7u8; 32]);
        let pb = k.to_libp2p_protobuf();
        assert_eq!(&pb[..4], &[0x08, 0x01, 0x12, 0x40]);
        let k2 = Keypair::from_libp2p_protobuf(&pb).unwrap();
        assert_eq!(k2.ipns_name(), k.ipns_name());
        let pubpb = k.public().to_libp2p_protobuf();
        assert_eq!(pubpb.len(), 36);
        assert_eq!(PublicKey::from_libp2p_protobuf(&pubpb).unwrap(), k.public());
    }

    #[test]
    fn names_parse_in_every_spelling() {
        let k = Keypair::from_seed(&[9u8; 32]).public();
        let name = k.ipns_name();
        assert!(name.starts_with("k51"), "{name}");
        let peer = k.peer_id();
        assert!(peer.starts_with("12D3KooW"), "{peer}");
        for s in [
            name.clone(),
            peer,
            format!("/ipns/{name}"),
            k.to_cid().to_string(),
        ] {
            assert_eq!(PublicKey::from_ipns_name(&s).unwrap(), k, "{s}");
        }
        assert!(PublicKey::from_ipns_name("bafkqaaa").is_err());
        assert!(PublicKey::from_ipns_name("nonsense").is_err());
    }

    #[test]
    fn pem_round_trip_and_debug_hides_secret() {
        let k = Keypair::from_seed(&[3u8; 32]);
        let pem = k.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert_eq!(Keypair::from_pem(&pem).unwrap().ipns_name(), k.ipns_name());
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&k.ipns_name()));
        assert!(!dbg.contains("0303"));
    }

    #[test]
    fn sign_verify() {
        let k = Keypair::from_seed(&[1u8; 32]);
        let sig = k.sign(b"hello");
        k.public().verify(b"hello", &sig).unwrap();
        let err = k.public().verify(b"hellp", &sig).unwrap_err();
        assert!(err.to_string().contains("bad signature by k51"), "{err}");
        assert!(k.public().verify(b"hello", &sig[..10]).is_err());
    }

    #[test]
    fn rejects_other_key_types_and_mismatches() {
        // RSA-typed protobuf.
        let err = Keypair::from_libp2p_protobuf(&[0x08, 0x00, 0x12, 0x01, 0x00]).unwrap_err();
        assert!(err.to_string().contains("RSA"), "{err}");
        let k = Keypair::from_seed(&[5u8; 32]);
        let mut pb = k.to_libp2p_protobuf();
        let last = pb.len() - 1;
        pb[last] ^= 1;
        assert!(Keypair::from_libp2p_protobuf(&pb).is_err());
        assert!(Keypair::from_libp2p_protobuf(&[0x08]).is_err());
        assert!(Keypair::from_libp2p_protobuf(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}

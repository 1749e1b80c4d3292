//! IPNS record codec against the shared vectors (`../shared/vectors/ipns`, the
//! records of the ipfs/specs conformance suite), plus round trips, tampering,
//! size and expiry, and a property test that nothing panics on arbitrary bytes.

mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipkg::names::ipns::{self, IpnsError, MAX_RECORD_SIZE, Record};
use ipkg::trust::keys::Keypair;
use proptest::prelude::*;

fn vectors_dir() -> PathBuf {
    support::shared_vectors("ipns")
}

/// Each vector's case suffix and what verification must give: `Ok(value)` or
/// `Err(check)` on the error. Values from the vectors README.
#[allow(clippy::type_complexity)]
const CASES: &[(&str, Result<&str, fn(&IpnsError) -> bool>)] = &[
    ("_v1", Err(|e| matches!(e, IpnsError::V1Only { .. }))),
    ("_v1-v2", Ok("/ipfs/bafkqaddwgevxmmraojswg33smq")),
    (
        "_v1-v2-broken-v1-value",
        Err(|e| matches!(e, IpnsError::V1Mismatch { field: "value", .. })),
    ),
    // The V1 signature is never checked.
    (
        "_v1-v2-broken-signature-v1",
        Ok("/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi"),
    ),
    (
        "_v1-v2-broken-signature-v2",
        Err(|e| matches!(e, IpnsError::BadSignatureV2 { .. })),
    ),
    ("_v2", Ok("/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi")),
];

/// (name, bytes) of the vector whose case is `case`.
fn vector(case: &str) -> (String, Vec<u8>) {
    let suffix = format!("{case}.ipns-record");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if let Some(name) = file.strip_suffix(&suffix)
            && !name.contains('_')
        {
            found.push((
                name.to_owned(),
                std::fs::read(vectors_dir().join(&file)).unwrap(),
            ));
        }
    }
    assert_eq!(found.len(), 1, "exactly one vector for {case}");
    found.pop().unwrap()
}

#[test]
fn every_vector_verifies_or_fails_as_documented() {
    let files = std::fs::read_dir(vectors_dir()).unwrap().count();
    assert_eq!(files, CASES.len(), "a vector without a case here");
    for (case, want) in CASES {
        let (name, bytes) = vector(case);
        let got = ipns::verify(&name, &bytes, SystemTime::now());
        match (want, got) {
            (Ok(value), Ok(v)) => {
                assert_eq!(v.value, *value, "{case}");
                assert_eq!(v.sequence, 0, "{case}");
                assert_eq!(v.ttl, Duration::from_secs(30 * 60), "{case}");
                assert_eq!(
                    ipns::format_rfc3339(v.validity).as_deref(),
                    Some("2123-08-14T12:17:03.694052Z"),
                    "{case}"
                );
            }
            (Err(check), Err(e)) => {
                assert!(check(&e), "{case}: wrong error {e:?}");
                assert!(e.to_string().contains(&name), "{case}: {e}");
            }
            (_, got) => panic!("{case}: got {got:?}"),
        }
    }
}

#[test]
fn vectors_decode_and_reencode_byte_for_byte() {
    for (case, _) in CASES {
        let (_, bytes) = vector(case);
        let rec = Record::decode(&bytes).unwrap();
        assert_eq!(rec.to_bytes(), bytes, "{case}");
    }
}

#[test]
fn create_matches_kubo_layout_for_the_v1_v2_vector() {
    // Same inputs as the `_v1-v2` vector (apart from the key): the signed data
    // must be byte-identical, since DAG-CBOR is canonical.
    let (_, bytes) = vector("_v1-v2");
    let kubo = Record::decode(&bytes).unwrap();
    let eol = ipns::parse_rfc3339("2123-08-14T12:17:03.694052Z").unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_692_000_000);
    let ours = Record::create_at(
        &Keypair::from_seed(&[1; 32]),
        "/ipfs/bafkqaddwgevxmmraojswg33smq",
        0,
        eol.duration_since(now).unwrap(),
        Duration::from_secs(30 * 60),
        now,
    )
    .unwrap();
    assert_eq!(ours.data, kubo.data);
    assert_eq!(ours.value, kubo.value);
    assert_eq!(ours.validity, kubo.validity);
    assert_eq!(ours.validity_type, kubo.validity_type);
    assert_eq!(ours.sequence, kubo.sequence);
    assert_eq!(ours.ttl, kubo.ttl);
    assert_eq!(ours.pub_key, None);
    assert_eq!(ours.to_bytes().len(), bytes.len());
}

fn fresh() -> (Keypair, Vec<u8>, SystemTime) {
    let key = Keypair::from_seed(&[9; 32]);
    let now = SystemTime::now();
    let rec = Record::create_at(
        &key,
        "/ipfs/bafkqaaa",
        42,
        Duration::from_secs(3600),
        Duration::from_secs(300),
        now,
    )
    .unwrap();
    (key, rec.to_bytes(), now)
}

#[test]
fn round_trip_through_bytes() {
    let (key, bytes, now) = fresh();
    let v = ipns::verify(&key.ipns_name(), &bytes, now).unwrap();
    assert_eq!(v.value, "/ipfs/bafkqaaa");
    assert_eq!(v.sequence, 42);
    assert_eq!(v.ttl, Duration::from_secs(300));
    assert!(v.validity > now);
    // `/ipns/` prefix and the CIDv1 base32 spelling are accepted too.
    let cid32 = key.public().to_cid().to_string();
    ipns::verify(&format!("/ipns/{}", key.ipns_name()), &bytes, now).unwrap();
    ipns::verify(&cid32, &bytes, now).unwrap();
}

#[test]
fn tampering_is_detected() {
    let (key, bytes, now) = fresh();
    let name = key.ipns_name();
    let rec = Record::decode(&bytes).unwrap();

    // A flipped byte in the V1 value.
    let mut r = rec.clone();
    r.value.as_mut().unwrap()[7] ^= 1;
    let e = ipns::verify(&name, &r.to_bytes(), now).unwrap_err();
    assert!(
        matches!(e, IpnsError::V1Mismatch { field: "value", .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("value in the V1 field differs"),
        "{e}"
    );

    // Every byte of the signed data and of signatureV2.
    for field in [8, 9] {
        let len = if field == 8 {
            rec.signature_v2.as_ref().unwrap().len()
        } else {
            rec.data.as_ref().unwrap().len()
        };
        for i in 0..len {
            let mut r = rec.clone();
            let target = if field == 8 {
                r.signature_v2.as_mut().unwrap()
            } else {
                r.data.as_mut().unwrap()
            };
            target[i] ^= 0x01;
            let e = ipns::verify(&name, &r.to_bytes(), now).unwrap_err();
            assert!(
                matches!(e, IpnsError::BadSignatureV2 { .. }),
                "field {field} byte {i}: {e}"
            );
        }
    }

    // The other V1 fields.
    let mut r = rec.clone();
    r.sequence = Some(43);
    assert!(matches!(
        ipns::verify(&name, &r.to_bytes(), now),
        Err(IpnsError::V1Mismatch {
            field: "sequence",
            ..
        })
    ));
    let mut r = rec.clone();
    r.ttl = Some(1);
    assert!(matches!(
        ipns::verify(&name, &r.to_bytes(), now),
        Err(IpnsError::V1Mismatch { field: "ttl", .. })
    ));
    let mut r = rec.clone();
    r.validity = Some(b"2999-01-01T00:00:00Z".to_vec());
    assert!(matches!(
        ipns::verify(&name, &r.to_bytes(), now),
        Err(IpnsError::V1Mismatch {
            field: "validity",
            ..
        })
    ));

    // Another key's name.
    let other = Keypair::from_seed(&[10; 32]);
    let e = ipns::verify(&other.ipns_name(), &bytes, now).unwrap_err();
    assert!(matches!(e, IpnsError::BadSignatureV2 { .. }), "{e}");
    assert!(e.to_string().contains("signatureV2 does not verify"), "{e}");

    // An embedded public key must be the name's; the right one is accepted.
    let mut r = rec.clone();
    r.pub_key = Some(other.public().to_libp2p_protobuf());
    assert!(matches!(
        ipns::verify(&name, &r.to_bytes(), now),
        Err(IpnsError::KeyMismatch { .. })
    ));
    r.pub_key = Some(key.public().to_libp2p_protobuf());
    ipns::verify(&name, &r.to_bytes(), now).unwrap();

    // Stripped to V1 only.
    let mut r = rec.clone();
    r.signature_v2 = None;
    r.data = None;
    assert!(matches!(
        ipns::verify(&name, &r.to_bytes(), now),
        Err(IpnsError::V1Only { .. })
    ));

    // V2 only (no V1 fields) is fine.
    let r = Record {
        signature_v2: rec.signature_v2.clone(),
        data: rec.data.clone(),
        ..Record::default()
    };
    ipns::verify(&name, &r.to_bytes(), now).unwrap();
}

#[test]
fn expired_records_are_refused() {
    let (key, bytes, now) = fresh();
    let later = now + Duration::from_secs(3601);
    let e = ipns::verify(&key.ipns_name(), &bytes, later).unwrap_err();
    assert!(matches!(e, IpnsError::Expired { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("has expired (valid until "), "{msg}");
    assert!(msg.contains(&key.ipns_name()), "{msg}");
}

#[test]
fn oversized_records_are_refused() {
    let key = Keypair::from_seed(&[9; 32]);
    let now = SystemTime::now();
    // A value just big enough to push the record over 10 KiB.
    let value = format!("/ipfs/bafkqaaa/{}", "a".repeat(MAX_RECORD_SIZE / 2));
    let rec = Record::create_at(
        &key,
        &value,
        1,
        Duration::from_secs(60),
        Duration::ZERO,
        now,
    )
    .unwrap();
    let bytes = rec.to_bytes();
    assert!(bytes.len() > MAX_RECORD_SIZE);
    assert!(matches!(
        ipns::verify(&key.ipns_name(), &bytes, now),
        Err(IpnsError::Malformed {
            source: ipns::DecodeError::TooLarge { .. },
            ..
        })
    ));
    assert!(Record::decode(&bytes).is_err());
}

#[test]
fn bad_names_are_refused() {
    let (_, bytes, now) = fresh();
    for name in ["", "k51nope", "/ipfs/bafkqaaa", "bafkqaaa"] {
        assert!(
            matches!(ipns::verify(name, &bytes, now), Err(IpnsError::Name { .. })),
            "{name}"
        );
    }
}

proptest! {
    #[test]
    fn decode_and_verify_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Record::decode(&bytes);
        let _ = ipns::verify(
            "k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w",
            &bytes,
            SystemTime::now(),
        );
    }

    #[test]
    fn mutated_vectors_never_panic(
        case in 0..CASES.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let (name, mut bytes) = vector(CASES[case].0);
        for (at, b) in edits {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        let _ = Record::decode(&bytes);
        let _ = ipns::verify(&name, &bytes, SystemTime::now());
    }

    #[test]
    fn create_then_verify(seq in 0u64..=i64::MAX as u64, secs in 1u64..1_000_000_000, ttl in 0u64..1_000_000) {
        let key = Keypair::from_seed(&[3; 32]);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let rec = Record::create_at(&key, "/ipfs/bafkqaaa", seq, Duration::new(secs, 123), Duration::from_millis(ttl), now).unwrap();
        let v = ipns::verify(&key.ipns_name(), &rec.to_bytes(), now).unwrap();
        prop_assert_eq!(v.sequence, seq);
        prop_assert_eq!(v.ttl, Duration::from_millis(ttl));
        prop_assert_eq!(v.validity, now + Duration::new(secs, 123));
    }
}

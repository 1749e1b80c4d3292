//! Every tampering with a signed document is refused, with a message that
//! names the document and says why.

use ipkg::content::cid::{Codec, cid_of};
use ipkg::trust::index::{
    PackageInfo, RegistryIndex, Seen, SignedIndex, UpdateCheck, check_update,
};
use ipkg::trust::keys::Keypair;
use ipkg::trust::release::{Release, SignedRelease};
use ipkg::trust::succession::check_publisher;

fn alice() -> Keypair {
    Keypair::from_seed(&[0xa1; 32])
}

fn registry_key() -> Keypair {
    Keypair::from_seed(&[0x5e; 32])
}

fn release(key: &Keypair) -> SignedRelease {
    SignedRelease::sign(
        Release {
            name: "xmr".into(),
            version: semver::Version::new(1, 2, 3),
            package: cid_of(1, Codec::DagPb, b"xmr tree"),
            target: "x86_64-linux".into(),
            publisher: key.ipns_name(),
            previous: Some(cid_of(1, Codec::DagCbor, b"older release")),
            time: 1_767_225_600,
        },
        key,
    )
    .unwrap()
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn every_single_bit_flip_in_a_release_is_refused() {
    let bytes = release(&alice()).encode().to_vec();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut t = bytes.clone();
            t[i] ^= bit;
            assert!(
                SignedRelease::decode(&t).is_err(),
                "flipping bit {bit:#x} of byte {i} was accepted"
            );
        }
    }
}

#[test]
fn changed_version_is_a_bad_signature_naming_the_release() {
    let bytes = release(&alice()).encode().to_vec();
    let mut t = bytes.clone();
    let at = find(&t, b"1.2.3");
    t[at + 4] = b'4';
    let err = SignedRelease::decode(&t).unwrap_err().to_string();
    let cid = cid_of(1, Codec::DagCbor, &t);
    assert_eq!(err, format!("bad signature on release xmr 1.2.4 ({cid})"));
}

#[test]
fn changed_signature_byte_is_refused() {
    let signed = release(&alice());
    let mut t = signed.encode().to_vec();
    let at = find(&t, signed.signature());
    t[at + 10] ^= 0x20;
    let err = SignedRelease::decode(&t).unwrap_err().to_string();
    assert!(
        err.starts_with("bad signature on release xmr 1.2.3 (bafyrei"),
        "{err}"
    );
}

#[test]
fn publisher_swapped_in_the_bytes_is_refused() {
    // Mallory takes Alice's statement and writes her own name as publisher.
    let mallory = Keypair::from_seed(&[0x66; 32]);
    let signed = release(&alice());
    let mut t = signed.encode().to_vec();
    let at = find(&t, alice().ipns_name().as_bytes());
    let m = mallory.ipns_name();
    t[at..at + m.len()].copy_from_slice(m.as_bytes());
    let err = SignedRelease::decode(&t).unwrap_err().to_string();
    assert!(
        err.starts_with("bad signature on release xmr 1.2.3"),
        "{err}"
    );
}

#[test]
fn release_by_another_key_than_the_pinned_publisher() {
    let mallory = Keypair::from_seed(&[0x66; 32]);
    let signed = release(&mallory);
    let err = check_publisher(Some(&alice().ipns_name()), &signed, &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "release xmr 1.2.3 signed by {} but the package publisher is {}",
            mallory.ipns_name(),
            alice().ipns_name()
        )
    );
    // And the registry refuses it for a package Alice owns.
    let mut index = RegistryIndex::new(&registry_key().ipns_name()).unwrap();
    index
        .add_release(&release(&alice()), &PackageInfo::default())
        .unwrap();
    let err = index
        .add_release(&signed, &PackageInfo::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("but the package publisher is"), "{err}");
}

fn published_index(sequences: u64) -> Vec<SignedIndex> {
    let key = registry_key();
    let mut index = RegistryIndex::new(&key.ipns_name()).unwrap();
    index
        .add_release(&release(&alice()), &PackageInfo::default())
        .unwrap();
    (0..sequences)
        .map(|i| {
            let now = 1_767_225_600 + i as i64 * 3600;
            index.sign(&key, now, now + 7 * 86_400).unwrap().root
        })
        .collect()
}

#[test]
fn every_single_bit_flip_in_an_index_is_refused() {
    let root = &published_index(1)[0];
    let bytes = root.encode();
    for i in 0..bytes.len() {
        let mut t = bytes.to_vec();
        t[i] ^= 0x01;
        assert!(
            SignedIndex::decode(&t).is_err(),
            "flipping byte {i} was accepted"
        );
    }
}

#[test]
fn changed_index_sequence_is_a_bad_signature() {
    let root = &published_index(1)[0];
    let mut t = root.encode().to_vec();
    // "sequence" then the integer 1 (0x01); make it 23 (0x17).
    let at = find(&t, b"sequence") + b"sequence".len();
    assert_eq!(t[at], 0x01);
    t[at] = 0x17;
    let err = SignedIndex::decode(&t).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "bad signature on registry index {} sequence 23 (bafyrei",
            registry_key().ipns_name()
        )),
        "{err}"
    );
    let mut t = root.encode().to_vec();
    let at = find(&t, root.signature());
    t[at] ^= 0xff;
    let err = SignedIndex::decode(&t).unwrap_err().to_string();
    assert!(err.contains("bad signature on registry index"), "{err}");
}

#[test]
fn index_rollback_and_expiry_are_refused() {
    let roots = published_index(3);
    let registry = registry_key().ipns_name();
    let check = UpdateCheck {
        registry: &registry,
        seen: Some(Seen {
            sequence: 3,
            cid: roots[2].cid(),
        }),
        now: 1_767_225_600 + 4 * 3600,
        allow_expired: false,
        successions: &[],
    };
    let err = check_update(&check, &roots[1]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("registry index {registry} went back from sequence 3 to 2: refusing a rollback")
    );
    let expired = UpdateCheck {
        now: 1_767_225_600 + 30 * 86_400,
        ..check
    };
    let err = check_update(&expired, &roots[2]).unwrap_err().to_string();
    assert!(
        err.contains("sequence 3 expired at 2026-01-08T02:00:00Z (now 2026-01-31T00:00:00Z)"),
        "{err}"
    );
    // A different document with the same sequence is a fork.
    let fork = UpdateCheck {
        seen: Some(Seen {
            sequence: 3,
            cid: roots[1].cid(),
        }),
        ..check
    };
    let err = check_update(&fork, &roots[2]).unwrap_err().to_string();
    assert!(
        err.contains("two different documents with sequence 3"),
        "{err}"
    );
}

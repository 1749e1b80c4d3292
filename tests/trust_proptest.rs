//! Property tests: DAG-CBOR round trips, and no decoder panics on any input.

use std::path::Path;

use ipkg::content::cid::{Codec, cid_of};
use ipkg::trust::index::{PackageDoc, ReleaseEntry, SignedIndex};
use ipkg::trust::keys::{Keypair, PublicKey};
use ipkg::trust::manifest::{KNOWN_TARGETS, Manifest};
use ipkg::trust::release::{Release, SignedRelease};
use ipkg::trust::succession::KeySuccession;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = semver::Version> {
    (
        0u64..1000,
        0u64..1000,
        0u64..1000,
        proptest::option::of("[a-z]{1,5}(\\.(0|[1-9][0-9]{0,2}))?"),
    )
        .prop_map(|(a, b, c, pre)| {
            let mut v = semver::Version::new(a, b, c);
            if let Some(p) = pre {
                v.pre = semver::Prerelease::new(&p).unwrap();
            }
            v
        })
}

fn release(seed: [u8; 32]) -> impl Strategy<Value = (Keypair, Release)> {
    (
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        version(),
        any::<Vec<u8>>(),
        proptest::sample::select(KNOWN_TARGETS),
        proptest::option::of(any::<Vec<u8>>()),
        any::<i64>(),
    )
        .prop_map(move |(name, version, tree, target, prev, time)| {
            let key = Keypair::from_seed(&seed);
            let release = Release {
                name,
                version,
                package: cid_of(1, Codec::DagPb, &tree),
                target: target.to_string(),
                publisher: key.ipns_name(),
                previous: prev.map(|p| cid_of(1, Codec::DagCbor, &p)),
                time,
            };
            (key, release)
        })
}

proptest! {
    #[test]
    fn release_round_trip((key, r) in release([7; 32])) {
        let signed = SignedRelease::sign(r.clone(), &key).unwrap();
        let back = SignedRelease::decode(signed.encode()).unwrap();
        prop_assert_eq!(back.release(), &r);
        prop_assert_eq!(back.cid(), cid_of(1, Codec::DagCbor, signed.encode()));
    }

    #[test]
    fn package_doc_round_trip(
        versions in proptest::collection::btree_set(version(), 0..8),
        yanked in any::<bool>(),
        desc in ".{0,40}",
    ) {
        let key = Keypair::from_seed(&[3; 32]);
        let doc = PackageDoc {
            name: "pkg".into(),
            publisher: key.ipns_name(),
            description: desc,
            commands: vec!["pkg".into()],
            releases: versions
                .into_iter()
                .map(|v| ReleaseEntry {
                    package: cid_of(1, Codec::DagPb, v.to_string().as_bytes()),
                    release: cid_of(1, Codec::DagCbor, v.to_string().as_bytes()),
                    version: v,
                    target: "any".into(),
                    yanked,
                })
                .collect(),
            successions: vec![],
        };
        let bytes = doc.encode().unwrap();
        prop_assert_eq!(PackageDoc::decode(&bytes).unwrap(), doc);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedRelease::decode(&bytes);
        let _ = SignedIndex::decode(&bytes);
        let _ = PackageDoc::decode(&bytes);
        let _ = KeySuccession::decode(&bytes);
        let _ = Keypair::from_libp2p_protobuf(&bytes);
        let _ = PublicKey::from_libp2p_protobuf(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Keypair::from_pem(s);
            let _ = PublicKey::from_ipns_name(s);
            let _ = Manifest::parse(s, Path::new("ipkg.toml"));
        }
    }

    #[test]
    fn mutated_release_never_panics_and_never_verifies(
        (key, r) in release([9; 32]),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let signed = SignedRelease::sign(r, &key).unwrap();
        let mut bytes = signed.encode().to_vec();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if bytes != signed.encode() {
            prop_assert!(SignedRelease::decode(&bytes).is_err());
        }
    }

    #[test]
    fn manifest_like_text_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[package]".to_string()),
                Just("[commands]".to_string()),
                Just("[hooks]".to_string()),
                "[a-z-]{1,12} = \"[a-z0-9./-]{0,12}\"",
                "[a-z-]{1,12} = [0-9]{1,4}",
                "[a-z-]{1,12} = \\[\"[a-z0-9_-]{0,12}\"\\]",
                ".{0,20}",
            ],
            0..12,
        )
    ) {
        let _ = Manifest::parse(&lines.join("\n"), Path::new("ipkg.toml"));
    }
}

//! The examples in `spec/manifest.md` are what the code does.
//!
//! Every ```` ```toml ```` block is parsed as a manifest; blocks preceded by an
//! `<!-- invalid -->` line must be rejected, all others accepted. The key,
//! release, index and succession vectors printed in the spec are recomputed.

use std::path::Path;

use ipkg::content::cid::{Codec, cid_of};
use ipkg::trust::index::{PackageInfo, RegistryIndex};
use ipkg::trust::keys::Keypair;
use ipkg::trust::manifest::Manifest;
use ipkg::trust::release::{Release, SignedRelease};
use ipkg::trust::succession::KeySuccession;

const SPEC: &str = include_str!("../spec/manifest.md");

/// (line number, invalid?, text) of each toml block.
fn toml_blocks() -> Vec<(usize, bool, String)> {
    let mut blocks = Vec::new();
    let lines: Vec<&str> = SPEC.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```toml" {
            let invalid = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim() == "<!-- invalid -->");
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim() != "```" {
                end += 1;
            }
            blocks.push((start, invalid, lines[start..end].join("\n")));
            i = end;
        }
        i += 1;
    }
    blocks
}

#[test]
fn every_toml_example_parses_or_fails_as_marked() {
    let blocks = toml_blocks();
    assert!(
        blocks.len() >= 8,
        "expected the spec's examples, found {}",
        blocks.len()
    );
    assert!(blocks.iter().any(|b| b.1) && blocks.iter().any(|b| !b.1));
    for (line, invalid, text) in blocks {
        let result = Manifest::parse(&text, Path::new("ipkg.toml"));
        match (invalid, result) {
            (false, Err(e)) => panic!("spec/manifest.md:{line}: valid example rejected: {e}"),
            (true, Ok(_)) => panic!("spec/manifest.md:{line}: invalid example accepted"),
            (true, Err(e)) => {
                let msg = e.to_string();
                assert!(msg.starts_with("ipkg.toml"), "{msg}");
                assert!(
                    e.key().is_some(),
                    "spec/manifest.md:{line}: {msg} names no key"
                );
            }
            (false, Ok(_)) => {}
        }
    }
}

#[test]
fn spec_quotes_the_unknown_field_message() {
    let text = "[package]\nname = \"xmr\"\nversion = \"1.2.3\"\ndescripton = \"typo\"\ntargets = [\"any\"]\n";
    let e = Manifest::parse(text, Path::new("ipkg.toml"))
        .unwrap_err()
        .to_string();
    assert!(SPEC.contains(&e), "spec should quote `{e}`");
}

#[test]
fn spec_vectors_match() {
    let publisher = Keypair::from_seed(&[1; 32]);
    let registry = Keypair::from_seed(&[2; 32]);
    let next = Keypair::from_seed(&[3; 32]);
    for s in [
        publisher.ipns_name(),
        publisher.public().peer_id(),
        publisher
            .to_pem()
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_owned(),
        registry.ipns_name(),
        next.ipns_name(),
    ] {
        assert!(SPEC.contains(&s), "spec lacks {s}");
    }
    let pb: String = publisher
        .public()
        .to_libp2p_protobuf()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(SPEC.contains(&pb));

    let release = SignedRelease::sign(
        Release {
            name: "xmr".into(),
            version: semver::Version::new(1, 2, 3),
            package: cid_of(1, Codec::DagPb, b"xmr-1.2.3"),
            target: "x86_64-linux".into(),
            publisher: publisher.ipns_name(),
            previous: None,
            time: 1_767_225_600,
        },
        &publisher,
    )
    .unwrap();
    assert!(SPEC.contains(&release.cid().to_string()));
    assert!(SPEC.contains(&format!("{} bytes", release.encode().len())));

    let mut index = RegistryIndex::new(&registry.ipns_name()).unwrap();
    index
        .add_release(
            &release,
            &PackageInfo {
                description: "Monero miner, statically linked".into(),
                commands: vec!["xmr".into(), "xmr-bench".into()],
            },
        )
        .unwrap();
    let published = index.sign(&registry, 1_767_225_900, 1_767_830_700).unwrap();
    assert!(SPEC.contains(&published.documents[0].cid.to_string()));

    let succession = KeySuccession::sign(&publisher, &next.ipns_name(), 1_767_312_000).unwrap();
    // ed25519 is deterministic: the signatures in the spec are reproducible.
    for sig in [
        release.signature(),
        published.root.signature(),
        succession.signature(),
    ] {
        let b64 = base64_nopad(sig);
        assert!(SPEC.contains(&b64), "spec lacks signature {b64}");
    }
}

/// Standard base64 without padding, as Kubo's dag-json shows bytes.
fn base64_nopad(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

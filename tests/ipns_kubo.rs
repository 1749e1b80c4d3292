//! IPNS records between ipkg and a real Kubo, both ways, offline on loopback.
//!
//! Kubo 0.42 notes, found while writing these tests:
//! - `routing get` (and `name get`) refuse to run on an `--offline` daemon
//!   ("this action must be run in online mode"), so Kubo's records are fetched
//!   from the daemon's own trustless gateway (`?format=ipns-record`), which
//!   serves them offline from the local datastore.
//! - `routing put --allow-offline` exits 0 even for a record whose signature
//!   does not verify (it just does not store it); `name put` validates and
//!   fails. Rejection is therefore checked with `name put` and by resolving.
//!
//! Needs `ipfs` on PATH: without it the tests print `skipped: ipfs not on PATH`
//! and pass, except under CI (`CI` set), where they fail.

// Shared with the other integration tests; this file uses only part of it.
#[allow(unused_imports)]
mod support;

use std::time::{Duration, SystemTime};

use ipkg::names::ipns::{self, Record};
use ipkg::trust::keys::Keypair;
use support::{Kubo, http, kubo_available, path_str};

/// Identity CIDs: they resolve without any block in the repo.
const VALUE_A: &str = "/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi";
const VALUE_B: &str = "/ipfs/bafkqaddwgevxmmraojswg33smq";

/// A record made by ipkg for a key Kubo has never seen is accepted by
/// `routing put` (the validator needs only the name) and resolves to our value;
/// a newer one replaces it; a tampered one is refused.
#[test]
fn kubo_accepts_records_made_by_ipkg() {
    if !kubo_available() {
        return;
    }
    let kubo = Kubo::start_daemon();
    let key = Keypair::generate().unwrap();
    let name = key.ipns_name();
    let put = |file: &str, bytes: &[u8]| {
        let path = kubo.scratch().join(file);
        std::fs::write(&path, bytes).unwrap();
        kubo.ipfs([
            "routing",
            "put",
            "--allow-offline",
            &format!("/ipns/{name}"),
            path_str(&path),
        ])
    };

    let day = Duration::from_secs(86_400);
    let rec = Record::create(&key, VALUE_A, 1, day, Duration::from_secs(60)).unwrap();
    put("rec1", &rec.to_bytes()).success();
    let out = kubo.ipfs(["name", "resolve", "--nocache", &name]);
    assert_eq!(out.success().stdout_trimmed(), VALUE_A);

    // Kubo's own verifier agrees, field by field.
    let out = kubo.ipfs_stdin(
        ["name", "inspect", "--enc=json", "--verify", &name],
        &rec.to_bytes(),
    );
    let json: serde_json::Value = serde_json::from_str(out.success().stdout_trimmed()).unwrap();
    assert_eq!(json["Validation"]["Valid"], true, "{json}");
    assert_eq!(json["Entry"]["Value"], VALUE_A, "{json}");
    assert_eq!(json["Entry"]["Sequence"], 1, "{json}");

    let rec2 = Record::create(&key, VALUE_B, 2, day, Duration::from_secs(60)).unwrap();
    put("rec2", &rec2.to_bytes()).success();
    let out = kubo.ipfs(["name", "resolve", "--nocache", &name]);
    assert_eq!(out.success().stdout_trimmed(), VALUE_B);

    // A flipped byte in the signed data: Kubo refuses it as ipkg does.
    let mut bad = Record::create(&key, VALUE_A, 3, day, Duration::from_secs(60)).unwrap();
    if let Some(data) = bad.data.as_mut() {
        let last = data.len() - 1;
        data[last] ^= 1;
    }
    let bad_path = kubo.scratch().join("bad");
    std::fs::write(&bad_path, bad.to_bytes()).unwrap();
    let out = kubo.ipfs(["name", "put", "--allow-offline", &name, path_str(&bad_path)]);
    assert!(
        out.failure().stderr.contains("signature"),
        "{}",
        out.describe()
    );
    // `routing put` does not complain (see the module doc) but stores nothing.
    put("bad", &bad.to_bytes());
    assert!(ipns::verify(&name, &bad.to_bytes(), SystemTime::now()).is_err());
    let out = kubo.ipfs(["name", "resolve", "--nocache", &name]);
    assert_eq!(out.success().stdout_trimmed(), VALUE_B);
}

/// A record published by Kubo verifies in ipkg with Kubo's value, sequence,
/// TTL and lifetime.
#[test]
fn ipkg_verifies_records_made_by_kubo() {
    if !kubo_available() {
        return;
    }
    let kubo = Kubo::start_daemon();
    let name = kubo.ipfs(["key", "gen", "--type=ed25519", "pub"]);
    let name = name.success().stdout_trimmed().to_owned();
    assert!(name.starts_with("k51"), "{name}");

    let before = SystemTime::now();
    for value in [VALUE_A, VALUE_B] {
        kubo.ipfs([
            "name",
            "publish",
            "--allow-offline",
            "--key=pub",
            "--lifetime=48h",
            "--ttl=5m",
            value,
        ])
        .success();
    }
    let resp = http::get(
        kubo.gateway_addr(),
        &format!("/ipns/{name}?format=ipns-record"),
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let bytes = resp.body;

    let v = ipns::verify(&name, &bytes, SystemTime::now()).unwrap();
    assert_eq!(v.value, VALUE_B);
    assert_eq!(v.sequence, 1, "second publish of a fresh key");
    assert_eq!(v.ttl, Duration::from_secs(300));
    let lifetime = v.validity.duration_since(before).unwrap();
    assert!(
        lifetime >= Duration::from_secs(48 * 3600) && lifetime < Duration::from_secs(49 * 3600),
        "{lifetime:?}"
    );
    // Kubo writes the protobuf as we do: decode and re-encode is the identity.
    assert_eq!(Record::decode(&bytes).unwrap().to_bytes(), bytes);
    // And the record is for that name only.
    let other = Keypair::generate().unwrap().ipns_name();
    assert!(ipns::verify(&other, &bytes, SystemTime::now()).is_err());
}

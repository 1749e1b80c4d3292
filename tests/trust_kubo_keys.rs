//! Compatibility of ipkg's keys and DAG-CBOR statements with a real Kubo.
//!
//! Each test runs `ipfs` offline against its own temporary repository. When
//! `ipfs` is not on PATH the tests record a skip (`support::skip`), which
//! fails them under CI (CI has Kubo).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ipkg::content::cid::{Codec, cid_of};
use ipkg::trust::index::{PackageInfo, RegistryIndex};
use ipkg::trust::keys::Keypair;
use ipkg::trust::release::{Release, SignedRelease};
use ipkg::trust::succession::KeySuccession;

struct Kubo {
    repo: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Kubo {
    /// A fresh offline Kubo repository, or None (a recorded skip) without `ipfs`.
    fn start() -> Option<Kubo> {
        if !support::kubo_available() {
            return None;
        }
        let kubo = Kubo {
            repo: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        };
        kubo.ok(&["init", "--profile=test"]);
        Some(kubo)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("ipfs")
            .args(args)
            .env("IPFS_PATH", self.repo.path())
            .env("IPFS_TELEMETRY", "off")
            .env_remove("IPFS_HTTP_ROUTERS")
            .current_dir(self.work.path())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ipfs {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// The `k51…` name Kubo lists for key `name`.
    fn key_name(&self, name: &str) -> String {
        let list = self.ok(&["key", "list", "-l", "--ipns-base=base36"]);
        list.lines()
            .find_map(|l| {
                let mut parts = l.split_whitespace();
                let id = parts.next()?;
                (parts.next()? == name).then(|| id.to_owned())
            })
            .unwrap_or_else(|| panic!("key {name} not in:\n{list}"))
    }

    /// `ipfs block put --cid-codec dag-cbor`, then `ipfs dag get` as JSON.
    fn put_and_get(&self, bytes: &[u8], file: &str) -> (String, serde_json::Value) {
        let path = self.file(file);
        std::fs::write(&path, bytes).unwrap();
        let cid = self
            .ok(&["block", "put", "--cid-codec", "dag-cbor", path_str(&path)])
            .trim()
            .to_owned();
        let json = self.ok(&["dag", "get", &cid]);
        (cid, serde_json::from_str(&json).unwrap())
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kubo_generated_key_imports_into_ipkg() {
    let Some(kubo) = Kubo::start() else {
        return;
    };
    kubo.ok(&["key", "gen", "--type=ed25519", "k1"]);
    let name = kubo.key_name("k1");
    assert!(name.starts_with("k51"), "{name}");

    let pb = kubo.file("k1.key");
    kubo.ok(&[
        "key",
        "export",
        "k1",
        "-f",
        "libp2p-protobuf-cleartext",
        "-o",
        path_str(&pb),
    ]);
    let from_pb = Keypair::from_libp2p_protobuf(&std::fs::read(&pb).unwrap()).unwrap();
    assert_eq!(from_pb.ipns_name(), name);

    let pem = kubo.file("k1.pem");
    kubo.ok(&[
        "key",
        "export",
        "k1",
        "-f",
        "pem-pkcs8-cleartext",
        "-o",
        path_str(&pem),
    ]);
    let pem_text = std::fs::read_to_string(&pem).unwrap();
    let from_pem = Keypair::from_pem(&pem_text).unwrap();
    assert_eq!(from_pem.ipns_name(), name);

    // ipkg writes both formats byte for byte as Kubo does.
    assert_eq!(from_pem.to_pem().unwrap(), pem_text);
    assert_eq!(from_pb.to_libp2p_protobuf(), std::fs::read(&pb).unwrap());

    // The base58 peer ID Kubo prints parses to the same key.
    let b58 = kubo.ok(&["key", "list", "-l", "--ipns-base=b58mh"]);
    let peer = b58
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("k1"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert_eq!(from_pb.public().peer_id(), peer);
    assert_eq!(
        ipkg::trust::keys::normalize_name(peer).unwrap(),
        name,
        "12D3Koo… and k51… name the same key"
    );
}

#[test]
fn ipkg_generated_key_imports_into_kubo() {
    let Some(kubo) = Kubo::start() else {
        return;
    };
    let key = Keypair::generate().unwrap();
    let pb = kubo.file("ipkg.key");
    std::fs::write(&pb, key.to_libp2p_protobuf()).unwrap();
    kubo.ok(&[
        "key",
        "import",
        "a",
        "-f",
        "libp2p-protobuf-cleartext",
        path_str(&pb),
    ]);
    assert_eq!(kubo.key_name("a"), key.ipns_name());

    let key2 = Keypair::generate().unwrap();
    let pem = kubo.file("ipkg.pem");
    std::fs::write(&pem, key2.to_pem().unwrap()).unwrap();
    kubo.ok(&[
        "key",
        "import",
        "b",
        "-f",
        "pem-pkcs8-cleartext",
        path_str(&pem),
    ]);
    assert_eq!(kubo.key_name("b"), key2.ipns_name());
}

#[test]
fn kubo_reads_signed_statements_as_dag_cbor() {
    let Some(kubo) = Kubo::start() else {
        return;
    };
    let publisher = Keypair::from_seed(&[21; 32]);
    let package = cid_of(1, Codec::DagPb, b"a package tree");
    let signed = SignedRelease::sign(
        Release {
            name: "xmr".into(),
            version: semver::Version::parse("1.2.3-rc.1").unwrap(),
            package,
            target: "x86_64-linux".into(),
            publisher: publisher.ipns_name(),
            previous: None,
            time: 1_767_225_600,
        },
        &publisher,
    )
    .unwrap();
    let (cid, json) = kubo.put_and_get(signed.encode(), "release.cbor");
    assert_eq!(cid, signed.cid().to_string(), "Kubo computes the same CID");
    assert_eq!(json["name"], "xmr");
    assert_eq!(json["version"], "1.2.3-rc.1");
    assert_eq!(json["target"], "x86_64-linux");
    assert_eq!(json["publisher"], publisher.ipns_name().as_str());
    assert_eq!(json["package"]["/"], package.to_string().as_str());
    assert_eq!(json["previous"], serde_json::Value::Null);
    assert_eq!(json["time"], 1_767_225_600);
    assert!(json["signature"]["/"]["bytes"].is_string(), "{json}");

    // Kubo's re-encoding of its own JSON view gives back the same block.
    let json_path = kubo.file("release.json");
    std::fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let again = kubo
        .ok(&[
            "dag",
            "put",
            "--input-codec",
            "dag-json",
            "--store-codec",
            "dag-cbor",
            path_str(&json_path),
        ])
        .trim()
        .to_owned();
    assert_eq!(again, cid);

    // The registry index and its package documents.
    let registry = Keypair::from_seed(&[22; 32]);
    let mut index = RegistryIndex::new(&registry.ipns_name()).unwrap();
    index
        .add_release(
            &signed,
            &PackageInfo {
                description: "Monero miner".into(),
                commands: vec!["xmr".into()],
            },
        )
        .unwrap();
    let published = index.sign(&registry, 1_767_225_600, 1_767_830_400).unwrap();
    let (root_cid, root_json) = kubo.put_and_get(published.root.encode(), "root.cbor");
    assert_eq!(root_cid, published.root.cid().to_string());
    assert_eq!(root_json["sequence"], 1);
    assert_eq!(root_json["registry"], registry.ipns_name().as_str());
    let doc = &published.documents[0];
    assert_eq!(
        root_json["packages"]["xmr"]["/"],
        doc.cid.to_string().as_str()
    );
    let (doc_cid, doc_json) = kubo.put_and_get(&doc.data, "xmr.cbor");
    assert_eq!(doc_cid, doc.cid.to_string());
    assert_eq!(doc_json["releases"][0]["release"]["/"], cid.as_str());
    assert_eq!(doc_json["releases"][0]["yanked"], false);

    let next = Keypair::from_seed(&[23; 32]);
    let succession = KeySuccession::sign(&publisher, &next.ipns_name(), 1_767_225_700).unwrap();
    let (s_cid, s_json) = kubo.put_and_get(succession.encode(), "succession.cbor");
    assert_eq!(s_cid, succession.cid().to_string());
    assert_eq!(s_json["new"], next.ipns_name().as_str());
}

//! `ipkg key`: generate, list, export, import, and files Kubo agrees with.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::os::unix::fs::PermissionsExt;

use support::{Kubo, TestEnv, kubo_available, path_str};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn gen_list_export_import_round_trip() {
    let env = TestEnv::new();
    let name = env
        .ipkg(["key", "gen", "alice"])
        .success()
        .stdout_trimmed()
        .to_string();
    assert!(name.starts_with("k51"), "{name}");

    let keys = env.config.join("ipkg/keys");
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&keys.join("alice.key")), 0o600);

    // A second key with the same name is a conflict.
    let out = env.ipkg(["key", "gen", "alice"]);
    assert_eq!(out.failure().status.code(), Some(6), "{}", out.describe());

    let list = env
        .ipkg(["key", "list"])
        .success()
        .stdout_trimmed()
        .to_string();
    assert_eq!(list, format!("{name} alice"));
    let json: serde_json::Value =
        serde_json::from_str(&env.ipkg(["key", "list", "--json"]).success().stdout).unwrap();
    assert_eq!(json[0]["name"], "alice");
    assert_eq!(json[0]["ipns"], name.as_str());

    for (format, file) in [
        ("libp2p-protobuf-cleartext", "alice.pb"),
        ("pem-pkcs8-cleartext", "alice.pem"),
    ] {
        let dest = env.path(file);
        env.ipkg([
            "key",
            "export",
            "alice",
            "-f",
            format,
            "-o",
            path_str(&dest),
        ])
        .success();
        assert_eq!(mode(&dest), 0o600, "{file}");
        // Never replaces a file.
        let again = env.ipkg([
            "key",
            "export",
            "alice",
            "-f",
            format,
            "-o",
            path_str(&dest),
        ]);
        assert_eq!(again.failure().status.code(), Some(6));
        // Imported with the format detected, it is the same key.
        let copy = format!("copy-{file}").replace('.', "-");
        let got = env.ipkg(["key", "import", &copy, path_str(&dest)]);
        assert_eq!(got.success().stdout_trimmed(), name);
    }
    // The key material is never printed.
    let pem = std::fs::read_to_string(env.path("alice.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN"));
    let out = env.ipkg(["key", "list"]);
    assert!(!out.stdout.contains("BEGIN") && !out.stderr.contains("BEGIN"));

    let missing = env.ipkg(["key", "export", "nobody", "-o", "x"]);
    assert_eq!(missing.failure().status.code(), Some(3));
}

#[test]
fn exported_key_has_the_same_name_in_kubo() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let name = env
        .ipkg(["key", "gen", "alice"])
        .success()
        .stdout_trimmed()
        .to_string();
    let kubo = Kubo::init();
    for (format, file) in [
        ("libp2p-protobuf-cleartext", "alice.key"),
        ("pem-pkcs8-cleartext", "alice.pem"),
    ] {
        let dest = env.path(file);
        env.ipkg([
            "key",
            "export",
            "alice",
            "-f",
            format,
            "-o",
            path_str(&dest),
        ])
        .success();
        let kname = file.replace('.', "-");
        let out = kubo.ipfs(["key", "import", &kname, "-f", format, path_str(&dest)]);
        assert_eq!(out.success().stdout_trimmed(), name, "{format}");
    }
    // And back: a key Kubo made imports under the name Kubo shows.
    let kubo_name = kubo
        .ipfs(["key", "gen", "--ipns-base=base36", "bob"])
        .success()
        .stdout_trimmed()
        .to_string();
    let file = kubo.scratch().join("bob.key");
    kubo.ipfs(["key", "export", "bob", "-o", path_str(&file)])
        .success();
    let got = env.ipkg(["key", "import", "bob", path_str(&file)]);
    assert_eq!(got.success().stdout_trimmed(), kubo_name);
}

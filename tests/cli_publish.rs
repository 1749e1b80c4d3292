//! `ipkg init`, `pack`, `registry` and `publish` against the real binary.

#[allow(unused_imports)] // each test crate uses a part of the support code
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::{Kubo, TestEnv, kubo_available, path_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packages")
}

/// Copy a tree (symlinks as symlinks).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// ipkg's mode normalisation, done with chmod, for the Kubo side.
fn normalise_modes(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            continue;
        }
        let p = e.path();
        let m = std::fs::metadata(&p).unwrap().permissions().mode();
        let new = if ft.is_dir() || m & 0o100 != 0 {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(new)).unwrap();
        if ft.is_dir() {
            normalise_modes(&p);
        }
    }
}

#[test]
fn pack_matches_kubo() {
    if !kubo_available() {
        return;
    }
    let env = TestEnv::new();
    let mut dirs = vec![
        examples().join("hello/1.0.0"),
        examples().join("hello/1.1.0"),
        examples().join("with-hooks"),
    ];
    // Hidden files are packed, `.git` is not; odd modes are normalised.
    let extra = env.path("extra");
    copy_tree(&examples().join("hello/1.0.0"), &extra);
    std::fs::create_dir_all(extra.join(".git")).unwrap();
    std::fs::write(extra.join(".git/HEAD"), "ref").unwrap();
    std::fs::create_dir_all(extra.join("share/.cache")).unwrap();
    std::fs::write(extra.join("share/.cache/x"), "x").unwrap();
    std::fs::write(extra.join(".env"), "y").unwrap();
    std::fs::set_permissions(extra.join(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(extra.join("empty")).unwrap();
    std::os::unix::fs::symlink("../bin/hello", extra.join("share/hello")).unwrap();
    dirs.push(extra);
    let bb = env.path("busybox");
    let built = std::process::Command::new("sh")
        .arg(examples().join("busybox/build.sh"))
        .arg(&bb)
        .output();
    if built.is_ok_and(|o| o.status.success()) {
        dirs.push(bb);
    } else {
        support::skip(
            "busybox-static",
            "the busybox package was not built (no busybox-static): left out of the comparison",
        );
    }

    let kubo = Kubo::init_with_profiles(&["unixfs-v1-2025"]);
    for (i, dir) in dirs.iter().enumerate() {
        let ours = env.ipkg(["pack", "-n", path_str(dir)]);
        let ours = ours.success().stdout_trimmed().to_string();
        let copy = kubo.scratch().join(format!("pkg{i}"));
        copy_tree(dir, &copy);
        normalise_modes(&copy);
        let theirs = kubo.add(
            &copy,
            &[
                "--hidden",
                "--preserve-mode",
                "--raw-leaves=false",
                "--ignore=.git",
            ],
        );
        assert_eq!(ours, theirs, "{}", dir.display());
    }
}

#[test]
fn pack_is_stable_and_writes_a_car() {
    let env = TestEnv::new();
    let dir = examples().join("hello/1.0.0");
    let a = env
        .ipkg(["pack", "-n", path_str(&dir)])
        .success()
        .stdout_trimmed()
        .to_string();
    let car = env.path("hello.car");
    let b = env.ipkg(["pack", path_str(&dir), "--car", path_str(&car)]);
    assert_eq!(b.success().stdout_trimmed(), a);
    assert!(std::fs::metadata(&car).unwrap().len() > 0);
    let again = env.ipkg(["pack", path_str(&dir), "--car", path_str(&car)]);
    assert_eq!(again.failure().status.code(), Some(6));
}

#[test]
fn init_scaffolds_a_manifest_pack_accepts() {
    let env = TestEnv::new();
    let dir = env.path("my-tool");
    copy_tree(&examples().join("hello/1.0.0/bin"), &dir.join("bin"));
    std::fs::remove_file(dir.join("ipkg.toml")).ok();
    env.ipkg(["init", path_str(&dir), "--version", "2.0.0"])
        .success();
    let text = std::fs::read_to_string(dir.join("ipkg.toml")).unwrap();
    assert!(text.contains("name = \"my-tool\""), "{text}");
    assert!(text.contains("hello = \"bin/hello\""), "{text}");
    env.ipkg(["pack", "-n", path_str(&dir)]).success();
    // Never replaces a manifest.
    assert_eq!(
        env.ipkg(["init", path_str(&dir)]).failure().status.code(),
        Some(6)
    );
}

#[test]
fn malformed_manifests_name_file_and_key() {
    let env = TestEnv::new();
    let cases = [
        (
            "[package]\nname = \"Hello\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n",
            "[package] name",
        ),
        (
            "[package]\nname = \"hello\"\nversion = \"1.0\"\ntargets = [\"any\"]\n",
            "[package] version",
        ),
        (
            "[package]\nname = \"hello\"\nversoin = \"1.0.0\"\ntargets = [\"any\"]\n",
            "versoin",
        ),
        (
            "[package]\nname = \"hello\"\nversion = \"1.0.0\"\ntargets = [\"any\"]\n[commands]\nhello = \"bin/nope\"\n",
            "[commands] hello",
        ),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let dir = env.path(format!("bad{i}"));
        copy_tree(&examples().join("hello/1.0.0/bin"), &dir.join("bin"));
        std::fs::write(dir.join("ipkg.toml"), text).unwrap();
        let out = env.ipkg(["pack", "-n", path_str(&dir)]);
        out.failure();
        let err = out.stderr_trimmed();
        assert!(err.contains(&format!("bad{i}/ipkg.toml")), "{err}");
        assert!(err.contains(key), "{key}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{err}"
        );
    }
    let none = env.ipkg(["pack", "-n", path_str(&env.path("bad0/bin"))]);
    assert_eq!(none.failure().status.code(), Some(3));
    assert!(none.stderr.contains("ipkg init"), "{}", none.stderr);
}

fn registry(env: &TestEnv) {
    env.ipkg(["key", "gen", "alice"]).success();
    env.ipkg(["registry", "init", "main", "--key", "alice"])
        .success();
}

fn list_json(env: &TestEnv) -> serde_json::Value {
    let out = env.ipkg(["registry", "list", "--json"]);
    serde_json::from_str(&out.success().stdout).unwrap()
}

fn publish(env: &TestEnv, dir: &Path) -> support::Output {
    env.ipkg(["publish", path_str(dir), "--registry", "main"])
}

#[test]
fn publish_versions_refuse_changes_and_yank() {
    let env = TestEnv::new();
    registry(&env);
    let v1 = env.path("hello-1.0.0");
    copy_tree(&examples().join("hello/1.0.0"), &v1);

    let out = publish(&env, &v1);
    let lines = out.success().stdout_lines();
    assert!(lines[0].starts_with("bafyrei"), "{lines:?}");
    assert!(lines[1].starts_with("/ipns/k51"), "{lines:?}");
    let release1 = lines[0].to_string();
    publish(&env, &examples().join("hello/1.1.0")).success();
    let list = list_json(&env);
    assert_eq!(list[0]["sequence"], 2);

    // The index has both versions.
    let verify = env.ipkg(["registry", "verify", "main", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&verify.success().stdout).unwrap();
    assert_eq!(report["releases"], 2);
    assert_eq!(report["packages"], 1);

    // The same content again: a no-op, no new index.
    let same = publish(&env, &v1);
    assert_eq!(same.success().stdout_lines()[0], release1);
    assert!(same.stderr.contains("already published"), "{}", same.stderr);
    assert_eq!(list_json(&env)[0]["sequence"], 2);

    // Other content under a published version: refused.
    std::fs::write(v1.join("bin/hello"), "#!/bin/sh\necho changed\n").unwrap();
    let changed = publish(&env, &v1);
    assert_eq!(
        changed.failure().status.code(),
        Some(6),
        "{}",
        changed.describe()
    );
    assert!(changed.stderr.contains("hello 1.0.0"), "{}", changed.stderr);
    assert!(
        changed.stderr.contains("already published"),
        "{}",
        changed.stderr
    );
    assert_eq!(list_json(&env)[0]["sequence"], 2);

    // Yank: a new signed index with the flag set.
    let yank = env.ipkg([
        "publish",
        "--registry",
        "main",
        "--yank",
        "1.0.0",
        "--package",
        "hello",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&yank.success().stdout).unwrap();
    assert_eq!(report["sequence"], 3);
    env.ipkg(["registry", "verify", "main"]).success();
    let car = env.path("main.car");
    env.ipkg(["registry", "export", "main", "-o", path_str(&car)])
        .success();
    if kubo_available() {
        // Kubo reads the index: the yanked flag is in the package document.
        let kubo = Kubo::init();
        kubo.ipfs(["dag", "import", "--pin-roots=false", path_str(&car)])
            .success();
        let root = report["index"].as_str().unwrap();
        let doc = kubo.ipfs(["dag", "get", &format!("{root}/packages/hello")]);
        let doc: serde_json::Value = serde_json::from_str(&doc.success().stdout).unwrap();
        let releases = doc["releases"].as_array().unwrap();
        assert_eq!(releases.len(), 2);
        assert_eq!(releases[0]["yanked"], true);
        assert_eq!(releases[1]["yanked"], false);
    }
}

#[test]
fn tampered_release_is_detected() {
    let env = TestEnv::new();
    registry(&env);
    let out = publish(&env, &examples().join("hello/1.0.0"));
    let release = out.success().stdout_lines()[0].to_string();
    // Find the release block's file in the store and flip a byte.
    let blocks = env.prefix.join(".ipkg/blocks");
    let key =
        ipkg::sources::store::BlockStore::key_of(&ipkg::content::cid::parse(&release).unwrap());
    let file = walk(&blocks)
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&key))
        })
        .expect("the release block is in the store");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&file, bytes).unwrap();
    let verify = env.ipkg(["registry", "verify", "main"]);
    assert_eq!(
        verify.failure().status.code(),
        Some(4),
        "{}",
        verify.describe()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn rotate_moves_the_registry_to_the_new_key() {
    let env = TestEnv::new();
    registry(&env);
    publish(&env, &examples().join("hello/1.0.0")).success();
    let new = env
        .ipkg(["key", "gen", "bob"])
        .success()
        .stdout_trimmed()
        .to_string();
    let out = env.ipkg(["key", "rotate", "alice", "bob"]);
    assert!(out.success().stdout_trimmed().starts_with("bafyrei"));
    let list = list_json(&env);
    assert_eq!(list[0]["ipns"], new.as_str());
    assert_eq!(list[0]["key"], "bob");
    assert_eq!(list[0]["sequence"], 2);
    // Releases signed before the rotation still verify; new ones use the new key.
    env.ipkg(["registry", "verify", "main"]).success();
    publish(&env, &examples().join("hello/1.1.0")).success();
    env.ipkg(["registry", "verify", "main"]).success();
}

/// `publish` leaves an IPNS record for the registry's name that verifies, points
/// at the newest index and carries its sequence (so a client refuses an older
/// record as it refuses an older index).
#[test]
fn publish_writes_a_verifiable_ipns_record() {
    let env = TestEnv::new();
    registry(&env);
    let out = publish(&env, &examples().join("hello/1.0.0"));
    let lines = out.success().stdout_lines();
    let name = lines[1].trim_start_matches("/ipns/").to_string();
    publish(&env, &examples().join("hello/1.1.0")).success();
    let record = std::fs::read(env.prefix.join(".ipkg/registries/main/ipns-record")).unwrap();
    let verified = ipkg::names::ipns::verify(&name, &record, std::time::SystemTime::now()).unwrap();
    assert_eq!(verified.sequence, 2);
    let list = list_json(&env);
    let root = list[0]["root"].as_str().unwrap_or_default().to_string();
    assert_eq!(verified.value, format!("/ipfs/{root}"), "{list}");
    // A flipped byte no longer verifies.
    let mut other = record.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    assert!(ipkg::names::ipns::verify(&name, &other, std::time::SystemTime::now()).is_err());
}

/// A publish journal that is not ours (garbage) is an error naming it; a
/// journal left by a killed publish that only reserved a sequence makes the
/// next publish skip that sequence, never sign it for other content.
#[test]
fn publish_journal_damaged_or_reserved() {
    let env = TestEnv::new();
    registry(&env);
    publish(&env, &examples().join("hello/1.0.0")).success();
    let dir = env.prefix.join(".ipkg/registries/main");
    let journal = dir.join("journal.json");

    // Reserved sequence 2 (a publish killed before it signed).
    let ipns = list_json(&env)[0]["ipns"].as_str().unwrap().to_owned();
    std::fs::write(
        &journal,
        format!("{{\"sequence\": 2, \"key\": \"alice\", \"ipns\": \"{ipns}\"}}"),
    )
    .unwrap();
    publish(&env, &examples().join("hello/1.1.0")).success();
    assert!(!journal.exists());
    assert_eq!(list_json(&env)[0]["sequence"], 3);

    // Garbage: named, with the command that repairs it.
    std::fs::write(&journal, "garbage").unwrap();
    let out = env.ipkg(["registry", "verify", "main"]);
    out.failure();
    assert!(
        out.stderr.contains("journal.json") && out.stderr.contains("ipkg registry repair main"),
        "{}",
        out.describe()
    );
    let out = env.ipkg(["registry", "repair", "main"]);
    assert!(
        out.success().stderr.contains("index sequence 3"),
        "{}",
        out.describe()
    );
    assert!(!journal.exists());
    env.ipkg(["registry", "verify", "main"]).success();
    // A healthy registry: nothing to repair.
    let out = env.ipkg(["registry", "repair", "main"]);
    assert!(
        out.success().stderr.contains("nothing to repair"),
        "{}",
        out.describe()
    );
}

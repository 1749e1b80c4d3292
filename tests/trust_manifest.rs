//! Malformed manifests: one clear error each, naming the file and the key.

use std::path::Path;

use ipkg::trust::manifest::{Manifest, MemTree};

const GOOD: &str = r#"[package]
name = "xmr"
version = "1.2.3"
description = "Monero miner"
targets = ["x86_64-linux"]

[commands]
xmr = "bin/xmr"

[hooks]
post-install = "hooks/post-install"
"#;

fn err(text: &str) -> String {
    Manifest::parse(text, Path::new("pkg/ipkg.toml"))
        .unwrap_err()
        .to_string()
}

fn good_tree() -> MemTree {
    let mut t = MemTree::new();
    t.file("ipkg.toml", 200, false)
        .file("bin/xmr", 1 << 20, true)
        .file("hooks/post-install", 100, true);
    t
}

#[test]
fn good_manifest_and_tree() {
    let m = Manifest::parse(GOOD, Path::new("pkg/ipkg.toml")).unwrap();
    let summary = m
        .validate_tree(&good_tree(), Path::new("pkg/ipkg.toml"))
        .unwrap();
    assert_eq!(summary.files, 3);
    assert!(m.supports_target("x86_64-linux"));
    assert!(!m.supports_target("aarch64-linux"));
}

#[test]
fn bad_toml_shows_line_and_column() {
    assert_eq!(
        err("[package]\nname = \"xmr\nversion = \"1\"\n"),
        "pkg/ipkg.toml:2:12: invalid TOML: invalid basic string, expected `\"`"
    );
}

#[test]
fn unknown_field_suggests_the_known_one() {
    assert_eq!(
        err(&GOOD.replace("post-install =", "post-instal =")),
        "pkg/ipkg.toml:11:1: [hooks] post-instal: unknown field; did you mean `post-install`?"
    );
    assert_eq!(
        err(&GOOD.replace("[commands]", "[comands]")),
        "pkg/ipkg.toml:7:2: [comands]: unknown table; did you mean `commands`?"
    );
    let e = err(&GOOD.replace("description", "zzz"));
    assert!(e.ends_with("[package] zzz: unknown field; expected one of `spec`, `name`, `version`, `description`, `license`, `homepage`, `authors`, `targets`"), "{e}");
}

#[test]
fn bad_name() {
    let e = err(&GOOD.replace("name = \"xmr\"", "name = \"-xmr\""));
    assert!(
        e.starts_with("pkg/ipkg.toml:2:8: [package] name: `-xmr` is not a valid package name"),
        "{e}"
    );
}

#[test]
fn bad_semver() {
    let e = err(&GOOD.replace("1.2.3", "v1.2.3"));
    assert!(
        e.starts_with("pkg/ipkg.toml:3:11: [package] version: `v1.2.3` is not a semantic version"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_the_key() {
    let e = err(&GOOD.replace("targets = [\"x86_64-linux\"]", "targets = \"x86_64-linux\""));
    assert!(
        e.starts_with("pkg/ipkg.toml:5:11: [package] targets: invalid type"),
        "{e}"
    );
}

#[test]
fn newer_spec_asks_for_a_newer_ipkg() {
    let e = err(&GOOD.replace("[package]\n", "[package]\nspec = 2\nnew-thing = 1\n"));
    assert!(
        e.contains("[package] spec: this manifest is for ipkg-spec 2"),
        "{e}"
    );
}

#[test]
fn command_path_escaping_the_package() {
    assert_eq!(
        err(&GOOD.replace("\"bin/xmr\"", "\"/usr/bin/xmr\"")),
        "pkg/ipkg.toml:8:7: [commands] xmr: `/usr/bin/xmr` is absolute; give a path inside the package, e.g. `bin/tool`"
    );
    assert_eq!(
        err(&GOOD.replace("\"bin/xmr\"", "\"bin/../../xmr\"")),
        "pkg/ipkg.toml:8:7: [commands] xmr: `bin/../../xmr` leaves the package (`..`)"
    );
    // Through a symlink, found only with the tree.
    let m = Manifest::parse(GOOD, Path::new("pkg/ipkg.toml")).unwrap();
    let mut t = good_tree();
    t.symlink("bin/xmr", "../../outside/xmr");
    assert_eq!(
        m.validate_tree(&t, Path::new("pkg/ipkg.toml"))
            .unwrap_err()
            .to_string(),
        "pkg/ipkg.toml: [commands] xmr: `bin/xmr` leaves the package: the symlink `bin/xmr` points to `../../outside/xmr`"
    );
}

#[test]
fn missing_file() {
    let m = Manifest::parse(GOOD, Path::new("pkg/ipkg.toml")).unwrap();
    let mut t = MemTree::new();
    t.file("hooks/post-install", 1, true);
    assert_eq!(
        m.validate_tree(&t, Path::new("pkg/ipkg.toml"))
            .unwrap_err()
            .to_string(),
        "pkg/ipkg.toml: [commands] xmr: `bin/xmr` does not exist in the package"
    );
}

#[test]
fn dangling_symlink() {
    let m = Manifest::parse(GOOD, Path::new("pkg/ipkg.toml")).unwrap();
    let mut t = good_tree();
    t.symlink("bin/xmr", "xmr-1.2.3");
    assert_eq!(
        m.validate_tree(&t, Path::new("pkg/ipkg.toml"))
            .unwrap_err()
            .to_string(),
        "pkg/ipkg.toml: [commands] xmr: `bin/xmr` does not exist in the package: it leads through symlinks to `bin/xmr-1.2.3`, which is missing"
    );
}

#[test]
fn hook_not_executable() {
    let m = Manifest::parse(GOOD, Path::new("pkg/ipkg.toml")).unwrap();
    let mut t = good_tree();
    t.file("hooks/post-install", 100, false);
    assert_eq!(
        m.validate_tree(&t, Path::new("pkg/ipkg.toml"))
            .unwrap_err()
            .to_string(),
        "pkg/ipkg.toml: [hooks] post-install: `hooks/post-install` is not executable; run `chmod +x hooks/post-install` before packing"
    );
}

#[test]
fn size_limits() {
    let m = Manifest::parse(GOOD, Path::new("pkg/ipkg.toml")).unwrap();
    let mut t = good_tree();
    t.file("data/huge", 3 << 30, false);
    let e = m
        .validate_tree(&t, Path::new("pkg/ipkg.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`data/huge` is 3221225472 bytes; the limit for one file is 2147483648"),
        "{e}"
    );
    let mut deep = good_tree();
    deep.file(&vec!["d"; 40].join("/"), 1, false);
    let e = m
        .validate_tree(&deep, Path::new("pkg/ipkg.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("levels deep; the limit is 32"), "{e}");
}

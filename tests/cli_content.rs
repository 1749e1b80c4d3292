//! The content commands (`add`, `cat`, `get`, `car`, `pin`, `gc`) through the real
//! binary: the gateway-conformance CAR vectors, hostile input, and collection.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use support::TestEnv;

fn vector(name: &str) -> PathBuf {
    support::shared_vectors("car").join(name)
}

fn code(out: &support::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Every vector CAR imports, and every complete one extracts into a tree whose
/// files read back through `cat` with the same bytes.
#[test]
fn vector_cars_import_and_extract() {
    let env = TestEnv::new();
    for name in [
        "dir-with-files.car",
        "dir-with-duplicate-files.car",
        "dir-with-percent-encoded-filename.car",
        "single-layer-hamt-with-multi-block-files.car",
        "subdir-with-mixed-block-files.car",
        "symlink.car",
    ] {
        let out = env.ipkg(["car", "import", vector(name).to_str().unwrap()]);
        out.success();
        let root = out.stdout_trimmed().to_string();
        let dest = env.path(name.trim_end_matches(".car"));
        env.ipkg(["get", &root, "-o", dest.to_str().unwrap()])
            .success();
        assert!(dest.exists(), "{name}: nothing extracted");
        // Each extracted regular file must equal `ipkg cat ROOT/path`.
        let mut stack = vec![(dest.clone(), String::new())];
        let mut files = 0;
        while let Some((dir, rel)) = stack.pop() {
            if !dir.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                let rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let ft = entry.file_type().unwrap();
                if ft.is_dir() {
                    stack.push((entry.path(), rel));
                } else if ft.is_file() {
                    let cat = env.ipkg(["cat", &format!("{root}/{rel}")]);
                    cat.success();
                    assert_eq!(cat.stdout_raw, fs::read(entry.path()).unwrap(), "{rel}");
                    files += 1;
                }
            }
        }
        if name != "symlink.car" {
            assert!(files > 0, "{name}: no files extracted");
        }
    }
    // The HAMT vector holds a multi-block file under a sharded directory.
    let hamt = env.path("single-layer-hamt-with-multi-block-files");
    assert!(fs::read_dir(&hamt).unwrap().count() > 10);
}

#[test]
fn symlink_vector_keeps_its_link() {
    let env = TestEnv::new();
    let out = env.ipkg(["car", "import", vector("symlink.car").to_str().unwrap()]);
    out.success();
    let root = out.stdout_trimmed().to_string();
    let dest = env.path("sym");
    env.ipkg(["get", &root, "-o", dest.to_str().unwrap()])
        .success();
    let mut found = false;
    for entry in fs::read_dir(&dest).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_symlink() {
            let target = fs::read_link(entry.path()).unwrap();
            assert!(target.is_relative());
            found = true;
        }
    }
    assert!(found, "symlink.car should extract a symlink");
}

/// `outside-root.car` names an entry `../foo`: refused before anything is
/// written, with no partial result and nothing beside DEST.
#[test]
fn outside_root_car_is_refused() {
    let env = TestEnv::new();
    let out = env.ipkg([
        "car",
        "import",
        vector("outside-root.car").to_str().unwrap(),
    ]);
    out.success();
    let root = out.stdout_trimmed().to_string();
    let base = env.path("x");
    fs::create_dir(&base).unwrap();
    let dest = base.join("dest");
    let out = env.ipkg(["get", &root, "-o", dest.to_str().unwrap()]);
    out.failure();
    assert_eq!(code(&out), 5, "unsafe input exit code: {}", out.stderr);
    assert!(
        out.stderr.contains("../foo"),
        "error should name the entry: {}",
        out.stderr
    );
    assert!(!dest.exists(), "no partial output");
    assert_eq!(
        fs::read_dir(&base).unwrap().count(),
        0,
        "nothing left beside DEST"
    );
    assert!(!env.path("foo").exists() && !base.join("foo").exists());
}

/// A CAR missing a block: import says which block, nothing is pinned, and
/// `get` fails with "missing block <cid>" and no partial output.
#[test]
fn missing_block_car_is_a_clear_error() {
    let env = TestEnv::new();
    let missing = "QmSNLTo6Wv9dfroVaw7MFYjLqf9ho7PKrgsjdzYDtv8h1W";
    let out = env.ipkg([
        "car",
        "import",
        vector("file-3k-and-3-blocks-missing-block.car")
            .to_str()
            .unwrap(),
    ]);
    out.failure();
    assert_eq!(code(&out), 3, "{}", out.stderr);
    assert!(out.stderr.contains(missing), "{}", out.stderr);
    let root = out.stdout_trimmed().to_string();
    let pins = env.ipkg(["pin", "ls"]);
    pins.success();
    assert!(
        pins.stdout_trimmed().is_empty(),
        "an incomplete root is not pinned"
    );

    let dest = env.path("file");
    let out = env.ipkg(["get", &root, "-o", dest.to_str().unwrap()]);
    out.failure();
    assert_eq!(code(&out), 3);
    assert!(
        out.stderr.contains(&format!("missing block `{missing}`")),
        "{}",
        out.stderr
    );
    assert!(!dest.exists(), "no partial output");
    assert_eq!(
        fs::read_dir(&env.work).unwrap().count(),
        0,
        "no temporary left behind"
    );
}

/// A round trip through `add`, `car export`, a second store, `car import`, `get`.
#[test]
fn add_export_import_get_round_trip() {
    let publisher = TestEnv::new();
    let src = publisher.path("pkg");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::write(src.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(src.join("data.bin"), &big).unwrap();
    std::os::unix::fs::symlink("bin/tool", src.join("tool")).unwrap();

    let cid = publisher.ipkg(["add", "-q", "--preserve-mode", src.to_str().unwrap()]);
    cid.success();
    let cid = cid.stdout_trimmed().to_string();
    let car = publisher.path("pkg.car");
    publisher
        .ipkg(["car", "export", &cid, "-o", car.to_str().unwrap()])
        .success();

    let user = TestEnv::new();
    let out = user.ipkg(["car", "import", car.to_str().unwrap()]);
    out.success();
    assert_eq!(out.stdout_trimmed(), cid);
    let dest = user.path("got");
    user.ipkg(["get", &cid, "-o", dest.to_str().unwrap()])
        .success();
    assert_eq!(fs::read(dest.join("data.bin")).unwrap(), big);
    assert_eq!(
        fs::read_link(dest.join("tool")).unwrap(),
        PathBuf::from("bin/tool")
    );
    assert!(dest.join("empty").is_dir());
    let mode = fs::metadata(dest.join("bin/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "executable bit kept");
    let again = user.ipkg(["add", "-q", "-n", "--preserve-mode", dest.to_str().unwrap()]);
    again.success();
    assert_eq!(
        again.stdout_trimmed(),
        cid,
        "the same tree gives the same CID"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let env = TestEnv::new();
    let file = env.path("hello.txt");
    fs::write(&file, b"hello world").unwrap();
    let cid = env.ipkg(["add", "-q", file.to_str().unwrap()]);
    cid.success();
    let cid = cid.stdout_trimmed().to_string();

    // An existing DEST is never overwritten.
    let dest = env.path("exists");
    fs::write(&dest, b"keep me").unwrap();
    let out = env.ipkg(["get", &cid, "-o", dest.to_str().unwrap()]);
    out.failure();
    assert_eq!(code(&out), 6);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(fs::read(&dest).unwrap(), b"keep me");

    // Not a CID.
    let out = env.ipkg(["cat", "not-a-cid"]);
    out.failure();
    assert_eq!(code(&out), 2);
    assert!(out.stderr.contains("not-a-cid"), "{}", out.stderr);

    // A truncated CAR names the file and the offset.
    let car = env.path("x.car");
    env.ipkg(["car", "export", &cid, "-o", car.to_str().unwrap()])
        .success();
    let bytes = fs::read(&car).unwrap();
    let cut = env.path("cut.car");
    fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let other = TestEnv::new();
    let out = other.ipkg(["car", "import", cut.to_str().unwrap()]);
    out.failure();
    assert!(out.stderr.contains("cut.car"), "{}", out.stderr);
    assert!(out.stderr.contains("ends early"), "{}", out.stderr);

    // A block damaged on disk is never served.
    let blocks = env.prefix.join(".ipkg/blocks");
    let mut damaged = 0;
    for shard in fs::read_dir(&blocks).unwrap() {
        for f in fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            fs::write(&p, b"hello worle").unwrap();
            damaged += 1;
        }
    }
    assert_eq!(damaged, 1);
    let out = env.ipkg(["cat", &cid]);
    out.failure();
    assert_eq!(code(&out), 4);
    assert!(
        out.stderr.contains("does not hash to its CID"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "no damaged bytes on stdout");

    // A named pipe cannot be added.
    let fifo = env.path("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let out = env.ipkg(["add", fifo.to_str().unwrap()]);
    out.failure();
    assert!(out.stderr.contains("named pipe"), "{}", out.stderr);
}

#[test]
fn gc_frees_what_nothing_pins() {
    let env = TestEnv::new();
    let a = env.path("a.bin");
    let b = env.path("b.bin");
    fs::write(&a, vec![1u8; 3 << 20]).unwrap();
    fs::write(&b, vec![2u8; 3 << 20]).unwrap();
    let ca = env.ipkg(["add", "-q", a.to_str().unwrap()]);
    let cb = env.ipkg(["add", "-q", b.to_str().unwrap()]);
    let (ca, cb) = (
        ca.stdout_trimmed().to_string(),
        cb.stdout_trimmed().to_string(),
    );

    let out = env.ipkg(["--json", "gc"]);
    out.success();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["blocks_removed"], 0, "everything is pinned");

    env.ipkg(["pin", "rm", &cb]).success();
    let out = env.ipkg(["--json", "gc"]);
    out.success();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // b's 3 chunks and its root are gone (a shares no block with b).
    assert_eq!(report["blocks_removed"], 2, "{report}");
    assert!(report["bytes_freed"].as_u64().unwrap() >= 1 << 20);
    env.ipkg(["cat", &ca]).success();
    let out = env.ipkg(["cat", &cb]);
    out.failure();
    assert_eq!(code(&out), 3);
}

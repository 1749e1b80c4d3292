//! Content vectors: ipkg's importer against CIDs the real Kubo produced.
//!
//! - the shared corpus (`../shared/vectors/gen_corpus.py`) against
//!   `kubo-v0-default.tsv` (Kubo's default settings = `unixfs-v0-2015`);
//! - every IPIP-499 vector of kubo `test/cli/cid_profiles_test.go`, with the
//!   same data generators (ChaCha20 keystream keyed by sha256(seed), zero nonce;
//!   file names from that keystream over `AlphabetEasy`).

mod support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use ipkg::content::importer::{DirBuilder, FileBuilder, Imported, import_bytes, symlink};
use ipkg::content::profile::Profile;
use ipkg::content::{BlockSink, MemSink, NullSink};
use sha2::{Digest, Sha256};

fn shared_dir() -> PathBuf {
    support::shared_dir()
}

/// A small recursive walker, enough for the corpus (the real one lives in ops).
fn import_path(profile: &Profile, path: &Path, sink: &mut dyn BlockSink) -> Imported {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).unwrap();
        return symlink(profile, target.to_str().unwrap(), sink).unwrap();
    }
    if meta.is_dir() {
        let mut dir = DirBuilder::new(profile, None);
        for entry in fs::read_dir(path).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if !profile.hidden && name.starts_with('.') {
                continue;
            }
            let child = import_path(profile, &entry.path(), sink);
            dir.add(&name, child).unwrap();
        }
        return dir.finish(sink).unwrap();
    }
    let mut file = fs::File::open(path).unwrap();
    let mut fb = FileBuilder::new(profile, None);
    let mut buf = vec![0u8; profile.chunk_size];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        fb.push_chunk(&buf[..filled], sink).unwrap();
        if filled < buf.len() {
            break;
        }
    }
    fb.finish(sink).unwrap()
}

#[test]
fn kubo_v0_default_corpus() {
    let shared = shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg(shared.join("vectors/gen_corpus.py"))
        .arg(tmp.path())
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let tsv = fs::read_to_string(shared.join("vectors/kubo-v0-default.tsv")).unwrap();
    let profile = Profile::v0_2015();
    let mut checked = 0;
    for line in tsv.lines().filter(|l| !l.trim().is_empty()) {
        let (name, want) = line.split_once('\t').unwrap();
        let got = import_path(&profile, &tmp.path().join(name), &mut NullSink);
        assert_eq!(got.cid.to_string(), want, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// Kubo's `DeterministicRandomReaderBytes`: the ChaCha20 keystream.
struct Keystream(ChaCha20);

impl Keystream {
    fn new(seed: &str) -> Keystream {
        let key: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
        Keystream(ChaCha20::new(&key.into(), &[0u8; 12].into()))
    }

    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
        self.0.apply_keystream(buf);
    }
}

/// Import `size` keystream bytes, streaming: memory stays one chunk.
fn import_keystream(profile: &Profile, seed: &str, size: u64) -> Imported {
    let mut ks = Keystream::new(seed);
    let mut fb = FileBuilder::new(profile, None);
    let mut buf = vec![0u8; profile.chunk_size];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        ks.fill(&mut buf[..n]);
        fb.push_chunk(&buf[..n], &mut NullSink).unwrap();
        left -= n as u64;
    }
    fb.finish(&mut NullSink).unwrap()
}

/// The at/over max-links pair in one pass: the over file is the at file plus
/// one more keystream byte.
fn import_max_links_pair(profile: &Profile, seed: &str) -> (Imported, Imported) {
    let mut ks = Keystream::new(seed);
    let mut fb = FileBuilder::new(profile, None);
    let mut buf = vec![0u8; profile.chunk_size];
    for _ in 0..profile.max_links {
        ks.fill(&mut buf);
        fb.push_chunk(&buf, &mut NullSink).unwrap();
    }
    let at = fb.clone().finish(&mut NullSink).unwrap();
    ks.fill(&mut buf[..1]);
    fb.push_chunk(&buf[..1], &mut NullSink).unwrap();
    let over = fb.finish(&mut NullSink).unwrap();
    (at, over)
}

/// kubo `createDeterministicFiles`: names from the keystream over AlphabetEasy,
/// every file holding "x".
fn hamt_dir(profile: &Profile, seed: &str, files: usize, name_len: usize, last: usize) -> Imported {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz01234567890-_";
    let mut ks = Keystream::new(seed);
    let x = import_bytes(profile, b"x", &mut NullSink).unwrap();
    let mut dir = DirBuilder::new(profile, None);
    for i in 0..files {
        let len = if i == files - 1 { last } else { name_len };
        let mut buf = vec![0u8; len];
        ks.fill(&mut buf);
        let name: String = buf
            .iter()
            .map(|&b| ALPHABET[b as usize % ALPHABET.len()] as char)
            .collect();
        dir.add(&name, x).unwrap();
    }
    let mut sink = MemSink::default();
    let out = dir.finish(&mut sink).unwrap();
    assert!(sink.blocks.iter().all(|b| b.data.len() <= 1024 * 1024));
    out
}

#[test]
fn ipip499_small_file() {
    let v0 = import_bytes(&Profile::v0_2015(), b"hello world", &mut NullSink).unwrap();
    assert_eq!(
        v0.cid.to_string(),
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    );
    let v1 = import_bytes(&Profile::v1_2025(), b"hello world", &mut NullSink).unwrap();
    assert_eq!(
        v1.cid.to_string(),
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
}

#[test]
fn ipip499_chunk_size_v0() {
    let p = Profile::v0_2015();
    let at = import_keystream(&p, "chunk-v0-seed", p.chunk_size as u64);
    assert_eq!(
        at.cid.to_string(),
        "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"
    );
    let over = import_keystream(&p, "chunk-v0-seed", p.chunk_size as u64 + 1);
    assert_eq!(
        over.cid.to_string(),
        "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"
    );
}

#[test]
fn ipip499_chunk_size_v1() {
    let p = Profile::v1_2025();
    let at = import_keystream(&p, "chunk-v1-seed", p.chunk_size as u64);
    assert_eq!(
        at.cid.to_string(),
        "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"
    );
    let over = import_keystream(&p, "chunk-v1-seed", p.chunk_size as u64 + 1);
    assert_eq!(
        over.cid.to_string(),
        "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"
    );
}

#[test]
fn ipip499_max_links_v0() {
    let (at, over) = import_max_links_pair(&Profile::v0_2015(), "v0-seed");
    assert_eq!(
        at.cid.to_string(),
        "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"
    );
    assert_eq!(
        over.cid.to_string(),
        "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"
    );
}

#[test]
fn ipip499_max_links_v1() {
    let (at, over) = import_max_links_pair(&Profile::v1_2025(), "v1-2025-seed");
    assert_eq!(at.size, 1 << 30);
    assert_eq!(
        at.cid.to_string(),
        "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm"
    );
    assert_eq!(
        over.cid.to_string(),
        "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe"
    );
}

#[test]
fn ipip499_dirs_v0() {
    let p = Profile::v0_2015();
    let basic = hamt_dir(&p, "hamt-unixfs-v0-2015", 4096, 30, 30);
    assert_eq!(
        basic.cid.to_string(),
        "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN"
    );
    let sharded = hamt_dir(&p, "hamt-unixfs-v0-2015", 4033, 31, 31);
    assert_eq!(
        sharded.cid.to_string(),
        "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"
    );
}

#[test]
fn ipip499_dirs_v1() {
    let p = Profile::v1_2025();
    let basic = hamt_dir(&p, "hamt-unixfs-v1-2025", 4766, 11, 21);
    assert_eq!(
        basic.cid.to_string(),
        "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4"
    );
    let sharded = hamt_dir(&p, "hamt-unixfs-v1-2025", 4766, 11, 22);
    assert_eq!(
        sharded.cid.to_string(),
        "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"
    );
}

/// The corpus's `sharded/` (files `item{i}` holding `{i}`), built in memory
/// with modes as `--preserve-mode` records them (files 0644, directory 0755).
fn sharded_with_modes(profile: &Profile) -> Imported {
    let mut p = profile.clone();
    p.preserve_mode = true;
    let mut dir = DirBuilder::new(&p, Some(0o755));
    for i in 0..9000 {
        let mut fb = FileBuilder::new(&p, Some(0o644));
        fb.push_chunk(i.to_string().as_bytes(), &mut NullSink)
            .unwrap();
        dir.add(&format!("item{i}"), fb.finish(&mut NullSink).unwrap())
            .unwrap();
    }
    dir.finish(&mut NullSink).unwrap()
}

#[test]
fn kubo_preserve_mode_hamt() {
    // Kubo 0.42 `ipfs add -r --preserve-mode sharded` (default settings); the
    // HAMT root carries mode 0755, each file is a dag-pb leaf with 0644.
    assert_eq!(
        sharded_with_modes(&Profile::v0_2015()).cid.to_string(),
        "QmcNArq72m4tFxDYARDTjmTLhewv6LfCoU6BDirqrxj2rZ"
    );
    // Kubo 0.42 with `--profile=unixfs-v1-2025` and
    // `ipfs add -r --preserve-mode --raw-leaves=false sharded` (Kubo refuses
    // raw leaves with a mode).
    assert_eq!(
        sharded_with_modes(&Profile::v1_2025()).cid.to_string(),
        "bafybeihfbkmmvjih26jyayieacmugkc7i56br7ljvwstfji6kassqfthvy"
    );
}

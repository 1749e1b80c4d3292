//! The command index: which package, in which registry, provides a command.
//!
//! The command-not-found hooks (`shell-hooks/`, [`crate::cli`]'s hidden
//! `command-not-found` handler) ask it on every mistyped command, so a lookup
//! must be fast and must never touch the network: it reads one small file in
//! the prefix's state, `<prefix>/.ipkg/state/commands.idx`, and only three
//! small pieces of it. `ipkg update` (and `ipkg publish` to a local registry)
//! rebuild the file from every registry the client knows, after each
//! registry's signed index has been verified as usual.
//!
//! # Format (`docs/command-not-found.md`)
//!
//! A hash table laid out on disk, all integers little-endian:
//!
//! ```text
//! header   16 bytes  b"IPKGCNF\x01", bucket count B (u32, a power of two),
//!                    entry count (u32)
//! table    4·(B+1)   u32 file offsets: bucket b's records are [t[b], t[b+1])
//! records            grouped by bucket, sorted by (command, registry, package);
//!                    each is five length-prefixed (u8) strings: command,
//!                    registry, package, version, publisher
//! ```
//!
//! A lookup hashes the command (64-bit FNV-1a, the low bits pick the bucket),
//! reads the header, the bucket's two offsets and the bucket itself (about
//! four records): three `pread`s of a few hundred bytes, whatever the size of
//! the index.
//!
//! Non-goals: fuzzy matching ("did you mean"), and any trust decision. The
//! index only says where to look; installing goes through `ipkg install`,
//! which verifies everything again.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::sources::store::{BlockStore, StoreLock};
use crate::trust::manifest::check_command_name;

use super::{Error, Layout};
use crate::ops::publish::registry::Registry;
use crate::ops::resolve::subscriptions;

/// First bytes of every index file (format version 1).
pub const MAGIC: &[u8; 8] = b"IPKGCNF\x01";
const HEADER_LEN: usize = 16;
/// Average records per bucket the builder aims at.
const BUCKET_LOAD: usize = 4;
/// A bucket larger than this is a damaged file, not a real index.
const MAX_BUCKET_BYTES: usize = 1 << 20;

/// One way to get a command: a package release in a registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Candidate {
    pub command: String,
    /// The registry's local name (`ipkg install REGISTRY/PACKAGE`).
    pub registry: String,
    pub package: String,
    /// The newest installable version for this machine.
    pub version: String,
    /// The package publisher's key (`k51…`).
    pub publisher: String,
}

impl Candidate {
    /// What `ipkg install` takes to install exactly this release.
    pub fn install_spec(&self) -> String {
        format!("{}/{}@={}", self.registry, self.package, self.version)
    }

    fn fields(&self) -> [&str; 5] {
        [
            &self.command,
            &self.registry,
            &self.package,
            &self.version,
            &self.publisher,
        ]
    }
}

/// `<prefix>/.ipkg/state/commands.idx`.
pub fn index_path(layout: &Layout) -> PathBuf {
    layout.state_root().join("state").join("commands.idx")
}

/// The target this ipkg runs on, in manifest syntax (`x86_64-linux`).
pub fn host_target() -> String {
    let arch = match std::env::consts::ARCH {
        "arm" => "armv7",
        "x86" => "i686",
        other => other,
    };
    format!("{arch}-{}", std::env::consts::OS)
}

/// What [`rebuild`] did.
#[derive(Debug)]
pub struct RebuildReport {
    pub path: PathBuf,
    /// Registries read.
    pub registries: usize,
    /// Entries written (one per command and package).
    pub commands: usize,
    /// Registries left out because their index did not load or verify; the
    /// rest of the index is still written.
    pub skipped: Vec<(String, Error)>,
}

/// Rebuild the command index from every registry this client knows.
pub fn rebuild(layout: &Layout) -> Result<RebuildReport, Error> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    // Subscribed (remote) registries add one call here, e.g.
    // `registries += collect_subscribed(layout, &mut entries, &mut skipped)?;`
    let registries = collect_local(layout, &mut entries, &mut skipped)?;
    let commands = write(layout, entries)?;
    Ok(RebuildReport {
        path: index_path(layout),
        registries,
        commands,
        skipped,
    })
}

/// Add the commands of the local registries' packages (the newest
/// installable release of each, for this machine). Returns how many
/// registries were read.
pub fn collect_local(
    layout: &Layout,
    entries: &mut Vec<Candidate>,
    skipped: &mut Vec<(String, Error)>,
) -> Result<usize, Error> {
    let list = Registry::list(layout)?;
    // Subscribed registries trusted for bare names count too (`ipkg
    // registry add`); their indexes come from the store, no network.
    let subs: Vec<_> = subscriptions::list(layout)?
        .into_iter()
        .filter(|s| s.trusted())
        .collect();
    if list.is_empty() && subs.is_empty() {
        return Ok(0);
    }
    let _lock =
        StoreLock::shared(&layout.store_lock()).map_err(|e| Error::io(layout.store_lock(), e))?;
    let store =
        BlockStore::open(layout.blocks_dir()).map_err(|e| Error::io(layout.blocks_dir(), e))?;
    let target = host_target();
    let mut read = 0;
    let mut indexes = Vec::new();
    for reg in list {
        match reg.load_index(&store) {
            Ok(index) => indexes.push((reg.name.clone(), index)),
            Err(e) => skipped.push((reg.name.clone(), e)),
        }
    }
    for sub in subs {
        match sub.load_index(&store) {
            Ok(Some(index)) => indexes.push((sub.alias.clone(), index)),
            Ok(None) => {}
            Err(e) => skipped.push((sub.alias.clone(), e)),
        }
    }
    for (name, index) in indexes {
        read += 1;
        for doc in index.packages().values() {
            let Some(release) = doc.latest(&semver::VersionReq::STAR, &target) else {
                continue;
            };
            for command in &doc.commands {
                entries.push(Candidate {
                    command: command.clone(),
                    registry: name.clone(),
                    package: doc.name.clone(),
                    version: release.version.to_string(),
                    publisher: doc.publisher.clone(),
                });
            }
        }
    }
    Ok(read)
}

/// Write `entries` as the command index, atomically. Returns how many were
/// written (duplicates and entries with a field over 255 bytes are dropped).
pub fn write(layout: &Layout, entries: Vec<Candidate>) -> Result<usize, Error> {
    let path = index_path(layout);
    let (bytes, count) = encode(entries);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_readable(&path, &bytes).map_err(|e| Error::io(&path, e))?;
    Ok(count)
}

/// Temp file, fsync, rename; mode 0644, since every user's shell reads a
/// system prefix's index.
fn write_readable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Which registries provide `command`. A missing index is an empty one; no
/// network, no block store.
pub fn lookup(layout: &Layout, command: &str) -> Result<Vec<Candidate>, Error> {
    lookup_in(&index_path(layout), command)
}

/// [`lookup`] in the index file at `path`.
pub fn lookup_in(path: &Path, command: &str) -> Result<Vec<Candidate>, Error> {
    if check_command_name(command).is_err() {
        return Ok(Vec::new());
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let damaged = |reason: &str| Error::CommandIndex {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let read = |offset: u64, len: usize| -> Result<Vec<u8>, Error> {
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                damaged("it is cut short")
            } else {
                Error::io(path, e)
            }
        })?;
        Ok(buf)
    };
    let header = read(0, HEADER_LEN)?;
    if &header[..8] != MAGIC {
        return Err(damaged("it does not start with the command index magic"));
    }
    let buckets = u32_at(&header, 8);
    if buckets == 0 || !buckets.is_power_of_two() {
        return Err(damaged("its bucket count is not a power of two"));
    }
    let bucket = fnv1a(command.as_bytes()) & u64::from(buckets - 1);
    let pair = read(HEADER_LEN as u64 + 4 * bucket, 8)?;
    let (start, end) = (u32_at(&pair, 0), u32_at(&pair, 4));
    let len = end
        .checked_sub(start)
        .map(|l| l as usize)
        .filter(|&l| l <= MAX_BUCKET_BYTES)
        .ok_or_else(|| damaged("a bucket's offsets are out of order"))?;
    let records = read(u64::from(start), len)?;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let (fields, next) =
            parse_record(&records, pos).ok_or_else(|| damaged("a record is cut short"))?;
        pos = next;
        if fields[0] == command.as_bytes() {
            let s = |i: usize| String::from_utf8_lossy(fields[i]).into_owned();
            out.push(Candidate {
                command: s(0),
                registry: s(1),
                package: s(2),
                version: s(3),
                publisher: s(4),
            });
        }
    }
    Ok(out)
}

/// The five fields of the record at `pos` and where the next one starts.
fn parse_record(buf: &[u8], mut pos: usize) -> Option<([&[u8]; 5], usize)> {
    let mut fields: [&[u8]; 5] = [&[]; 5];
    for field in &mut fields {
        let len = usize::from(*buf.get(pos)?);
        *field = buf.get(pos + 1..pos + 1 + len)?;
        pos += 1 + len;
    }
    Some((fields, pos))
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// 64-bit FNV-1a: tiny, stable across versions and platforms, and good
/// enough to spread command names over buckets.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The index file for `entries`, and how many entries it holds.
pub fn encode(mut entries: Vec<Candidate>) -> (Vec<u8>, usize) {
    entries.retain(|c| c.fields().iter().all(|f| f.len() <= 255));
    let buckets = (entries.len() / BUCKET_LOAD).max(1).next_power_of_two();
    let mask = (buckets - 1) as u64;
    let mut keyed: Vec<(u64, Candidate)> = entries
        .into_iter()
        .map(|c| (fnv1a(c.command.as_bytes()) & mask, c))
        .collect();
    keyed.sort();
    keyed.dedup();
    let table_len = 4 * (buckets + 1);
    let mut records = Vec::new();
    let mut table = Vec::with_capacity(buckets + 1);
    let mut it = keyed.iter().peekable();
    let base = HEADER_LEN + table_len;
    for b in 0..buckets as u64 {
        table.push(base + records.len());
        while let Some((_, c)) = it.next_if(|(k, _)| *k == b) {
            for f in c.fields() {
                records.push(f.len() as u8);
                records.extend_from_slice(f.as_bytes());
            }
        }
    }
    table.push(base + records.len());
    let mut out = Vec::with_capacity(base + records.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(buckets as u32).to_le_bytes());
    out.extend_from_slice(&(keyed.len() as u32).to_le_bytes());
    for offset in table {
        out.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    out.extend_from_slice(&records);
    (out, keyed.len())
}

/// Read a list of candidates, one per line, five tab-separated fields
/// (command, registry, package, version, publisher): how benchmarks and tests
/// build large indexes through [`write`] without publishing thousands of
/// packages.
pub fn parse_list(text: &str, path: &Path) -> Result<Vec<Candidate>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [command, registry, package, version, publisher] = f[..] else {
            return Err(Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "line {}: expected 5 tab-separated fields (command, registry, package, version, publisher), got {}",
                    i + 1,
                    f.len()
                ),
            });
        };
        out.push(Candidate {
            command: command.to_owned(),
            registry: registry.to_owned(),
            package: package.to_owned(),
            version: version.to_owned(),
            publisher: publisher.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(command: &str, registry: &str, package: &str) -> Candidate {
        Candidate {
            command: command.into(),
            registry: registry.into(),
            package: package.into(),
            version: "1.2.3".into(),
            publisher: "k51pub".into(),
        }
    }

    fn with_index(entries: Vec<Candidate>) -> (tempfile::TempDir, PathBuf, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands.idx");
        let (bytes, n) = encode(entries);
        std::fs::write(&path, bytes).unwrap();
        (dir, path, n)
    }

    #[test]
    fn hits_misses_and_several_candidates() {
        let mut entries: Vec<Candidate> = (0..1000)
            .map(|i| cand(&format!("cmd{i}"), "main", &format!("pkg{i}")))
            .collect();
        entries.push(cand("xmr", "alice", "xmr"));
        entries.push(cand("xmr", "bob", "monero"));
        entries.push(cand("xmr", "alice", "xmr")); // duplicate
        let (_d, path, n) = with_index(entries);
        assert_eq!(n, 1002);
        for i in (0..1000).step_by(37) {
            let got = lookup_in(&path, &format!("cmd{i}")).unwrap();
            assert_eq!(
                got,
                vec![cand(&format!("cmd{i}"), "main", &format!("pkg{i}"))]
            );
        }
        let xmr = lookup_in(&path, "xmr").unwrap();
        assert_eq!(
            xmr,
            vec![cand("xmr", "alice", "xmr"), cand("xmr", "bob", "monero")]
        );
        assert_eq!(xmr[0].install_spec(), "alice/xmr@=1.2.3");
        assert!(lookup_in(&path, "nope").unwrap().is_empty());
        assert!(lookup_in(&path, "../x").unwrap().is_empty());
        assert!(
            lookup_in(&path.with_extension("none"), "xmr")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn empty_index_and_damage() {
        let (_d, path, n) = with_index(Vec::new());
        assert_eq!(n, 0);
        assert!(lookup_in(&path, "x").unwrap().is_empty());
        let (_d2, path, _) = with_index(vec![cand("a", "r", "p")]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        let e = lookup_in(&path, "a").unwrap_err().to_string();
        assert!(e.contains("commands.idx"), "{e}");
        std::fs::write(&path, b"garbage garbage garbage").unwrap();
        let e = lookup_in(&path, "a").unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
    }

    proptest::proptest! {
        /// Every entry written is found, with its siblings, and nothing else.
        #[test]
        fn every_entry_is_found(
            entries in proptest::collection::vec(
                ("[a-z][a-z0-9._+-]{0,12}", "[a-c]", "[a-z]{1,6}"), 0..300),
            probe in "[a-z][a-z0-9]{0,12}",
        ) {
            let entries: Vec<Candidate> =
                entries.iter().map(|(c, r, p)| cand(c, r, p)).collect();
            let (_d, path, _) = with_index(entries.clone());
            let mut expected = entries.clone();
            expected.sort();
            expected.dedup();
            for e in &entries {
                let want: Vec<Candidate> =
                    expected.iter().filter(|x| x.command == e.command).cloned().collect();
                proptest::prop_assert_eq!(lookup_in(&path, &e.command).unwrap(), want);
            }
            let want: Vec<Candidate> =
                expected.iter().filter(|x| x.command == probe).cloned().collect();
            proptest::prop_assert_eq!(lookup_in(&path, &probe).unwrap(), want);
        }
    }

    #[test]
    fn list_format() {
        let text = "# comment\nxmr\talice\txmr\t1.2.3\tk51x\n\n";
        let got = parse_list(text, Path::new("l.tsv")).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].publisher, "k51x");
        let e = parse_list("a\tb\n", Path::new("l.tsv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("l.tsv"), "{e}");
    }
}

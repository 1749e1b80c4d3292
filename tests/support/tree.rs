//! Deterministic random file trees, and a byte-for-byte tree comparison.
//!
//! [`gen_tree`] builds a tree from a seed and a [`TreeSpec`]: files whose sizes
//! sit on chunk and link-count boundaries, nested and empty directories,
//! relative symlinks that stay inside the tree, executable files, hidden names,
//! and directories wide enough to become HAMT shards. The same seed and spec
//! always give the same tree (names, bytes, modes and links), so a failing
//! case can be regenerated from the seed in its name.
//!
//! Modes are set explicitly (files 0644 or 0755, directories 0755) so the
//! umask does not change what `--preserve-mode` records.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
/// `unixfs-v0-2015` chunk size and links per file node.
pub const V0_CHUNK: u64 = 256 * KIB;
pub const V0_LINKS: u64 = 174;
/// `unixfs-v1-2025` chunk size and links per file node.
pub const V1_CHUNK: u64 = MIB;
pub const V1_LINKS: u64 = 1024;

/// xorshift64*: tiny, fast, deterministic; plenty for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Spread small seeds over the state and keep it non-zero.
        let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
        s = (s ^ (s >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        s = (s ^ (s >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((s ^ (s >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A directory with many entries, to cross the HAMT threshold (or sit exactly
/// on it).
#[derive(Debug, Clone)]
pub struct WideDir {
    /// Number of files.
    pub entries: usize,
    /// Byte length of every name (ASCII).
    pub name_len: usize,
    /// How many of the names (the last ones) are one byte longer, to step just
    /// over a threshold.
    pub longer: usize,
    /// Size of every file (keep < 128 so each link's Tsize is a one-byte varint
    /// and the block size is easy to reason about).
    pub file_size: u64,
    /// Put the wide directory at the root itself rather than in a subdirectory.
    pub at_root: bool,
}

/// The shape of a generated tree.
#[derive(Debug, Clone)]
pub struct TreeSpec {
    /// A short name for messages.
    pub name: &'static str,
    /// Deepest level of subdirectories below the root.
    pub depth: u32,
    /// Most entries in one (ordinary) directory.
    pub fanout: u32,
    /// File sizes to draw from; every size appears at least once when the tree
    /// has room for it.
    pub sizes: Vec<u64>,
    pub symlinks: bool,
    pub executables: bool,
    pub hidden: bool,
    pub empty_dirs: bool,
    /// Allow non-ASCII and punctuation in names.
    pub odd_names: bool,
    pub wide: Option<WideDir>,
}

impl TreeSpec {
    /// A bit of everything, small files.
    pub fn mixed() -> TreeSpec {
        TreeSpec {
            name: "mixed",
            depth: 3,
            fanout: 7,
            sizes: vec![0, 1, 2, 13, 100, 1000, 4096, 10_000, 65_536, 100_003],
            symlinks: true,
            executables: true,
            hidden: true,
            empty_dirs: true,
            odd_names: true,
            wide: None,
        }
    }

    /// Files exactly on and next to the chunk sizes of both profiles.
    pub fn chunk_boundaries() -> TreeSpec {
        TreeSpec {
            name: "chunk-boundaries",
            depth: 2,
            fanout: 5,
            sizes: vec![
                0,
                1,
                V0_CHUNK - 1,
                V0_CHUNK,
                V0_CHUNK + 1,
                V1_CHUNK - 1,
                V1_CHUNK,
                V1_CHUNK + 1,
                2 * V1_CHUNK + 7,
            ],
            symlinks: true,
            executables: true,
            hidden: false,
            empty_dirs: true,
            odd_names: false,
            wide: None,
        }
    }

    /// Files on the chunk and link-count boundaries for `--chunker size-CHUNK`:
    /// with a small chunk, 174 and 1024 links are reachable without huge files
    /// (1024 × 1 KiB = 1 MiB), and so is a third level for v0.
    pub fn small_chunk_boundaries(chunk: u64) -> TreeSpec {
        let mut sizes = vec![0, 1, chunk - 1, chunk, chunk + 1];
        for links in [V0_LINKS, V1_LINKS] {
            sizes.extend([links * chunk - 1, links * chunk, links * chunk + 1]);
        }
        // Three levels for v0: 174 × 174 chunks.
        sizes.extend([V0_LINKS * V0_LINKS * chunk, V0_LINKS * V0_LINKS * chunk + 1]);
        TreeSpec {
            name: "small-chunk-boundaries",
            depth: 1,
            fanout: 4,
            sizes,
            symlinks: false,
            executables: true,
            hidden: false,
            empty_dirs: false,
            odd_names: false,
            wide: None,
        }
    }

    /// Deep and narrow.
    pub fn deep() -> TreeSpec {
        TreeSpec {
            name: "deep",
            depth: 12,
            fanout: 3,
            sizes: vec![0, 5, 300, 4000],
            symlinks: true,
            executables: false,
            hidden: false,
            empty_dirs: true,
            odd_names: false,
            wide: None,
        }
    }

    /// An empty root directory.
    pub fn empty() -> TreeSpec {
        TreeSpec {
            name: "empty",
            depth: 0,
            fanout: 0,
            sizes: vec![],
            symlinks: false,
            executables: false,
            hidden: false,
            empty_dirs: false,
            odd_names: false,
            wide: None,
        }
    }

    /// Mostly hidden names and symlinks: the default add drops much of it.
    pub fn hidden_heavy() -> TreeSpec {
        TreeSpec {
            name: "hidden-heavy",
            depth: 3,
            fanout: 6,
            sizes: vec![0, 7, 777, 7777],
            symlinks: true,
            executables: true,
            hidden: true,
            empty_dirs: true,
            odd_names: true,
            wide: None,
        }
    }

    /// A subdirectory of 4100 files with 40-byte names: a HAMT under both
    /// profiles, several levels deep.
    pub fn sharded() -> TreeSpec {
        TreeSpec {
            name: "sharded",
            depth: 1,
            fanout: 4,
            sizes: vec![0, 3, 1000],
            symlinks: true,
            executables: true,
            hidden: true,
            empty_dirs: true,
            odd_names: false,
            wide: Some(WideDir {
                entries: 4100,
                name_len: 40,
                longer: 0,
                file_size: 9,
                at_root: false,
            }),
        }
    }

    /// A root directory exactly at (`over` = false) or one byte over (`over`
    /// = true) the `unixfs-v0-2015` HAMT threshold: the links estimate is
    /// Σ(len(name) + len(cid)) = 4096 × (30 + 34) = 262144 = 256 KiB, and Kubo
    /// shards only when the estimate is strictly greater.
    pub fn v0_hamt_boundary(over: bool) -> TreeSpec {
        TreeSpec {
            name: if over {
                "v0-hamt-boundary-over"
            } else {
                "v0-hamt-boundary-at"
            },
            wide: Some(WideDir {
                entries: 4096,
                name_len: 30,
                longer: usize::from(over),
                file_size: 5,
                at_root: true,
            }),
            ..TreeSpec::empty()
        }
    }

    /// A root directory at or just over the `unixfs-v1-2025` HAMT threshold,
    /// estimated by the size of the dag-pb block: each link to a raw leaf of
    /// under 128 bytes encodes to 44 + len(name) bytes, the UnixFS data to 4,
    /// so 4369 links with 16-byte names make 4 + 4369 × 60 = 262144 bytes.
    pub fn v1_hamt_boundary(over: bool) -> TreeSpec {
        TreeSpec {
            name: if over {
                "v1-hamt-boundary-over"
            } else {
                "v1-hamt-boundary-at"
            },
            wide: Some(WideDir {
                entries: 4369,
                name_len: 16,
                longer: usize::from(over),
                file_size: 5,
                at_root: true,
            }),
            ..TreeSpec::empty()
        }
    }

    /// One 174 × 256 KiB + 1 byte file (~45 MB: the first v0 file that needs a
    /// second level of links) next to a few small files. Use sparingly.
    pub fn big() -> TreeSpec {
        TreeSpec {
            name: "big",
            depth: 1,
            fanout: 3,
            sizes: vec![V0_LINKS * V0_CHUNK + 1, 0, 17],
            symlinks: false,
            executables: true,
            hidden: false,
            empty_dirs: false,
            odd_names: false,
            wide: None,
        }
    }
}

/// What [`gen_tree`] made.
#[derive(Debug, Default, Clone)]
pub struct TreeStats {
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub bytes: u64,
}

/// Build a tree at `root` (which must not exist yet) from `seed` and `spec`.
pub fn gen_tree(seed: u64, root: &Path, spec: &TreeSpec) -> TreeStats {
    assert!(
        !root.exists(),
        "gen_tree: {} already exists",
        root.display()
    );
    let mut g = Gen {
        rng: Rng::new(seed),
        spec,
        stats: TreeStats::default(),
        sizes_left: spec.sizes.clone(),
        targets: Vec::new(),
        dirs: Vec::new(),
    };
    mkdir(root);
    g.stats.dirs += 1;
    g.dirs.push(PathBuf::new());
    g.fill_dir(root, Path::new(""), 0);
    // Sizes not drawn yet (small trees) go at the root, so every boundary in
    // the spec is present.
    let mut names = existing_names(root);
    while let Some(size) = g.sizes_left.pop() {
        let name = g.fresh_name(&mut names, false);
        g.write_file(root, Path::new(""), &name, size);
    }
    if let Some(wide) = &spec.wide {
        let (dir, rel) = if wide.at_root {
            (root.to_path_buf(), PathBuf::new())
        } else {
            let name = g.fresh_name(&mut names, false);
            mkdir(&root.join(&name));
            g.stats.dirs += 1;
            (root.join(&name), PathBuf::from(&name))
        };
        g.wide_dir(&dir, &rel, wide);
    }
    if spec.symlinks {
        g.symlinks(root);
    }
    set_mode(root, 0o755);
    g.stats
}

struct Gen<'a> {
    rng: Rng,
    spec: &'a TreeSpec,
    stats: TreeStats,
    /// Sizes not yet used; drawn first so each appears once.
    sizes_left: Vec<u64>,
    /// Relative paths of files and directories, for symlink targets.
    targets: Vec<PathBuf>,
    /// Relative paths of directories (the root is the empty path).
    dirs: Vec<PathBuf>,
}

impl Gen<'_> {
    fn fill_dir(&mut self, dir: &Path, rel: &Path, level: u32) {
        if self.spec.fanout == 0 {
            return;
        }
        let n = 1 + self.rng.below(u64::from(self.spec.fanout));
        let mut names = BTreeSet::new();
        for _ in 0..n {
            let hidden = self.spec.hidden && self.rng.chance(15);
            let name = self.fresh_name(&mut names, hidden);
            let child_rel = rel.join(&name);
            let make_dir = level < self.spec.depth && self.rng.chance(35);
            if make_dir {
                let path = dir.join(&name);
                mkdir(&path);
                self.stats.dirs += 1;
                self.dirs.push(child_rel.clone());
                self.targets.push(child_rel.clone());
                let empty = self.spec.empty_dirs && self.rng.chance(20);
                if !empty {
                    self.fill_dir(&path, &child_rel, level + 1);
                }
                set_mode(&path, 0o755);
            } else if !self.spec.sizes.is_empty() {
                let size = match self.sizes_left.pop() {
                    Some(s) => s,
                    None => *self.rng.pick(&self.spec.sizes),
                };
                self.write_file(dir, rel, &name, size);
            }
        }
        // Keep going down when the dice made the tree shallower than asked.
        if level < self.spec.depth && !self.dirs.iter().any(|d| d.parent() == Some(rel)) {
            let mut names = existing_names(dir);
            let name = self.fresh_name(&mut names, false);
            let path = dir.join(&name);
            mkdir(&path);
            self.stats.dirs += 1;
            let child_rel = rel.join(&name);
            self.dirs.push(child_rel.clone());
            self.targets.push(child_rel.clone());
            self.fill_dir(&path, &child_rel, level + 1);
            set_mode(&path, 0o755);
        }
    }

    fn write_file(&mut self, dir: &Path, rel: &Path, name: &str, size: u64) {
        let path = dir.join(name);
        write_random_file(&path, self.rng.next_u64(), size);
        let exec = self.spec.executables && self.rng.chance(30);
        set_mode(&path, if exec { 0o755 } else { 0o644 });
        self.stats.files += 1;
        self.stats.bytes += size;
        self.targets.push(rel.join(name));
    }

    fn wide_dir(&mut self, dir: &Path, rel: &Path, wide: &WideDir) {
        let mut data = vec![0u8; wide.file_size as usize];
        for i in 0..wide.entries {
            let len = if i >= wide.entries - wide.longer {
                wide.name_len + 1
            } else {
                wide.name_len
            };
            // A unique ASCII name of exactly `len` bytes: random letters then
            // the index. Never starts with a dot.
            let index = format!("{i:05}");
            assert!(len > index.len(), "wide dir names must be longer than 5");
            let mut name = String::with_capacity(len);
            while name.len() < len - index.len() {
                let c = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
                    [self.rng.below(64) as usize];
                name.push(char::from(c));
            }
            name.push_str(&index);
            self.rng.fill(&mut data);
            let path = dir.join(&name);
            fs::write(&path, &data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            set_mode(&path, 0o644);
            self.stats.files += 1;
            self.stats.bytes += wide.file_size;
            if i % 1000 == 0 {
                self.targets.push(rel.join(&name));
            }
        }
    }

    /// Relative symlinks to files and directories elsewhere in the tree, never
    /// leaving it.
    fn symlinks(&mut self, root: &Path) {
        if self.targets.is_empty() {
            return;
        }
        let count = 1 + self.rng.below(4);
        for _ in 0..count {
            let from_dir = self.rng.pick(&self.dirs).clone();
            let target = self.rng.pick(&self.targets).clone();
            // Up to the root, then down to the target.
            let mut link = PathBuf::new();
            for _ in from_dir.components() {
                link.push("..");
            }
            link.push(&target);
            let dir = root.join(&from_dir);
            let mut names = existing_names(&dir);
            let hidden = self.spec.hidden && self.rng.chance(10);
            let name = self.fresh_name(&mut names, hidden);
            let path = dir.join(name);
            std::os::unix::fs::symlink(&link, &path).unwrap_or_else(|e| {
                panic!("symlink {} -> {}: {e}", path.display(), link.display())
            });
            self.stats.symlinks += 1;
        }
        // And one to a sibling by its bare name, the common case in packages.
        let dir = self.rng.pick(&self.dirs).clone();
        let siblings: Vec<String> = existing_names(&root.join(&dir)).into_iter().collect();
        if !siblings.is_empty() {
            let target = self.rng.pick(&siblings).clone();
            let mut names = existing_names(&root.join(&dir));
            let name = self.fresh_name(&mut names, false);
            let path = root.join(&dir).join(name);
            std::os::unix::fs::symlink(&target, &path)
                .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", path.display()));
            self.stats.symlinks += 1;
        }
    }

    /// A name not in `taken`, added to it.
    fn fresh_name(&mut self, taken: &mut BTreeSet<String>, hidden: bool) -> String {
        const PLAIN: &[&str] = &[
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "m", "n", "o", "p", "r", "s", "t",
            "u", "x", "y", "z", "0", "1", "2", "7", "9", "A", "Q", "Z", "-", "_", ".",
        ];
        const ODD: &[&str] = &[
            " ", "é", "ß", "日本", "ü", "%", "+", "=", ",", "@", "~", "#", "(", ")", "'",
        ];
        loop {
            let len = 1 + self.rng.below(20);
            let mut name = String::new();
            if hidden {
                name.push('.');
            }
            for i in 0..len {
                let odd = self.spec.odd_names && self.rng.chance(8);
                let piece = if odd {
                    *self.rng.pick(ODD)
                } else {
                    *self.rng.pick(PLAIN)
                };
                // Only hidden names start with a dot.
                if i == 0 && !hidden && piece == "." {
                    continue;
                }
                name.push_str(piece);
            }
            if name.is_empty() || name == "." || name == ".." || name.ends_with(' ') {
                continue;
            }
            if taken.insert(name.clone()) {
                return name;
            }
        }
    }
}

fn existing_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.expect("reading a directory entry")
                .file_name()
                .into_string()
                .expect("generated names are UTF-8")
        })
        .collect()
}

fn mkdir(path: &Path) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Write `size` pseudo-random bytes derived from `seed` to `path`.
pub fn write_random_file(path: &Path, seed: u64, size: u64) {
    let file = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        w.write_all(&buf[..n])
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        left -= n as u64;
    }
    w.flush()
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// What [`assert_same_tree`] compares besides names, bytes and link targets.
#[derive(Debug, Clone, Copy)]
pub struct Compare {
    /// Expect hidden entries (names starting with `.`) in the copy; when false
    /// they are ignored in `expected` (as `add` without `--hidden` drops them).
    pub hidden: bool,
    /// Compare the executable bit of regular files.
    pub exec_bits: bool,
}

impl Compare {
    /// Everything: hidden entries and executable bits.
    pub const EXACT: Compare = Compare {
        hidden: true,
        exec_bits: true,
    };
    /// What a default add keeps: no hidden entries, no modes.
    pub const DEFAULT_ADD: Compare = Compare {
        hidden: false,
        exec_bits: false,
    };
}

/// Panic, listing every difference, unless `actual` holds the same tree as
/// `expected`: same names, same file bytes, same symlink targets, same
/// (empty) directories, and per `cmp` the same executable bits.
#[track_caller]
pub fn assert_same_tree(expected: &Path, actual: &Path, cmp: Compare) {
    let mut diffs = Vec::new();
    compare_dir(expected, actual, Path::new(""), cmp, &mut diffs);
    if !diffs.is_empty() {
        let total = diffs.len();
        diffs.truncate(30);
        panic!(
            "{} differs from {} ({total} differences):\n  {}",
            actual.display(),
            expected.display(),
            diffs.join("\n  ")
        );
    }
}

fn list(dir: &Path, hidden: bool) -> Result<BTreeSet<String>, String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("{e}"))?;
    let mut names = BTreeSet::new();
    for e in rd {
        let e = e.map_err(|e| format!("{e}"))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if hidden || !name.starts_with('.') {
            names.insert(name);
        }
    }
    Ok(names)
}

fn compare_dir(exp: &Path, act: &Path, rel: &Path, cmp: Compare, diffs: &mut Vec<String>) {
    let want = match list(exp, cmp.hidden) {
        Ok(n) => n,
        Err(e) => return diffs.push(format!("{}: cannot read expected dir: {e}", rel.display())),
    };
    // The copy never has hidden entries the original lacked, so list them all.
    let have = match list(act, true) {
        Ok(n) => n,
        Err(e) => return diffs.push(format!("{}: not a readable directory: {e}", rel.display())),
    };
    for extra in have.difference(&want) {
        diffs.push(format!("{}: unexpected entry", rel.join(extra).display()));
    }
    for name in &want {
        let r = rel.join(name);
        let (e, a) = (exp.join(name), act.join(name));
        if !have.contains(name) {
            diffs.push(format!("{}: missing", r.display()));
            continue;
        }
        let em = fs::symlink_metadata(&e).expect("stat of expected entry");
        let am = match fs::symlink_metadata(&a) {
            Ok(m) => m,
            Err(err) => {
                diffs.push(format!("{}: cannot stat: {err}", r.display()));
                continue;
            }
        };
        let (et, at) = (em.file_type(), am.file_type());
        if et.is_symlink() {
            if !at.is_symlink() {
                diffs.push(format!("{}: expected a symlink, found {at:?}", r.display()));
                continue;
            }
            let (tl, al) = (fs::read_link(&e), fs::read_link(&a));
            if tl.as_ref().ok() != al.as_ref().ok() {
                diffs.push(format!(
                    "{}: symlink target {al:?}, expected {tl:?}",
                    r.display()
                ));
            }
        } else if et.is_dir() {
            if !at.is_dir() {
                diffs.push(format!(
                    "{}: expected a directory, found {at:?}",
                    r.display()
                ));
                continue;
            }
            compare_dir(&e, &a, &r, cmp, diffs);
        } else {
            if !at.is_file() {
                diffs.push(format!("{}: expected a file, found {at:?}", r.display()));
                continue;
            }
            if em.len() != am.len() {
                diffs.push(format!(
                    "{}: {} bytes, expected {}",
                    r.display(),
                    am.len(),
                    em.len()
                ));
            } else if let Some(off) = first_difference(&e, &a) {
                diffs.push(format!("{}: bytes differ at offset {off}", r.display()));
            }
            if cmp.exec_bits {
                let (ex, ax) = (em.mode() & 0o111 != 0, am.mode() & 0o111 != 0);
                if ex != ax {
                    diffs.push(format!(
                        "{}: mode {:o}, expected executable = {ex}",
                        r.display(),
                        am.mode() & 0o7777
                    ));
                }
            }
        }
    }
}

use std::os::unix::fs::MetadataExt;

/// The offset of the first differing byte of two files of equal length.
fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let open = |p: &Path| fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a), open(b));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba);
        let m = read_full(&mut fb, &mut bb);
        if let Some(i) = ba[..n.min(m)]
            .iter()
            .zip(&bb[..n.min(m)])
            .position(|(x, y)| x != y)
        {
            return Some(offset + i as u64);
        }
        if n != m {
            return Some(offset + n.min(m) as u64);
        }
        if n == 0 {
            return None;
        }
        offset += n as u64;
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    n
}

//! `ipkg add`: import files and directories into UnixFS, as `ipfs add -r` does.
//!
//! The walk is here (it does I/O); the DAG is made by the pure importer in
//! [`crate::content::importer`]. Directory entries are visited in byte order of
//! their names, which does not change the CID (links are sorted) but makes runs
//! and errors reproducible.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc;

use crate::content::BlockSink;
use crate::content::importer::{DirBuilder, FileBuilder, Imported, symlink};
use crate::content::profile::Profile;

use super::{Error, Progress};

/// What to do with each file's permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModePolicy {
    /// Follow the profile (`preserve_mode`): record the bits as they are.
    AsProfile,
    /// Record 0755 for anything executable by its owner and 0644 otherwise,
    /// 0755 for directories: what `ipkg pack` does, so a package runs after a
    /// plain fetch.
    Normalised,
}

/// Options for one import.
#[derive(Debug, Clone)]
pub struct AddOptions {
    pub profile: Profile,
    pub modes: ModePolicy,
    /// Names skipped at any depth, hidden or not (`ipkg pack` skips `.git`).
    pub skip_names: &'static [&'static str],
}

/// Import `path` (a file, a directory or a symlink) and return its root.
pub fn add_path(
    path: &Path,
    opts: &AddOptions,
    sink: &mut dyn BlockSink,
    progress: &dyn Progress,
) -> Result<Imported, Error> {
    add_path_listing(path, opts, sink, progress, &mut |_, _| {})
}

/// Like [`add_path`], calling `on_entry` with each entry's path (starting with
/// `path`'s own name, as `ipfs add` prints it) once the entry is imported,
/// children before their directory.
pub fn add_path_listing(
    path: &Path,
    opts: &AddOptions,
    sink: &mut dyn BlockSink,
    progress: &dyn Progress,
    on_entry: &mut dyn FnMut(&str, &Imported),
) -> Result<Imported, Error> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    let rel = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut walk = Walk {
        opts,
        sink,
        progress,
        buf: vec![0u8; opts.profile.chunk_size],
        on_entry,
    };
    walk.entry(path, &meta, &rel)
}

struct Walk<'a> {
    opts: &'a AddOptions,
    sink: &'a mut dyn BlockSink,
    progress: &'a dyn Progress,
    buf: Vec<u8>,
    on_entry: &'a mut dyn FnMut(&str, &Imported),
}

impl Walk<'_> {
    fn entry(&mut self, path: &Path, meta: &fs::Metadata, rel: &str) -> Result<Imported, Error> {
        let imported = add_entry(path, meta, rel, self)?;
        (self.on_entry)(rel, &imported);
        Ok(imported)
    }
}

fn mode_for(meta: &fs::Metadata, opts: &AddOptions) -> Option<u32> {
    let perms = meta.permissions().mode() & 0o7777;
    match opts.modes {
        ModePolicy::AsProfile if opts.profile.preserve_mode => Some(perms),
        ModePolicy::AsProfile => None,
        ModePolicy::Normalised if meta.is_dir() => Some(0o755),
        ModePolicy::Normalised if perms & 0o100 != 0 => Some(0o755),
        ModePolicy::Normalised => Some(0o644),
    }
}

fn add_entry(
    path: &Path,
    meta: &fs::Metadata,
    rel: &str,
    walk: &mut Walk<'_>,
) -> Result<Imported, Error> {
    let opts = walk.opts;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(|e| Error::io(path, e))?;
        let target = target.to_str().ok_or_else(|| Error::Unsafe {
            path: path.display().to_string(),
            reason: "the symlink target is not valid UTF-8".into(),
        })?;
        return symlink(&opts.profile, target, walk.sink).map_err(|e| Error::io(path, e));
    }
    if ft.is_file() {
        return add_file(path, meta, opts, walk.sink, walk.progress, &mut walk.buf);
    }
    if ft.is_dir() {
        let mut dir = DirBuilder::new(&opts.profile, mode_for(meta, opts));
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            names.push(entry.file_name());
        }
        names.sort();
        for name in names {
            let child = path.join(&name);
            let name = name.to_str().ok_or_else(|| Error::Unsafe {
                path: child.display().to_string(),
                reason: "the file name is not valid UTF-8".into(),
            })?;
            if (!opts.profile.hidden && name.starts_with('.')) || opts.skip_names.contains(&name) {
                continue;
            }
            let meta = fs::symlink_metadata(&child).map_err(|e| Error::io(&child, e))?;
            let imported = walk.entry(&child, &meta, &format!("{rel}/{name}"))?;
            dir.add(name, imported).map_err(|e| Error::Unsafe {
                path: child.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        return dir.finish(walk.sink).map_err(|e| Error::io(path, e));
    }
    let kind = if ft.is_fifo() {
        "named pipe"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    };
    Err(Error::UnsupportedFileType {
        path: path.to_path_buf(),
        kind,
    })
}

fn add_file(
    path: &Path,
    meta: &fs::Metadata,
    opts: &AddOptions,
    sink: &mut dyn BlockSink,
    progress: &dyn Progress,
    buf: &mut [u8],
) -> Result<Imported, Error> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut builder = FileBuilder::new(&opts.profile, mode_for(meta, opts));
    let chunk = buf.len();
    if meta.len() > 2 * chunk as u64 {
        add_large_file(path, &mut file, &mut builder, chunk, sink, progress)?;
        return builder.finish(sink).map_err(|e| Error::io(path, e));
    }
    loop {
        let n = read_full(&mut file, buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        builder
            .push_chunk(&buf[..n], sink)
            .map_err(|e| Error::io(path, e))?;
        progress.advance(n as u64);
        if n < buf.len() {
            break;
        }
    }
    builder.finish(sink).map_err(|e| Error::io(path, e))
}

/// A large file goes through a two-stage pipeline: a thread reads batches of
/// chunks (one chunk per core) while this thread hashes the previous batch on
/// every core. Memory stays at three batches whatever the file's size.
fn add_large_file(
    path: &Path,
    file: &mut File,
    builder: &mut FileBuilder,
    chunk: usize,
    sink: &mut dyn BlockSink,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let width = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    std::thread::scope(|scope| {
        let (batch_tx, batch_rx) = mpsc::sync_channel::<io::Result<Vec<Vec<u8>>>>(1);
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<Vec<u8>>>();
        scope.spawn(move || {
            loop {
                let mut batch = spare_rx
                    .try_recv()
                    .unwrap_or_else(|_| (0..width).map(|_| Vec::new()).collect());
                let mut filled = 0;
                let mut at_end = false;
                for buf in batch.iter_mut() {
                    buf.resize(chunk, 0);
                    match read_full(file, buf) {
                        Ok(n) => {
                            buf.truncate(n);
                            if n > 0 {
                                filled += 1;
                            }
                            if n < chunk {
                                at_end = true;
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = batch_tx.send(Err(e));
                            return;
                        }
                    }
                }
                batch.truncate(filled);
                if !batch.is_empty() && batch_tx.send(Ok(batch)).is_err() {
                    return;
                }
                if at_end {
                    return;
                }
            }
        });
        for batch in batch_rx {
            let batch = batch.map_err(|e| Error::io(path, e))?;
            let chunks: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            builder
                .push_chunks(&chunks, sink)
                .map_err(|e| Error::io(path, e))?;
            progress.advance(chunks.iter().map(|c| c.len() as u64).sum());
            let _ = spare_tx.send(batch);
        }
        Ok(())
    })
}

/// Read until `buf` is full or the file ends (a fixed-size chunker).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The total size of the regular files under `path`, for a progress bar.
pub fn total_size(path: &Path, hidden: bool) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| hidden || !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| total_size(&e.path(), hidden))
        .sum()
}

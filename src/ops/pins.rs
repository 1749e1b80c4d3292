//! Pins: the roots that garbage collection keeps, each with the labels of
//! whoever needs it (`add`, `car-import`, `ipkg/xmr@1.2.3`, …).
//!
//! One small file per pinned CID under `<prefix>/.ipkg/pins`, named by the CID
//! (CIDv1 base32) and holding one label per line. A CID stays pinned while any
//! label remains. Files are replaced atomically (temp file + rename).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::content::Cid;
use crate::content::cid::parse;

use super::Error;

#[derive(Debug, Clone)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Pins, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Pins { dir })
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        self.dir
            .join(Cid::new_v1(cid.codec(), *cid.hash()).to_string())
    }

    /// The labels a CID is pinned with (empty when it is not pinned).
    pub fn labels(&self, cid: &Cid) -> Result<BTreeSet<String>, Error> {
        let path = self.path(cid);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(Error::Damaged {
                what: format!("the pin file of `{cid}`"),
                path,
                reason: "it is not text".into(),
                fix: "run `ipkg doctor`: it moves the file to `.ipkg/quarantine/` and pins again what installed packages and registries need".into(),
            }),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Pin files that cannot be read back.
    pub fn damaged(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Ok(cid) = parse(name) else { continue };
            if matches!(self.labels(&cid), Err(Error::Damaged { .. })) {
                out.push(entry.path());
            }
        }
        out
    }

    /// Pin `cid` with `label` (idempotent).
    pub fn add(&self, cid: &Cid, label: &str) -> Result<(), Error> {
        let mut labels = self.labels(cid)?;
        if labels.insert(label.to_string()) {
            self.write(cid, &labels)?;
        }
        Ok(())
    }

    /// Remove `label` from `cid`; the pin goes when no label is left. Returns
    /// whether the label was there.
    pub fn remove(&self, cid: &Cid, label: &str) -> Result<bool, Error> {
        let mut labels = self.labels(cid)?;
        let had = labels.remove(label);
        if had {
            self.write(cid, &labels)?;
        }
        Ok(had)
    }

    /// Remove every label of `cid`.
    pub fn remove_all(&self, cid: &Cid) -> Result<bool, Error> {
        let path = self.path(cid);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn write(&self, cid: &Cid, labels: &BTreeSet<String>) -> Result<(), Error> {
        let path = self.path(cid);
        if labels.is_empty() {
            return self.remove_all(cid).map(|_| ());
        }
        let mut text = String::new();
        for l in labels {
            text.push_str(l);
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))
    }

    /// Every pinned CID with its labels.
    pub fn list(&self) -> Result<Vec<(Cid, BTreeSet<String>)>, Error> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Ok(cid) = parse(name) else { continue };
            let labels = self.labels(&cid)?;
            if !labels.is_empty() {
                out.push((cid, labels));
            }
        }
        out.sort_by_key(|(c, _)| c.to_string());
        Ok(out)
    }
}

/// Write a file so that readers see the old bytes or the new ones, never a mix:
/// a temporary file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

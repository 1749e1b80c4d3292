//! Names: IPNS records this host has seen, and resolving IPNS names and
//! DNSLink domains over the network.
//!
//! The record cache (`<prefix>/.ipkg/state/ipns/<name>.ipns-record`) keeps,
//! per name, the best verified record seen so far. It is the memory that
//! refuses rollbacks (a record with a lower sequence than one already seen
//! is rejected, whoever serves it) and what `ipkg serve` hands out.
//!
//! Resolution asks every configured source (Kubo `routing/get`, gateways
//! `?format=ipns-record`, delegated routing `GET /routing/v1/ipns/{name}`),
//! verifies each answer locally (`names::ipns::verify`), and keeps the best
//! (`select_best`). Sources that fail or serve a bad or older record are
//! reported, not fatal, as long as one good record is found.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::names::ipns::{self, VerifiedRecord};

use super::pins::write_atomic;
use super::{Error, Layout};

/// The best record seen per IPNS name.
#[derive(Debug, Clone)]
pub struct RecordCache {
    dir: PathBuf,
    /// Maintainer registries' own records (`registries/*/ipns-record`).
    registries: PathBuf,
}

/// What [`RecordCache::offer`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Newer than anything seen: kept.
    Newer,
    /// The same sequence as the kept one.
    Same,
    /// Older than the kept one: refused (a rollback).
    Older { seen: u64 },
}

impl RecordCache {
    pub fn open(layout: &Layout) -> RecordCache {
        RecordCache {
            dir: layout.state_root().join("state").join("ipns"),
            registries: super::registry::registries_dir(layout),
        }
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        // Names are `k51…`: base36 letters and digits only.
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric())
            .then(|| self.dir.join(format!("{name}.ipns-record")))
    }

    /// The kept record for `name`, verified now (an expired one is not given).
    pub fn best(&self, name: &str) -> Option<(Vec<u8>, VerifiedRecord)> {
        let now = SystemTime::now();
        let mut found: Vec<(Vec<u8>, VerifiedRecord)> = Vec::new();
        let mut candidates = Vec::new();
        if let Some(p) = self.path(name) {
            candidates.push(p);
        }
        if let Ok(entries) = std::fs::read_dir(&self.registries) {
            for e in entries.flatten() {
                candidates.push(e.path().join("ipns-record"));
            }
        }
        for p in candidates {
            if let Ok(bytes) = std::fs::read(&p)
                && let Ok(v) = ipns::verify(name, &bytes, now)
            {
                found.push((bytes, v));
            }
        }
        let recs: Vec<VerifiedRecord> = found.iter().map(|(_, v)| v.clone()).collect();
        let i = ipns::select_best(&recs)?;
        Some(found.swap_remove(i))
    }

    /// The highest sequence kept for `name` (expired records count: a
    /// rollback to before an expired record is still a rollback).
    pub fn highest(&self, name: &str) -> Option<u64> {
        let bytes = std::fs::read(self.path(name)?).ok()?;
        let far = SystemTime::UNIX_EPOCH;
        // Verified as of the epoch so expiry does not hide it.
        ipns::verify(name, &bytes, far).ok().map(|v| v.sequence)
    }

    /// Offer a record (already verified against `name`): kept when it is
    /// newer than what is kept.
    pub fn offer(&self, name: &str, bytes: &[u8], rec: &VerifiedRecord) -> Result<Offered, Error> {
        let Some(path) = self.path(name) else {
            return Err(Error::Usage(format!("`{name}` is not an IPNS name")));
        };
        let seen = self.highest(name);
        match seen {
            Some(seen) if rec.sequence < seen => return Ok(Offered::Older { seen }),
            Some(seen) if rec.sequence == seen => {
                // Keep the one that is valid longer.
                let kept = std::fs::read(&path)
                    .ok()
                    .and_then(|b| ipns::verify(name, &b, SystemTime::UNIX_EPOCH).ok());
                if kept.is_some_and(|k| k.validity >= rec.validity) {
                    return Ok(Offered::Same);
                }
            }
            _ => {}
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        write_atomic(&path, bytes).map_err(|e| Error::io(&path, e))?;
        Ok(if seen == Some(rec.sequence) {
            Offered::Same
        } else {
            Offered::Newer
        })
    }
}

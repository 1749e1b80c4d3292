//! Journaled transactions: a crash at any point leaves the old state or the
//! new one, and the next ipkg command finishes or undoes what was begun.
//!
//! A transaction changes one package: where `<prefix>/<name>` points, the
//! command links in the bin dir, the receipt, the pins, and which unpacked
//! trees are kept. It is written to `<prefix>/.ipkg/journal/tx.json` (fsynced)
//! before anything changes, then applied in a fixed order:
//!
//! 1. links for commands the new version adds (they point through
//!    `<prefix>/<name>`, so before the flip they lead nowhere: the command
//!    does not exist yet, as in the old state);
//! 2. **the flip**: a new symlink renamed over `<prefix>/<name>` (or, for a
//!    remove, the link unlinked). This one `rename(2)` is the commit point;
//! 3. links whose path changed are re-pointed, links of commands the new
//!    version dropped are removed;
//! 4. the receipt is rewritten, pins are updated, trees no longer needed are
//!    deleted; then the journal is deleted.
//!
//! Recovery ([`recover`]) reads the journal under the prefix lock and looks at
//! `<prefix>/<name>`: if it already shows the new state, steps 3–4 are
//! redone (each is idempotent); if not, step 1 is undone. Either way the
//! journal is then removed. Only one transaction runs at a time (the prefix
//! lock), so one journal file is enough.
//!
//! For crash tests, `IPKG_TEST_CRASH_AT=<step>` makes ipkg kill itself with
//! SIGKILL right after the named step (`journal`, `links`, `flip`, `relink`,
//! `receipt`, `pins`, `trees`); it has no other effect.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::cid::parse;

use super::installed::{self, Receipt};
use super::{Error, Layout};
use crate::ops::pins::{Pins, write_atomic};

/// One command link to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkChange {
    pub command: String,
    /// What the link points at now (`None`: no link).
    pub before: Option<PathBuf>,
    /// What it must point at after (`None`: removed).
    pub after: Option<PathBuf>,
}

/// A pin to add or remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinChange {
    pub cid: String,
    pub label: String,
}

/// A transaction on one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// What the user asked for (`install`, `switch`, …), for messages.
    pub op: String,
    pub name: String,
    /// The bin dir the links live in (recorded: a later command may be run
    /// with another `--bin-dir`).
    pub bin_dir: PathBuf,
    /// The package CID `<prefix>/<name>` points at after (`None`: removed).
    pub to: Option<String>,
    pub links: Vec<LinkChange>,
    /// The receipt after (`None`: deleted).
    pub receipt: Option<Receipt>,
    pub pins_add: Vec<PinChange>,
    pub pins_remove: Vec<PinChange>,
    /// Unpacked trees (package CIDs) to delete once committed.
    pub trees_remove: Vec<String>,
}

fn journal_path(layout: &Layout) -> PathBuf {
    layout.journal_dir().join("tx.json")
}

/// Kill the process right after `step` when the test hook asks for it.
pub fn crash_point(step: &str) {
    if std::env::var_os("IPKG_TEST_CRASH_AT").is_some_and(|v| v == step) {
        // SAFETY: sending a signal to ourselves has no memory-safety effect.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// What `<prefix>/<name>` must point at for `cid` (relative, so the prefix
/// can move).
pub fn link_target(cid: &str) -> PathBuf {
    Path::new(".ipkg/pkgs").join(cid)
}

/// The package CID `<prefix>/<name>` points at, if it is an ipkg link.
pub fn current_link(layout: &Layout, name: &str) -> Result<Option<String>, Error> {
    let path = layout.package_link(name);
    match fs::read_link(&path) {
        Ok(t) => match t.strip_prefix(".ipkg/pkgs") {
            Ok(rest) => Ok(rest.to_str().map(str::to_owned)),
            Err(_) => Err(Error::NotOurs { path }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Err(Error::NotOurs { path }),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Apply `tx` with the prefix lock held.
pub fn apply(layout: &Layout, tx: &Tx) -> Result<(), Error> {
    let dir = layout.journal_dir();
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let text = serde_json::to_vec_pretty(tx).map_err(|e| Error::Config {
        path: journal_path(layout),
        message: e.to_string(),
    })?;
    write_atomic(&journal_path(layout), &text).map_err(|e| Error::io(journal_path(layout), e))?;
    crash_point("journal");

    let mut made = false;
    for l in tx.links.iter().filter(|l| l.before.is_none()) {
        if let Some(after) = &l.after {
            set_link(&tx.bin_dir, &l.command, after)?;
            made = true;
        }
    }
    // Each fsync costs a disk round trip: only for a directory that changed
    // (a switch between versions with the same commands changes no link).
    if made {
        sync_dir(&tx.bin_dir);
    }
    crash_point("links");

    flip(layout, &tx.name, tx.to.as_deref())?;
    crash_point("flip");

    finish(layout, tx)
}

/// Steps 3–4: everything after the commit point. Idempotent.
fn finish(layout: &Layout, tx: &Tx) -> Result<(), Error> {
    let mut changed = false;
    for l in tx.links.iter().filter(|l| l.before.is_some()) {
        let path = tx.bin_dir.join(&l.command);
        let now = fs::read_link(&path).ok();
        match &l.after {
            // Only a link that still shows the old target (or is gone) is
            // ours to re-point.
            Some(after) if now.as_ref() != Some(after) && (now.is_none() || now == l.before) => {
                set_link(&tx.bin_dir, &l.command, after)?;
                changed = true;
            }
            None if now.is_some() && now == l.before => {
                remove_link(&path)?;
                changed = true;
            }
            _ => {}
        }
    }
    // Links that are new in this version, in case an earlier run of step 1
    // did not get to them before the flip.
    for l in tx.links.iter().filter(|l| l.before.is_none()) {
        if let Some(after) = &l.after {
            let path = tx.bin_dir.join(&l.command);
            if fs::symlink_metadata(&path).is_err() {
                set_link(&tx.bin_dir, &l.command, after)?;
                changed = true;
            }
        }
    }
    if changed {
        sync_dir(&tx.bin_dir);
    }
    crash_point("relink");

    installed::store(layout, &tx.name, tx.receipt.as_ref())?;
    crash_point("receipt");

    let pins = Pins::open(layout.pins_dir())?;
    for p in &tx.pins_add {
        if let Ok(cid) = parse(&p.cid) {
            pins.add(&cid, &p.label)?;
        }
    }
    for p in &tx.pins_remove {
        if let Ok(cid) = parse(&p.cid) {
            pins.remove(&cid, &p.label)?;
        }
    }
    crash_point("pins");

    for cid in &tx.trees_remove {
        super::unpack::remove_tree(&layout.pkgs_dir().join(cid))?;
    }
    crash_point("trees");

    // Not fsynced: a journal that comes back after a crash only makes the
    // next command redo these idempotent steps.
    match fs::remove_file(journal_path(layout)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(journal_path(layout), e)),
        _ => Ok(()),
    }
}

/// What [`recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The interrupted transaction had committed; it was finished.
    Finished { op: String, name: String },
    /// It had not; what it began was undone.
    Undone { op: String, name: String },
}

/// Finish or undo a transaction a killed process left behind. Call with the
/// prefix lock held, before changing anything.
pub fn recover(layout: &Layout) -> Result<Option<Recovered>, Error> {
    let path = journal_path(layout);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let tx: Tx = serde_json::from_slice(&text).map_err(|e| Error::Config {
        path: path.clone(),
        message: format!("unreadable transaction journal: {e}"),
    })?;
    let now = current_link(layout, &tx.name).unwrap_or(None);
    let committed = now.as_deref() == tx.to.as_deref();
    if committed {
        finish(layout, &tx)?;
        return Ok(Some(Recovered::Finished {
            op: tx.op,
            name: tx.name,
        }));
    }
    for l in tx.links.iter().filter(|l| l.before.is_none()) {
        let link = tx.bin_dir.join(&l.command);
        if l.after.is_some() && fs::read_link(&link).ok() == l.after {
            remove_link(&link)?;
        }
    }
    sync_dir(&tx.bin_dir);
    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    sync_dir(&layout.journal_dir());
    Ok(Some(Recovered::Undone {
        op: tx.op,
        name: tx.name,
    }))
}

/// Point `<prefix>/<name>` at `cid` (or remove it) with one atomic step.
fn flip(layout: &Layout, name: &str, to: Option<&str>) -> Result<(), Error> {
    let link = layout.package_link(name);
    match to {
        Some(cid) => {
            let tmp = layout.state_root().join(format!(".tmp-link-{name}"));
            let _ = fs::remove_file(&tmp);
            symlink(link_target(cid), &tmp).map_err(|e| Error::io(&tmp, e))?;
            fs::rename(&tmp, &link).map_err(|e| Error::io(&link, e))?;
        }
        None => remove_link(&link)?,
    }
    sync_dir(&layout.prefix);
    Ok(())
}

/// Make `bin_dir/command` a symlink to `target`, atomically.
fn set_link(bin_dir: &Path, command: &str, target: &Path) -> Result<(), Error> {
    fs::create_dir_all(bin_dir).map_err(|e| Error::io(bin_dir, e))?;
    let path = bin_dir.join(command);
    let tmp = bin_dir.join(format!(".ipkg-tmp-{command}-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(&path, e)
    })
}

fn remove_link(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

//! Installed means seeded: when a Kubo node is configured (or found), every
//! installed package tree is handed to it and pinned there under the name
//! `ipkg/<name>@<version>`, and unpinned on remove, so the node serves what
//! this host runs. `ipkg publish --to kubo` hands a whole registry (index,
//! releases, packages) to Kubo the same way and publishes its IPNS record
//! there (`routing/put` of ipkg's own signed record: the key never leaves
//! ipkg).
//!
//! Kubo may not have the blocks (they came from a gateway), so they are
//! streamed from the store as a CAR into `dag/import` first; pinning is then
//! local to the node and never waits on the network. Seeding is best effort
//! for install and remove (a failure is a warning: the install itself
//! stands), and an error for `publish --to kubo`, which asked for it.

use std::collections::HashSet;
use std::io::{BufWriter, Write};

use crate::content::car::CarWriter;
use crate::content::{Cid, links_of};
use crate::sources::kubo::KuboSource;
use crate::sources::store::BlockStore;

use super::{Error, Layout};
use crate::ops::publish::registry;

/// Write the DAG under `root` from `store` as a CARv1 into `out`, depth
/// first, each block once.
pub fn write_car(store: &BlockStore, root: &Cid, out: impl Write) -> std::io::Result<()> {
    let mut w = CarWriter::new(out, std::slice::from_ref(root))?;
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) || cid.hash().code() == crate::content::cid::IDENTITY {
            continue;
        }
        // Blocks the store lacks (a registry's packages never fetched here)
        // are left out: Kubo imports what it is given.
        let Ok(data) = store.get(&cid) else { continue };
        w.write_block(&cid, &data)?;
        stack.extend(links_of(&cid, &data).unwrap_or_default().into_iter().rev());
    }
    w.finish()?.flush()
}

/// Stream the DAG under `root` into Kubo's `dag/import`.
fn import(kubo: &KuboSource, store: &BlockStore, root: &Cid, pin: bool) -> Result<(), Error> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| Error::io("<pipe>", e))?;
    let store2 = store.clone();
    let root2 = *root;
    let producer = std::thread::spawn(move || {
        write_car(&store2, &root2, BufWriter::with_capacity(1 << 18, writer))
    });
    let result = kubo.dag_import(&mut reader, pin);
    drop(reader);
    let produced = producer.join();
    let kubo_err = |e: String| Error::Usage(format!("{}: {e}", kubo_name(kubo)));
    let imported = result.map_err(|e| kubo_err(e.to_string()))?;
    match produced {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::io(store.dir(), e)),
        Err(_) => return Err(kubo_err("the CAR writer panicked".into())),
    }
    if let Some(e) = imported.iter().find_map(|i| i.pin_error.clone()) {
        return Err(kubo_err(format!("pinning the import failed: {e}")));
    }
    Ok(())
}

fn kubo_name(kubo: &KuboSource) -> String {
    format!("Kubo RPC at {}", kubo.base())
}

/// The name of an installed package's pin in Kubo: `ipkg/<name>@<version>`.
pub fn kubo_label(name: &str, version: &semver::Version) -> String {
    format!("ipkg/{name}@{version}")
}

/// Hand `cid` to Kubo and pin it as `label`. `Ok(false)` when no Kubo is
/// configured.
pub fn seed(layout: &Layout, store: &BlockStore, cid: &Cid, label: &str) -> Result<bool, Error> {
    let Some(kubo) = super::fetch::kubo(layout)? else {
        return Ok(false);
    };
    import(&kubo, store, cid, false)?;
    kubo.pin_add(cid, label)
        .map_err(|e| Error::Usage(format!("{}: pin/add: {e}", kubo_name(&kubo))))?;
    Ok(true)
}

/// Unpin `cid` from Kubo if ipkg pinned it as `label` (a pin the user made
/// under another name stays).
pub fn unseed(layout: &Layout, cid: &Cid, label: &str) -> Result<bool, Error> {
    let Some(kubo) = super::fetch::kubo(layout)? else {
        return Ok(false);
    };
    let err = |e: crate::sources::SourceError| Error::Usage(format!("{}: {e}", kubo_name(&kubo)));
    if kubo.pin_name(cid).map_err(err)?.as_deref() == Some(label) {
        kubo.pin_rm(cid).map_err(err)?;
        return Ok(true);
    }
    Ok(false)
}

/// What `publish --to kubo` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub kubo: String,
    pub root: String,
    pub record: bool,
}

/// Put registry `name`'s whole DAG into Kubo (pinned as
/// `ipkg/registry/<name>`) and publish its IPNS record there.
pub fn push_registry(layout: &Layout, store: &BlockStore, name: &str) -> Result<Pushed, Error> {
    let reg = registry::Registry::open(layout, name)?;
    let kubo = super::fetch::kubo(layout)?.ok_or_else(|| {
        Error::Usage(
            "no Kubo to publish to: pass `--api`, set `IPFS_API` or `kubo-api`, or start a daemon"
                .into(),
        )
    })?;
    let root = reg.root_cid()?.ok_or_else(|| {
        Error::Usage(format!(
            "registry `{name}` has no index yet: publish a package first"
        ))
    })?;
    import(&kubo, store, &root, false)?;
    kubo.pin_add(&root, &format!("ipkg/registry/{name}"))
        .map_err(|e| Error::Usage(format!("{}: pin/add: {e}", kubo_name(&kubo))))?;
    let record_path = reg.dir.join("ipns-record");
    let record = std::fs::read(&record_path).ok();
    if let Some(bytes) = &record {
        kubo.routing_put(&reg.state.ipns, bytes)
            .map_err(|e| Error::Usage(format!("{}: routing/put: {e}", kubo_name(&kubo))))?;
    }
    Ok(Pushed {
        kubo: kubo.base().to_owned(),
        root: root.to_string(),
        record: record.is_some(),
    })
}

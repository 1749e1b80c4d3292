//! ipkg: a package manager for all-in-one programs distributed over IPFS.
//!
//! # A map of the code
//!
//! A cargo workspace, layered as in `DESIGN.md` §2; each layer depends only on
//! the layers below it. The layers with a life of their own are crates of
//! their own under `crates/`, re-exported here under their old names
//! (`ipkg::content`, `crate::trust`, …):
//!
//! - [`cli`]: clap definitions, one file per subcommand. Each command parses its
//!   arguments, calls one operation and prints through the [`cli::printer`].
//! - [`ops`]: the operations, one folder per capability; commands are thin
//!   wrappers around them. [`ops::lifecycle`] (install, switch, remove, the
//!   journal, unpack, verify, gc, queries), [`ops::publish`] (publish, pack,
//!   the maintainer's registries and keys), [`ops::resolve`] (the registry
//!   client: names, subscriptions, fetching, seeding), [`ops::serve`] (the
//!   gateway server), [`ops::execute`] (sandboxed runs), [`ops::cnf`]
//!   (command-not-found), [`ops::content`] (add, get, CAR files); shared by
//!   all: [`ops::config`], [`ops::error`], [`ops::pins`]. No capability imports
//!   one that imports it back.
//! - [`sources`]: where blocks come from and go to: the embedded block store,
//!   CAR files, Kubo and trustless gateways, all behind
//!   [`sources::BlockSource`].
//! - [`sandbox`] (crate `ipkg-sandbox`): bubblewrap sandboxes with limits
//!   (time, memory, processes, file size), for `run --sandbox`,
//!   `run --pure`/`execute` and lifecycle hooks. Does I/O; knows nothing of
//!   packages or stores.
//! - [`names`] (crate `ipkg-names`): IPNS records and DNSLink values. Pure;
//!   the resolvers are in [`ops::resolve::names`].
//! - [`trust`] (crate `ipkg-trust`): manifests, release statements, the
//!   registry index, keys and signatures. Pure: bytes in, values out.
//! - [`content`] (crate `ipkg-content`): CIDs, dag-pb, UnixFS import and
//!   export, HAMT, CAR codec. Pure: never opens a file or a socket.
//!
//! The three pure crates depend on no file, socket or async crate; CI checks
//! it (`cargo tree -p ipkg-content -e normal`, the "purity" phase of `.ci/run`).

pub mod cli;
pub mod ops;
pub mod sources;

pub use ipkg_content as content;
pub use ipkg_names as names;
pub use ipkg_sandbox as sandbox;
pub use ipkg_trust as trust;

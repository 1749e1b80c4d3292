//! ipkg: a package manager for all-in-one programs distributed over IPFS.
//!
//! # A map of the code
//!
//! The crate is layered as in `DESIGN.md` §2; each layer depends only on the
//! layers below it.
//!
//! - [`cli`]: clap definitions, one file per subcommand. Each command parses its
//!   arguments, calls one operation and prints through the [`cli::printer`].
//! - [`ops`]: every major operation (add, get, cat, car import/export, gc, …) is
//!   implemented here; commands are thin wrappers around ops.
//! - [`trust`]: manifests, release statements, the registry index, keys and
//!   signatures. Pure: bytes in, values out.
//! - [`names`]: IPNS records, DNSLink and name syntax. Codecs are pure;
//!   resolvers do I/O.
//! - [`sources`]: where blocks come from and go to: the embedded block store,
//!   CAR files, Kubo and trustless gateways, all behind
//!   [`sources::BlockSource`].
//! - [`sandbox`]: bubblewrap sandboxes with limits (time, memory, processes,
//!   file size), for `run --sandbox`, `run --pure`/`execute` and lifecycle
//!   hooks. Does I/O; knows nothing of packages or stores.
//! - [`content`]: CIDs, dag-pb, UnixFS import and export, HAMT, CAR codec.
//!   Pure: never opens a file or a socket.

pub mod cli;
pub mod ops;
pub mod sources;

pub use ipkg_content as content;
pub use ipkg_names as names;
pub use ipkg_sandbox as sandbox;
pub use ipkg_trust as trust;

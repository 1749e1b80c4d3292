//! Names: IPNS records, DNSLink and the package-name syntax of `DESIGN.md` §6.
//!
//! The names layer of [ipkg](https://crates.io/crates/ipkg), usable on its own;
//! ipkg re-exports it as `ipkg::names`.
//!
//! Everything here is pure: codecs and checks over bytes and strings. Resolvers
//! that talk to Kubo, gateways or DNS live in ipkg's `ops::resolve::names`. The
//! crate depends on no file, socket or async crate (CI checks
//! `cargo tree -p ipkg-names -e normal`).
pub mod dnslink;
pub mod ipns;

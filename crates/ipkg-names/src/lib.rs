//! Names: IPNS records, DNSLink and the package-name syntax of `DESIGN.md` §6.
//!
//! The codecs here are pure; resolvers that talk to Kubo, gateways or DNS live in
//! their own submodules and are the only code in this layer that does I/O.
pub mod dnslink;
pub mod ipns;

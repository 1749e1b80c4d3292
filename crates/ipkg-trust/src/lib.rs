//! Trust: manifests, release statements, the registry index, keys and signatures.
//!
//! The trust layer of [ipkg](https://crates.io/crates/ipkg), usable on its own;
//! ipkg re-exports it as `ipkg::trust`.
//!
//! Everything here is pure: it takes bytes and returns values, and never opens a
//! file or a socket. Callers (ipkg's `ops`) do the I/O. The crate depends on no
//! file, socket or async crate (CI checks `cargo tree -p ipkg-trust -e normal`);
//! the one exception is opt-in: the `os-rng` feature adds
//! `keys::Keypair::generate`, which asks the operating system for randomness.
//!
//! - [`manifest`]: `ipkg.toml`, parsed and checked against a package tree
//!   (`spec/manifest.md` is the normative text).
//! - [`keys`]: ed25519 keys, their IPNS names, Kubo's key file formats.
//! - [`release`]: signed release statements.
//! - [`index`]: the signed registry index and the client's update checks.
//! - [`succession`]: key succession statements and publisher pinning.

// Errors here carry the CIDs, names and versions they are about (a CID is up
// to 80 bytes), which makes them larger than clippy likes. They are built only
// on the refusal path, where their size costs nothing measurable; boxing them
// would only make matching on them clumsier for callers.
#![allow(clippy::result_large_err)]

mod cbor;
pub mod index;
pub mod keys;
pub mod manifest;
pub mod release;
pub mod succession;

/// `secs` (Unix seconds, UTC) as RFC 3339 (`2026-01-01T00:00:00Z`), for messages
/// and the JSON renderings in `spec/manifest.md`. Signed documents store the
/// integer itself.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_time() {
        assert_eq!(super::format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_time(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(super::format_time(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(super::format_time(-1), "1969-12-31T23:59:59Z");
    }
}

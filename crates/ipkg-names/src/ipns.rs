//! IPNS records: create, decode and verify them, and choose between them.
//!
//! An IPNS record (spec: <https://specs.ipfs.tech/ipns/ipns-record/>, ipfs/specs
//! `src/ipns/ipns-record.md`) is the protobuf `IpnsEntry`
//!
//! ```text
//! value=1 signatureV1=2 validityType=3 validity=4 sequence=5 ttl=6 pubKey=7 signatureV2=8 data=9
//! ```
//!
//! whose authoritative content is `data`, a DAG-CBOR map
//! `{Value, Validity, ValidityType, Sequence, TTL}` signed by `signatureV2` over
//! `"ipns-signature:" ++ data` (spec §"Record Creation", §"Record Verification").
//! The other fields are the legacy V1 form, kept so that old nodes can still
//! resolve records we write.
//!
//! Goals:
//! - [`Record::create`] writes what Kubo (boxo `ipns.NewRecord`) writes for an
//!   ed25519 key: canonical DAG-CBOR `data`, `signatureV2`, the V1 compatibility
//!   fields (value, validity in Go's RFC 3339 nanosecond form, validityType 0,
//!   sequence, ttl in nanoseconds, `signatureV1` over `value ++ validity ++ "EOL"`),
//!   and no `pubKey` (an ed25519 key is inlined in its name).
//! - [`verify`] follows the spec's verification steps: at most 10 KiB,
//!   `signatureV2` and `data` present, the key from the name (an embedded
//!   `pubKey` must be that same key), the signature valid, the V1 fields (when
//!   present) equal to the signed data, a known validity type, not expired.
//!   `signatureV1` is never checked and V1-only records are refused, as the spec
//!   and boxo `ipns/validation.go` do.
//! - [`select_best`] and [`is_newer`]: the spec's ordering (higher sequence,
//!   then later validity) and the check that keeps a resolver from rolling back.
//!
//! Non-goals: RSA/secp256k1/ECDSA keys (ipkg names are ed25519 only), custom
//! metadata in `data` (ignored on read, never written), V1-only records, and any
//! I/O: this module takes bytes and returns values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use ipkg_content::varint::{self, Reader, WT_LEN, WT_VARINT, WireError};
use ipkg_trust::keys::{KeyError, Keypair, PublicKey};

/// Largest record accepted, in bytes (spec §"Record Size Limit").
pub const MAX_RECORD_SIZE: usize = 10 * 1024;

/// Prefix of the message `signatureV2` signs (spec §"Record Creation").
const SIGNATURE_V2_PREFIX: &[u8] = b"ipns-signature:";

/// The only validity type: "valid until `validity`" (End Of Life).
pub const VALIDITY_EOL: u64 = 0;

/// Value boxo substitutes for an empty `Value` (an empty identity CID).
const NOOP_VALUE: &str = "/ipfs/bafkqaaa";

/// Why a record could not be parsed as protobuf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {size} bytes, more than the {MAX_RECORD_SIZE}-byte limit")]
    TooLarge { size: usize },
    #[error("bad protobuf: {0}")]
    Wire(#[from] WireError),
    #[error("field {field} has wire type {wire_type}, expected {expected}")]
    WireType {
        field: u32,
        wire_type: u8,
        expected: u8,
    },
}

/// Why a record could not be created, decoded or verified.
#[derive(Debug, thiserror::Error)]
pub enum IpnsError {
    #[error("not a valid IPNS record: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot create an IPNS record: {reason}")]
    Create { reason: String },
    #[error("`{input}` is not a usable IPNS name")]
    Name {
        input: String,
        #[source]
        source: KeyError,
    },
    #[error("IPNS record for `{name}` is malformed")]
    Malformed {
        name: String,
        #[source]
        source: DecodeError,
    },
    #[error(
        "IPNS record for `{name}` has no signatureV2 (a V1-only record); records must carry a V2 signature"
    )]
    V1Only { name: String },
    #[error("IPNS record for `{name}` has a signatureV2 but no signed data")]
    MissingData { name: String },
    #[error("IPNS record for `{name}` has malformed signed data: {reason}")]
    Data { name: String, reason: String },
    #[error("IPNS record for `{name}` embeds a public key that cannot be read")]
    EmbeddedKey {
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("IPNS record for `{name}` embeds the public key `{embedded}`, not the key of the name")]
    KeyMismatch { name: String, embedded: String },
    #[error("IPNS record for `{name}`: signatureV2 does not verify")]
    BadSignatureV2 { name: String },
    #[error("IPNS record for `{name}`: {field} in the V1 field differs from the signed data")]
    V1Mismatch { name: String, field: &'static str },
    #[error("IPNS record for `{name}` has unsupported validity type {validity_type}")]
    ValidityType { name: String, validity_type: u64 },
    #[error("IPNS record for `{name}` has an unreadable validity `{validity}`: {reason}")]
    Validity {
        name: String,
        validity: String,
        reason: String,
    },
    #[error("IPNS record for `{name}` has expired (valid until {validity})")]
    Expired { name: String, validity: String },
    #[error("IPNS record for `{name}` has an unusable value: {reason}")]
    Value { name: String, reason: String },
}

/// A decoded `IpnsEntry`. Fields are exactly what the protobuf carried; nothing
/// here is verified (use [`verify`] for that).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub value: Option<Vec<u8>>,
    pub signature_v1: Option<Vec<u8>>,
    pub validity_type: Option<u64>,
    pub validity: Option<Vec<u8>>,
    pub sequence: Option<u64>,
    pub ttl: Option<u64>,
    pub pub_key: Option<Vec<u8>>,
    pub signature_v2: Option<Vec<u8>>,
    pub data: Option<Vec<u8>>,
}

/// What a verified record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecord {
    /// The content path the name points to, e.g. `/ipfs/bafy…`.
    pub value: String,
    pub sequence: u64,
    /// End of validity (the record must not be used after it).
    pub validity: SystemTime,
    /// How long a resolver may cache the record.
    pub ttl: Duration,
}

/// The signed DAG-CBOR document. Field order is DAG-CBOR's canonical key order
/// (length first, then bytewise), which the encoder also enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SignedData {
    #[serde(rename = "TTL")]
    ttl: u64,
    #[serde(rename = "Value", with = "strict_bytes")]
    value: Vec<u8>,
    #[serde(rename = "Sequence")]
    sequence: u64,
    #[serde(rename = "Validity", with = "strict_bytes")]
    validity: Vec<u8>,
    #[serde(rename = "ValidityType")]
    validity_type: u64,
}

/// CBOR byte strings only: boxo reads these keys with `AsBytes`, which refuses
/// text strings, so a lenient visitor would accept records Kubo rejects.
mod strict_bytes {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Record {
    /// A record pointing `keypair`'s name at `value` (e.g. `/ipfs/<cid>`), valid
    /// for `validity` from now, cacheable for `ttl`.
    pub fn create(
        keypair: &Keypair,
        value: &str,
        sequence: u64,
        validity: Duration,
        ttl: Duration,
    ) -> Result<Record, IpnsError> {
        Record::create_at(keypair, value, sequence, validity, ttl, SystemTime::now())
    }

    /// [`Record::create`] with an explicit "now", for reproducible records.
    pub fn create_at(
        keypair: &Keypair,
        value: &str,
        sequence: u64,
        validity: Duration,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Record, IpnsError> {
        let create_err = |reason: String| IpnsError::Create { reason };
        // boxo stores Sequence and TTL as CBOR int64; larger values would be read
        // back negative by Go, so refuse them here.
        if sequence > i64::MAX as u64 {
            return Err(create_err(format!(
                "sequence {sequence} is larger than {}",
                i64::MAX
            )));
        }
        let ttl_ns = u64::try_from(ttl.as_nanos())
            .ok()
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| create_err(format!("TTL {ttl:?} does not fit in int64 nanoseconds")))?;
        let eol = now
            .checked_add(validity)
            .ok_or_else(|| create_err(format!("validity {validity:?} overflows the clock")))?;
        let validity_text = format_rfc3339(eol)
            .ok_or_else(|| create_err("the end of validity is past the year 9999".into()))?;

        let signed = SignedData {
            ttl: ttl_ns,
            value: value.as_bytes().to_vec(),
            sequence,
            validity: validity_text.clone().into_bytes(),
            validity_type: VALIDITY_EOL,
        };
        let data = serde_ipld_dagcbor::to_vec(&signed)
            .map_err(|e| create_err(format!("DAG-CBOR encoding failed: {e}")))?;
        let signature_v2 = keypair.sign(&signature_v2_message(&data)).to_vec();

        let mut v1_message = Vec::with_capacity(value.len() + validity_text.len() + 3);
        v1_message.extend_from_slice(value.as_bytes());
        v1_message.extend_from_slice(validity_text.as_bytes());
        // Go formats the enum with its String() method: "EOL".
        v1_message.extend_from_slice(b"EOL");
        let signature_v1 = keypair.sign(&v1_message).to_vec();

        Ok(Record {
            value: Some(value.as_bytes().to_vec()),
            signature_v1: Some(signature_v1),
            validity_type: Some(VALIDITY_EOL),
            validity: Some(validity_text.into_bytes()),
            sequence: Some(sequence),
            ttl: Some(ttl_ns),
            pub_key: None,
            signature_v2: Some(signature_v2),
            data: Some(data),
        })
    }

    /// The protobuf encoding, fields in number order as Go's `proto.Marshal`
    /// writes them (so a record made by `create` is byte-identical to Kubo's for
    /// the same inputs and signatures).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put_len = |out: &mut Vec<u8>, field: u32, v: &Option<Vec<u8>>| {
            if let Some(v) = v {
                varint::put_bytes(out, field, v);
            }
        };
        let put_int = |out: &mut Vec<u8>, field: u32, v: Option<u64>| {
            if let Some(v) = v {
                varint::put_tag(out, field, WT_VARINT);
                varint::put(out, v);
            }
        };
        put_len(&mut out, 1, &self.value);
        put_len(&mut out, 2, &self.signature_v1);
        put_int(&mut out, 3, self.validity_type);
        put_len(&mut out, 4, &self.validity);
        put_int(&mut out, 5, self.sequence);
        put_int(&mut out, 6, self.ttl);
        put_len(&mut out, 7, &self.pub_key);
        put_len(&mut out, 8, &self.signature_v2);
        put_len(&mut out, 9, &self.data);
        out
    }

    /// Parse the protobuf. Unknown fields are skipped and a repeated field keeps
    /// its last value, as protobuf (and so Kubo) does. Nothing is verified.
    pub fn decode(bytes: &[u8]) -> Result<Record, IpnsError> {
        Ok(decode_protobuf(bytes)?)
    }
}

fn decode_protobuf(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.len() > MAX_RECORD_SIZE {
        return Err(DecodeError::TooLarge { size: bytes.len() });
    }
    let mut rec = Record::default();
    let mut r = Reader::new(bytes);
    while let Some((field, wire_type)) = r.tag()? {
        let expect = |expected: u8| {
            if wire_type == expected {
                Ok(())
            } else {
                Err(DecodeError::WireType {
                    field,
                    wire_type,
                    expected,
                })
            }
        };
        match field {
            1 | 2 | 4 | 7 | 8 | 9 => {
                expect(WT_LEN)?;
                let v = Some(r.bytes(field)?.to_vec());
                match field {
                    1 => rec.value = v,
                    2 => rec.signature_v1 = v,
                    4 => rec.validity = v,
                    7 => rec.pub_key = v,
                    8 => rec.signature_v2 = v,
                    _ => rec.data = v,
                }
            }
            3 | 5 | 6 => {
                expect(WT_VARINT)?;
                let v = Some(r.varint()?);
                match field {
                    3 => rec.validity_type = v,
                    5 => rec.sequence = v,
                    _ => rec.ttl = v,
                }
            }
            _ => r.skip(field, wire_type)?,
        }
    }
    Ok(rec)
}

fn signature_v2_message(data: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNATURE_V2_PREFIX.len() + data.len());
    msg.extend_from_slice(SIGNATURE_V2_PREFIX);
    msg.extend_from_slice(data);
    msg
}

/// Verify `bytes` as the IPNS record of `name` (`k51…`, `bafz…`, `12D3KooW…`,
/// optionally with `/ipns/`) at time `now`, following the spec's
/// §"Record Verification" in boxo's order.
pub fn verify(name: &str, bytes: &[u8], now: SystemTime) -> Result<VerifiedRecord, IpnsError> {
    let key = PublicKey::from_ipns_name(name).map_err(|source| IpnsError::Name {
        input: name.to_owned(),
        source,
    })?;
    let name = key.ipns_name();
    let rec = decode_protobuf(bytes).map_err(|source| IpnsError::Malformed {
        name: name.clone(),
        source,
    })?;

    let Some(signature_v2) = rec.signature_v2.as_deref().filter(|s| !s.is_empty()) else {
        return Err(IpnsError::V1Only { name });
    };
    let Some(data) = rec.data.as_deref().filter(|d| !d.is_empty()) else {
        return Err(IpnsError::MissingData { name });
    };

    if let Some(pk) = rec.pub_key.as_deref().filter(|p| !p.is_empty()) {
        let embedded =
            PublicKey::from_libp2p_protobuf(pk).map_err(|source| IpnsError::EmbeddedKey {
                name: name.clone(),
                source,
            })?;
        if embedded != key {
            return Err(IpnsError::KeyMismatch {
                name,
                embedded: embedded.ipns_name(),
            });
        }
    }

    if key
        .verify(&signature_v2_message(data), signature_v2)
        .is_err()
    {
        return Err(IpnsError::BadSignatureV2 { name });
    }

    let signed: SignedData = serde_ipld_dagcbor::from_slice(data).map_err(|e| IpnsError::Data {
        name: name.clone(),
        reason: e.to_string(),
    })?;

    // Spec step 5: when V1 fields are there, they must say what the signed data
    // says, or an old client and a new one would resolve the name differently.
    // boxo runs this check when `value` or `signatureV1` is non-empty and then
    // compares all five fields, treating absent as empty/zero.
    let has_v1 = rec.value.as_deref().is_some_and(|v| !v.is_empty())
        || rec.signature_v1.as_deref().is_some_and(|v| !v.is_empty());
    if has_v1 {
        let mismatch = |field| IpnsError::V1Mismatch {
            name: name.clone(),
            field,
        };
        if rec.value.as_deref().unwrap_or_default() != signed.value.as_slice() {
            return Err(mismatch("value"));
        }
        if rec.validity.as_deref().unwrap_or_default() != signed.validity.as_slice() {
            return Err(mismatch("validity"));
        }
        if rec.validity_type.unwrap_or(0) != signed.validity_type {
            return Err(mismatch("validityType"));
        }
        if rec.sequence.unwrap_or(0) != signed.sequence {
            return Err(mismatch("sequence"));
        }
        if rec.ttl.unwrap_or(0) != signed.ttl {
            return Err(mismatch("ttl"));
        }
    }

    if signed.validity_type != VALIDITY_EOL {
        return Err(IpnsError::ValidityType {
            name,
            validity_type: signed.validity_type,
        });
    }
    let validity_text = String::from_utf8_lossy(&signed.validity).into_owned();
    let validity = std::str::from_utf8(&signed.validity)
        .map_err(|e| e.to_string())
        .and_then(parse_rfc3339)
        .map_err(|reason| IpnsError::Validity {
            name: name.clone(),
            validity: validity_text.clone(),
            reason,
        })?;
    if now > validity {
        return Err(IpnsError::Expired {
            name,
            validity: validity_text,
        });
    }

    let value = value_path(&signed.value).map_err(|reason| IpnsError::Value {
        name: name.clone(),
        reason,
    })?;
    Ok(VerifiedRecord {
        value,
        sequence: signed.sequence,
        validity,
        ttl: Duration::from_nanos(signed.ttl),
    })
}

/// The content path a record's `Value` names, read as boxo's `Record.Value`
/// does: empty means the empty identity CID, a leading `/` a path, anything
/// else a binary CID (a legacy form).
fn value_path(value: &[u8]) -> Result<String, String> {
    if value.is_empty() {
        return Ok(NOOP_VALUE.to_owned());
    }
    if value.first() == Some(&b'/') {
        return std::str::from_utf8(value)
            .map(str::to_owned)
            .map_err(|_| "the path is not UTF-8".to_owned());
    }
    let cid = ipkg_content::cid::Cid::try_from(value)
        .map_err(|e| format!("neither a path nor a binary CID: {e}"))?;
    Ok(format!("/ipfs/{}", ipkg_content::cid::to_string(&cid)))
}

/// Index of the best record: highest sequence, then latest validity; on a full
/// tie the first one. `None` for an empty slice. (Spec §"Record Selection";
/// the records must already be verified.)
pub fn select_best(records: &[VerifiedRecord]) -> Option<usize> {
    let rank = |r: &VerifiedRecord| (r.sequence, r.validity);
    let mut best: Option<(usize, &VerifiedRecord)> = None;
    for (i, r) in records.iter().enumerate() {
        if best.is_none_or(|(_, b)| rank(r) > rank(b)) {
            best = Some((i, r));
        }
    }
    best.map(|(i, _)| i)
}

/// True if `record` is strictly newer than the highest sequence already seen
/// for its name. A resolver that remembers `seen_seq` must refuse a record for
/// which `is_rollback` holds: it would take the name back to an older value.
pub fn is_newer(seen_seq: u64, record: &VerifiedRecord) -> bool {
    record.sequence > seen_seq
}

/// True if `record` is older than the highest sequence already seen (a rollback).
pub fn is_rollback(seen_seq: u64, record: &VerifiedRecord) -> bool {
    record.sequence < seen_seq
}

// ---- RFC 3339 as Go's time.RFC3339Nano writes and reads it ----

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn to_unix(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

/// `t` in UTC as Go's `time.RFC3339Nano` prints it: fraction without trailing
/// zeros, none at all on a whole second, `Z`. `None` outside years 0–9999.
pub fn format_rfc3339(t: SystemTime) -> Option<String> {
    let (secs, nanos) = to_unix(t);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    Some(s)
}

/// Parse an RFC 3339 timestamp as Go's `time.Parse(time.RFC3339Nano, …)`
/// accepts it: `YYYY-MM-DDTHH:MM:SS[.fraction]` then `Z` or `±HH:MM`.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let b = s.as_bytes();
    let bad = |what: &str| format!("not an RFC 3339 time ({what})");
    let num = |range: std::ops::Range<usize>| -> Result<u32, String> {
        let digits = b.get(range).ok_or_else(|| bad("too short"))?;
        digits.iter().try_fold(0u32, |acc, &c| {
            if c.is_ascii_digit() {
                Ok(acc * 10 + u32::from(c - b'0'))
            } else {
                Err(bad("expected a digit"))
            }
        })
    };
    let sep = |i: usize, c: u8| {
        if b.get(i) == Some(&c) {
            Ok(())
        } else {
            Err(bad(&format!("expected `{}` at {i}", c as char)))
        }
    };
    let year = num(0..4)?;
    sep(4, b'-')?;
    let month = num(5..7)?;
    sep(7, b'-')?;
    let day = num(8..10)?;
    sep(10, b'T')?;
    let hour = num(11..13)?;
    sep(13, b':')?;
    let minute = num(14..16)?;
    sep(16, b':')?;
    let second = num(17..19)?;
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return Err(bad("fraction must have 1 to 9 digits"));
        }
        nanos = num(start..i)? * 10u32.pow(9 - digits as u32);
    }
    let offset: i64 = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() => {
            sep(i + 3, b':')?;
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad("offset out of range"));
            }
            let off = i64::from(oh * 3600 + om * 60);
            if c == b'-' { -off } else { off }
        }
        _ => return Err(bad("expected `Z` or a `±HH:MM` offset at the end")),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = month
        .checked_sub(1)
        .and_then(|m| month_days.get(m as usize))
        .ok_or_else(|| bad("month out of range"))?;
    if day == 0 || day > *max_day || hour > 23 || minute > 59 || second > 59 {
        return Err(bad("field out of range"));
    }
    let secs = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset;
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
    };
    t.ok_or_else(|| bad("out of the clock's range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Keypair {
        Keypair::from_seed(&[7; 32])
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_matches_go() {
        let t = UNIX_EPOCH + Duration::new(4_847_689_023, 694_052_000);
        assert_eq!(
            format_rfc3339(t).as_deref(),
            Some("2123-08-14T12:17:03.694052Z")
        );
        assert_eq!(parse_rfc3339("2123-08-14T12:17:03.694052Z"), Ok(t));
        assert_eq!(
            format_rfc3339(at(0)).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2123-08-14T14:17:03.694052+02:00"),
            Ok(t),
            "offsets"
        );
        let t2 = UNIX_EPOCH + Duration::new(951_782_400, 1);
        assert_eq!(
            format_rfc3339(t2).as_deref(),
            Some("2000-02-29T00:00:00.000000001Z")
        );
        for bad in [
            "",
            "2023-02-29T00:00:00Z",
            "2023-01-01T00:00:00",
            "2023-01-01T00:00:00.Z",
            "2023-01-01 00:00:00Z",
            "2023-01-01T00:00:00.1234567890Z",
            "2023-13-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        let before = UNIX_EPOCH - Duration::new(1, 500_000_000);
        let s = format_rfc3339(before).unwrap();
        assert_eq!(s, "1969-12-31T23:59:58.5Z");
        assert_eq!(parse_rfc3339(&s), Ok(before));
    }

    #[test]
    fn create_verify_round_trip() {
        let k = key();
        let now = at(1_700_000_000);
        let rec = Record::create_at(
            &k,
            "/ipfs/bafkqaaa",
            3,
            Duration::from_secs(3600),
            Duration::from_secs(60),
            now,
        )
        .unwrap();
        assert!(rec.pub_key.is_none());
        let bytes = rec.to_bytes();
        assert_eq!(Record::decode(&bytes).unwrap(), rec);
        let v = verify(&k.ipns_name(), &bytes, now).unwrap();
        assert_eq!(v.value, "/ipfs/bafkqaaa");
        assert_eq!(v.sequence, 3);
        assert_eq!(v.ttl, Duration::from_secs(60));
        assert_eq!(v.validity, at(1_700_003_600));
        // The peer ID spelling of the name works too.
        verify(&k.public().peer_id(), &bytes, now).unwrap();
        assert!(matches!(
            verify(&k.ipns_name(), &bytes, at(1_700_003_601)),
            Err(IpnsError::Expired { .. })
        ));
    }

    #[test]
    fn signed_data_is_canonical() {
        let rec =
            Record::create_at(&key(), "/ipfs/x", 0, Duration::ZERO, Duration::ZERO, at(0)).unwrap();
        let data = rec.data.unwrap();
        let keys: Vec<usize> = ["TTL", "Value", "Sequence", "Validity", "ValidityType"]
            .iter()
            .map(|k| {
                data.windows(k.len())
                    .position(|w| w == k.as_bytes())
                    .unwrap()
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(data[0], 0xa5);
    }

    /// Sign arbitrary `data` as a V2-only record of `key`.
    fn v2_only(key: &Keypair, data: Vec<u8>) -> Vec<u8> {
        Record {
            signature_v2: Some(key.sign(&signature_v2_message(&data)).to_vec()),
            data: Some(data),
            ..Record::default()
        }
        .to_bytes()
    }

    #[test]
    fn extra_signed_keys_are_ignored_and_types_are_strict() {
        #[derive(Serialize)]
        struct Doc<'a> {
            #[serde(rename = "TTL")]
            ttl: u64,
            #[serde(rename = "_meta")]
            meta: &'a str,
            #[serde(rename = "Value", with = "serde_bytes")]
            value: &'a [u8],
            #[serde(rename = "Sequence")]
            sequence: u64,
            #[serde(rename = "Validity", with = "serde_bytes")]
            validity: &'a [u8],
            #[serde(rename = "ValidityType")]
            validity_type: u64,
        }
        let k = key();
        let doc = Doc {
            ttl: 1,
            meta: "extensible data",
            value: b"/ipfs/bafkqaaa",
            sequence: 5,
            validity: b"2100-01-01T00:00:00Z",
            validity_type: 0,
        };
        let bytes = v2_only(&k, serde_ipld_dagcbor::to_vec(&doc).unwrap());
        let v = verify(&k.ipns_name(), &bytes, at(0)).unwrap();
        assert_eq!((v.value.as_str(), v.sequence), ("/ipfs/bafkqaaa", 5));

        // Value as a CBOR text string: boxo refuses it, so do we.
        #[derive(Serialize)]
        struct TextValue<'a> {
            #[serde(rename = "TTL")]
            ttl: u64,
            #[serde(rename = "Value")]
            value: &'a str,
            #[serde(rename = "Sequence")]
            sequence: u64,
            #[serde(rename = "Validity", with = "serde_bytes")]
            validity: &'a [u8],
            #[serde(rename = "ValidityType")]
            validity_type: u64,
        }
        let doc = TextValue {
            ttl: 1,
            value: "/ipfs/bafkqaaa",
            sequence: 5,
            validity: b"2100-01-01T00:00:00Z",
            validity_type: 0,
        };
        let bytes = v2_only(&k, serde_ipld_dagcbor::to_vec(&doc).unwrap());
        assert!(matches!(
            verify(&k.ipns_name(), &bytes, at(0)),
            Err(IpnsError::Data { .. })
        ));

        // A validity type other than EOL.
        let doc = Doc {
            validity_type: 1,
            ..Doc {
                ttl: 1,
                meta: "",
                value: b"/ipfs/bafkqaaa",
                sequence: 5,
                validity: b"2100-01-01T00:00:00Z",
                validity_type: 0,
            }
        };
        let bytes = v2_only(&k, serde_ipld_dagcbor::to_vec(&doc).unwrap());
        assert!(matches!(
            verify(&k.ipns_name(), &bytes, at(0)),
            Err(IpnsError::ValidityType {
                validity_type: 1,
                ..
            })
        ));
    }

    #[test]
    fn legacy_value_forms() {
        assert_eq!(value_path(b"").unwrap(), NOOP_VALUE);
        let cid = ipkg_content::cid::parse("bafkqaaa").unwrap();
        assert_eq!(value_path(&cid.to_bytes()).unwrap(), "/ipfs/bafkqaaa");
        assert!(value_path(&[b'/', 0xff]).is_err());
        assert!(value_path(b"nonsense").is_err());
    }

    #[test]
    fn selection_and_rollback() {
        let r = |sequence, secs| VerifiedRecord {
            value: String::new(),
            sequence,
            validity: at(secs),
            ttl: Duration::ZERO,
        };
        assert_eq!(select_best(&[]), None);
        assert_eq!(select_best(&[r(1, 5), r(2, 1), r(2, 0)]), Some(1));
        assert_eq!(select_best(&[r(2, 1), r(2, 3), r(1, 9)]), Some(1));
        assert_eq!(select_best(&[r(2, 1), r(2, 1)]), Some(0));
        assert!(is_newer(1, &r(2, 0)));
        assert!(!is_newer(2, &r(2, 0)));
        assert!(is_rollback(3, &r(2, 0)));
        assert!(!is_rollback(2, &r(2, 0)));
    }
}

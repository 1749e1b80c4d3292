//! Strict DAG-CBOR for the signed documents of this layer.
//!
//! Decoding is strict: the bytes must be exactly what encoding the decoded value
//! gives back (DAG-CBOR's canonical form: shortest integers, map keys sorted by
//! length then bytes, no duplicates, no indefinite lengths). That makes every
//! document have exactly one encoding, so one CID, and leaves no room for
//! malleated copies of a signed statement.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encode `value` as DAG-CBOR.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| e.to_string())
}

/// Decode `bytes` and require them to be the canonical encoding of the value.
pub(crate) fn decode_canonical<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, String> {
    if bytes.len() > max_len {
        return Err(format!(
            "{} bytes is larger than the {max_len}-byte limit",
            bytes.len()
        ));
    }
    let value: T = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| e.to_string())?;
    let again = encode(&value)?;
    if again != bytes {
        return Err("not in canonical DAG-CBOR form".into());
    }
    Ok(value)
}

//! Protobuf wire-format helpers: unsigned LEB128 varints and field tags.
//!
//! Tiny on purpose: dag-pb and UnixFS need only varints, length-delimited
//! fields and (for the UnixFS mtime) fixed32. Decoding refuses truncated or
//! over-long varints (more than 10 bytes, or a 10th byte above 1) so that a
//! hostile block can neither panic nor wrap a value around.

/// Protobuf wire types used by dag-pb and UnixFS.
pub const WT_VARINT: u8 = 0;
pub const WT_FIXED64: u8 = 1;
pub const WT_LEN: u8 = 2;
pub const WT_FIXED32: u8 = 5;

/// Bytes an unsigned varint takes.
pub const fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Append `v` as an unsigned varint.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append a field tag.
pub fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// Append a length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, WT_LEN);
    put(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    #[error("truncated varint")]
    Truncated,
    #[error("varint longer than 64 bits")]
    Overflow,
}

/// Read an unsigned varint from the front of `buf`: the value and the bytes used.
pub fn get(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if i == 9 && b > 1 {
            return Err(VarintError::Overflow);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
        if i == 9 {
            return Err(VarintError::Overflow);
        }
    }
    Err(VarintError::Truncated)
}

/// A cursor over a protobuf message, yielding `(field, wire_type)` and values.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Why a protobuf message could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0} at byte {1}")]
    Varint(VarintError, usize),
    #[error("field {field} at byte {pos} runs past the end of the message")]
    Truncated { field: u32, pos: usize },
    #[error("unsupported wire type {wire_type} for field {field} at byte {pos}")]
    WireType {
        field: u32,
        wire_type: u8,
        pos: usize,
    },
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, WireError> {
        let (v, n) = get(&self.buf[self.pos..]).map_err(|e| WireError::Varint(e, self.pos))?;
        self.pos += n;
        Ok(v)
    }

    /// The next tag, or `None` at the end of the message.
    pub fn tag(&mut self) -> Result<Option<(u32, u8)>, WireError> {
        if self.is_empty() {
            return Ok(None);
        }
        let at = self.pos;
        let t = self.varint()?;
        let field = t >> 3;
        if field == 0 {
            return Err(WireError::FieldZero(at));
        }
        let field = u32::try_from(field).map_err(|_| WireError::WireType {
            field: u32::MAX,
            wire_type: (t & 7) as u8,
            pos: at,
        })?;
        Ok(Some((field, (t & 7) as u8)))
    }

    pub fn bytes(&mut self, field: u32) -> Result<&'a [u8], WireError> {
        let at = self.pos;
        let n = self.varint()?;
        let rest = self.buf.len() - self.pos;
        if n > rest as u64 {
            return Err(WireError::Truncated { field, pos: at });
        }
        let n = n as usize;
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn fixed32(&mut self, field: u32) -> Result<u32, WireError> {
        let at = self.pos;
        let b = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or(WireError::Truncated { field, pos: at })?;
        self.pos += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Skip a field of a type this decoder does not know.
    pub fn skip(&mut self, field: u32, wire_type: u8) -> Result<(), WireError> {
        let at = self.pos;
        match wire_type {
            WT_VARINT => {
                self.varint()?;
            }
            WT_FIXED64 => {
                if self.buf.len() - self.pos < 8 {
                    return Err(WireError::Truncated { field, pos: at });
                }
                self.pos += 8;
            }
            WT_LEN => {
                self.bytes(field)?;
            }
            WT_FIXED32 => {
                self.fixed32(field)?;
            }
            _ => {
                return Err(WireError::WireType {
                    field,
                    wire_type,
                    pos: at,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_encoding() {
        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            2097151,
            2097152,
            34359738367,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out.len(), len(v), "{v}");
            assert_eq!(get(&out), Ok((v, out.len())));
        }
    }

    #[test]
    fn refuses_bad_varints() {
        assert_eq!(get(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(get(&[]), Err(VarintError::Truncated));
        assert_eq!(get(&[0xff; 10]), Err(VarintError::Overflow));
        assert_eq!(
            get(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(VarintError::Overflow)
        );
    }
}

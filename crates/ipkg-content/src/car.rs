//! CAR files: CARv1 read and write, CARv2 read.
//!
//! A CAR (Content Addressable aRchive) is a header naming zero or more root CIDs
//! followed by a sequence of sections, each `varint(len) | CID | block bytes`.
//! ipkg reads CARs from users (`ipkg install ./file.car`, `ipkg car import`) and
//! from trustless gateways, and writes them for `ipkg car export` and `ipkg serve`.
//!
//! Specs followed:
//! - CARv1: <https://ipld.io/specs/transport/car/carv1/> (header is a
//!   length-prefixed DAG-CBOR map `{roots: [&Any], version: 1}`, then sections).
//! - CARv2: <https://ipld.io/specs/transport/car/carv2/> (11-byte pragma, 40-byte
//!   header with characteristics, data offset, data size, index offset, all
//!   little-endian, then a CARv1 payload at the data offset).
//! - Varints: <https://github.com/multiformats/unsigned-varint> (at most 9
//!   bytes, minimal encoding).
//!
//! Goals:
//! - Stream: [`CarReader`] holds one section at a time, so memory is O(one block)
//!   whatever the size of the CAR. Sections longer than a block of
//!   [`MAX_BLOCK_SIZE`] plus its CID are refused before anything is allocated.
//! - Trust nothing: every block is hashed against its CID ([`cid::verify`])
//!   before it is returned; any malformed byte is an error naming its offset
//!   (counted from the start of the whole input, CARv2 pragma included), never a
//!   panic (there is a cargo-fuzz target, `fuzz/fuzz_targets/car_reader.rs`).
//! - Write byte for byte what Kubo's `ipfs dag export` (go-car) writes for the
//!   same roots and block order: the header is canonical DAG-CBOR, keys in
//!   length-first order (`roots` before `version`), minimal lengths.
//!
//! Non-goals:
//! - I/O: everything works over `std::io::Read`/`Write` or byte slices; opening
//!   files belongs to the caller (ipkg's `sources`). Readers over files should be wrapped in
//!   a `BufReader` (varints are read a byte at a time).
//! - The CARv2 index: it is ignored on read (it is only a seek accelerator and is
//!   not covered by any hash), and CARv2 is never written. Reading is sequential;
//!   nothing here seeks.
//! - DAG completeness: a CAR may hold any set of blocks (duplicates and blocks the
//!   roots do not reach included). Walking the DAG and noticing missing blocks is
//!   the job of the UnixFS reader over a [`super::BlockGet`].
//!
//! Decisions where the specs leave room (tolerant where it costs no safety):
//! - Roots: a header with an empty `roots` list is read (the spec leaves it
//!   open, go-car v2 writes such CARs, and the IPLD maintainers advise new
//!   readers to accept them: <https://github.com/ipld/ipld/issues/287>); whoever
//!   needs a root, such as install, checks for one. A missing `roots` key is an
//!   error.
//! - Header keys may come in any order and unknown keys are skipped (as go-car's
//!   struct decoding does); duplicate keys, indefinite lengths and trailing bytes
//!   are errors. Headers over [`MAX_HEADER_SIZE`] are refused.
//! - Zero-length sections are errors (go-car's `ZeroLengthSectionAsEOF` is an
//!   opt-in for padded CARv2 payloads; here a CARv2 payload ends at its declared
//!   data size, so padding after it is never read).
//! - Varints must be minimal and at most 9 bytes (multiformats unsigned-varint).

use std::io::{self, Read, Write};

use super::MAX_BLOCK_SIZE;
use super::cid::{self, Block, Cid, CidError};

/// The CARv2 pragma: a CARv1-style header `varint(10) | {version: 2}`.
pub const CARV2_PRAGMA: [u8; 11] = [
    0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02,
];

/// Length of the fixed CARv2 header that follows the pragma.
pub const CARV2_HEADER_LEN: u64 = 40;

/// The largest CARv1 header ipkg reads. go-car allows 32 MiB; a header is only
/// a list of roots, and 2 MiB holds over 50 000 of them, so the block limit is
/// plenty and keeps memory bounded by the same figure as everything else.
pub const MAX_HEADER_SIZE: usize = MAX_BLOCK_SIZE;

/// The longest binary CID a section may start with: version (1 byte), codec
/// (varint, at most 9), multihash code (at most 9), digest length (1 byte, since
/// digests are at most 64 bytes) and the digest.
pub const MAX_CID_LEN: usize = 1 + 9 + 9 + 1 + 64;

/// The longest section (CID and block) ipkg reads.
const MAX_SECTION_LEN: u64 = (MAX_BLOCK_SIZE + MAX_CID_LEN) as u64;

/// Multicodec of sha2-256 (the only hash a CIDv0 may use).
const SHA2_256: u64 = 0x12;

/// Why a CAR could not be read. Every variant names the byte offset (from the
/// start of the input) where the problem is, and the CID when there is one.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    #[error("could not read the CAR at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("the CAR ends early, at byte {offset}, in the middle of {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("invalid varint at byte {offset} of the CAR: {reason}")]
    InvalidVarint { offset: u64, reason: &'static str },
    #[error("invalid CAR header at byte {offset}: {reason}")]
    InvalidHeader { offset: u64, reason: String },
    #[error("the CAR header at byte {offset} is {len} bytes long, more than the {max} ipkg reads")]
    HeaderTooLarge { offset: u64, len: u64, max: usize },
    #[error("unsupported CAR version {version} in the header at byte {offset}")]
    UnsupportedVersion { offset: u64, version: u64 },
    #[error("invalid CARv2 header at byte {offset}: {reason}")]
    InvalidV2Header { offset: u64, reason: String },
    #[error("invalid CID at byte {offset} of the CAR: {reason}")]
    InvalidCid { offset: u64, reason: String },
    #[error("invalid CAR section at byte {offset}: {reason}")]
    InvalidSection { offset: u64, reason: String },
    #[error(
        "the CAR section at byte {offset} holds {len} bytes, more than a block of at most {max} bytes"
    )]
    BlockTooLarge { offset: u64, len: u64, max: usize },
    #[error("block `{cid}` in the CAR section at byte {offset} does not hash to its CID")]
    HashMismatch { cid: Cid, offset: u64 },
    #[error(
        "block `{cid}` in the CAR section at byte {offset} uses hash function 0x{code:x}, which ipkg cannot verify"
    )]
    UnsupportedHash { cid: Cid, offset: u64, code: u64 },
}

/// The fixed CARv2 header (after the pragma), as read. Only `data_offset` and
/// `data_size` matter to ipkg; the rest is kept for `ipkg car inspect`-style output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarV2Header {
    /// 128 bits of characteristics; bit 0 (the most significant bit of the first
    /// byte) is "fully indexed". Not interpreted.
    pub characteristics: [u8; 16],
    /// Where the inner CARv1 payload starts, from the first byte of the pragma.
    pub data_offset: u64,
    /// Length of the inner CARv1 payload.
    pub data_size: u64,
    /// Where the index starts (0: none). Ignored.
    pub index_offset: u64,
}

/// A streaming CAR reader over any [`Read`]: CARv1, or CARv2 (whose inner CARv1
/// payload it reads, ignoring the index).
///
/// [`CarReader::new`] reads and checks the header; [`CarReader::next_block`] (or
/// the [`Iterator`] impl) then yields verified blocks one at a time. After the
/// first error the reader is finished: later calls return `Ok(None)`.
#[derive(Debug)]
pub struct CarReader<R> {
    src: Source<R>,
    roots: Vec<Cid>,
    version: u64,
    v2: Option<CarV2Header>,
    done: bool,
}

impl<R: Read> CarReader<R> {
    /// Read the header (and for CARv2 skip to the data payload).
    pub fn new(r: R) -> Result<Self, CarError> {
        let mut src = Source {
            inner: r,
            pos: 0,
            end: None,
        };
        let outer = read_header(&mut src)?;
        match outer.version {
            1 => {
                let roots = outer.roots_v1()?;
                Ok(CarReader {
                    src,
                    roots,
                    version: 1,
                    v2: None,
                    done: false,
                })
            }
            2 => {
                let v2 = read_v2_header(&mut src)?;
                let inner = read_header(&mut src)?;
                if inner.version != 1 {
                    return Err(CarError::UnsupportedVersion {
                        offset: inner.offset,
                        version: inner.version,
                    });
                }
                let roots = inner.roots_v1()?;
                Ok(CarReader {
                    src,
                    roots,
                    version: 2,
                    v2: Some(v2),
                    done: false,
                })
            }
            version => Err(CarError::UnsupportedVersion {
                offset: outer.offset,
                version,
            }),
        }
    }

    /// The roots named in the (inner CARv1) header, in order. May be empty (the
    /// spec leaves it open; see the module docs): callers that need a root check.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// 1 for a CARv1, 2 for a CARv2.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The CARv2 header, for a CARv2.
    pub fn v2_header(&self) -> Option<&CarV2Header> {
        self.v2.as_ref()
    }

    /// How many bytes of the input have been consumed.
    pub fn offset(&self) -> u64 {
        self.src.pos
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.src.inner
    }

    /// The next block, verified against its CID; `Ok(None)` at a clean end (end
    /// of input exactly between sections, or the end of a CARv2 data payload).
    pub fn next_block(&mut self) -> Result<Option<Block>, CarError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_section();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_section(&mut self) -> Result<Option<Block>, CarError> {
        let start = self.src.pos;
        let Some(len) = self.src.varint("a section length", true)? else {
            // Input ended between sections: the end, unless a CARv2 header
            // promised more payload than there is.
            if self.src.remaining() > 0 && self.src.end.is_some() {
                return Err(CarError::Truncated {
                    offset: start,
                    what: "the CARv2 data payload",
                });
            }
            return Ok(None);
        };
        if len == 0 {
            // go-car has an opt-in `ZeroLengthSectionAsEOF` for padded CARv2
            // payloads; a CARv2 payload is bounded by its data size here, so
            // zero padding never reaches this point and is an error.
            return Err(CarError::InvalidSection {
                offset: start,
                reason: "section of length 0 (no room for a CID)".into(),
            });
        }
        if len > MAX_SECTION_LEN {
            return Err(CarError::BlockTooLarge {
                offset: start,
                len,
                max: MAX_BLOCK_SIZE,
            });
        }
        let cid_offset = self.src.pos;
        // Bounded by MAX_SECTION_LEN just above.
        let mut buf = self.src.read_exact_vec(len as usize, "a block section")?;
        let (cid, cid_len) = parse_cid(&buf).map_err(|e| match e {
            CidParseError::Short => CarError::InvalidSection {
                offset: start,
                reason: format!("section of {len} bytes is too short for its CID"),
            },
            CidParseError::Invalid { at, reason } => CarError::InvalidCid {
                offset: cid_offset + at as u64,
                reason,
            },
        })?;
        let data_len = buf.len() - cid_len;
        if data_len > MAX_BLOCK_SIZE {
            return Err(CarError::BlockTooLarge {
                offset: start,
                len: data_len as u64,
                max: MAX_BLOCK_SIZE,
            });
        }
        buf.drain(..cid_len);
        match cid::verify(&cid, &buf) {
            Ok(()) => Ok(Some(Block { cid, data: buf })),
            Err(CidError::UnsupportedHash { code, .. }) => Err(CarError::UnsupportedHash {
                cid,
                offset: start,
                code,
            }),
            Err(_) => Err(CarError::HashMismatch { cid, offset: start }),
        }
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<Block, CarError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

impl<R: Read> std::iter::FusedIterator for CarReader<R> {}

/// Read a whole CAR held in memory: its roots and every block, verified.
pub fn read_all(bytes: &[u8]) -> Result<(Vec<Cid>, Vec<Block>), CarError> {
    let mut reader = CarReader::new(bytes)?;
    let mut blocks = Vec::new();
    while let Some(block) = reader.next_block()? {
        blocks.push(block);
    }
    Ok((reader.roots, blocks))
}

/// Writes a CARv1: the header on creation, then one section per block.
///
/// Blocks are written as given, in the order given: the writer does not hash
/// them (callers hand it blocks that came out of a verifying store) and does not
/// deduplicate. Wrap files in a `BufWriter`.
#[derive(Debug)]
pub struct CarWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> CarWriter<W> {
    /// Write the CARv1 header for `roots`. Zero roots are allowed (readers that
    /// follow go-car v0 refuse such a CAR; Kubo never writes one).
    pub fn new(mut w: W, roots: &[Cid]) -> io::Result<Self> {
        let header = encode_header(roots);
        w.write_all(&header)?;
        Ok(CarWriter {
            inner: w,
            written: header.len() as u64,
        })
    }

    /// Append one section. Blocks over [`MAX_BLOCK_SIZE`] are refused
    /// (`InvalidInput`), since no reader of ipkg's would accept them.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> io::Result<()> {
        if data.len() > MAX_BLOCK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "block `{cid}` is {} bytes, more than the {MAX_BLOCK_SIZE}-byte limit",
                    data.len()
                ),
            ));
        }
        let cid_bytes = cid.to_bytes();
        let mut prefix = Vec::with_capacity(10 + cid_bytes.len());
        put_varint(&mut prefix, (cid_bytes.len() + data.len()) as u64);
        prefix.extend_from_slice(&cid_bytes);
        self.inner.write_all(&prefix)?;
        self.inner.write_all(data)?;
        self.written += (prefix.len() + data.len()) as u64;
        Ok(())
    }

    /// Bytes written so far, header included.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Flush and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// The CARv1 header for `roots`, length prefix included, exactly as go-car
/// writes it: `{"roots": [tag42(0x00 ‖ cid)…], "version": 1}` in canonical
/// DAG-CBOR (keys sorted by length then bytes, shortest-form lengths).
pub fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut cbor = Vec::with_capacity(16 + roots.len() * 42);
    cbor_head(&mut cbor, 5, 2);
    cbor_head(&mut cbor, 3, 5);
    cbor.extend_from_slice(b"roots");
    cbor_head(&mut cbor, 4, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        cbor.extend_from_slice(&[0xd8, 42]);
        cbor_head(&mut cbor, 2, bytes.len() as u64 + 1);
        cbor.push(0x00);
        cbor.extend_from_slice(&bytes);
    }
    cbor_head(&mut cbor, 3, 7);
    cbor.extend_from_slice(b"version");
    cbor_head(&mut cbor, 0, 1);
    let mut out = Vec::with_capacity(cbor.len() + 5);
    put_varint(&mut out, cbor.len() as u64);
    out.extend_from_slice(&cbor);
    out
}

/// A CBOR head (major type and argument) in its shortest form.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

// ---------------------------------------------------------------------------
// Reading: the byte source

/// The input with a running offset and, inside a CARv2, the end of the payload.
#[derive(Debug)]
struct Source<R> {
    inner: R,
    pos: u64,
    /// Offset where input ends for us (CARv2 `data_offset + data_size`).
    end: Option<u64>,
}

impl<R: Read> Source<R> {
    fn remaining(&self) -> u64 {
        match self.end {
            Some(end) => end.saturating_sub(self.pos),
            None => u64::MAX,
        }
    }

    /// One byte, or `None` at the end of input (or of the CARv2 payload).
    fn byte(&mut self) -> Result<Option<u8>, CarError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.pos += 1;
                    return Ok(Some(b[0]));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(CarError::Io {
                        offset: self.pos,
                        source,
                    });
                }
            }
        }
    }

    /// Exactly `n` bytes (the caller bounds `n`), or `Truncated`. The buffer grows
    /// as bytes arrive, so a lying length on a short input costs little memory.
    fn read_exact_vec(&mut self, n: usize, what: &'static str) -> Result<Vec<u8>, CarError> {
        let want = (n as u64).min(self.remaining());
        let mut buf = Vec::with_capacity(n.min(64 * 1024));
        let start = self.pos;
        let got = (&mut self.inner)
            .take(want)
            .read_to_end(&mut buf)
            .map_err(|source| CarError::Io {
                offset: start + buf.len() as u64,
                source,
            })?;
        self.pos += got as u64;
        if got < n {
            return Err(CarError::Truncated {
                offset: self.pos,
                what,
            });
        }
        Ok(buf)
    }

    /// Skip `n` bytes without keeping them.
    fn skip(&mut self, n: u64, what: &'static str) -> Result<(), CarError> {
        let start = self.pos;
        let got = io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(|source| {
            CarError::Io {
                offset: start,
                source,
            }
        })?;
        self.pos += got;
        if got < n {
            return Err(CarError::Truncated {
                offset: self.pos,
                what,
            });
        }
        Ok(())
    }

    /// An unsigned varint. With `eof_ok`, a clean end before its first byte gives
    /// `None`; an end inside it is always `Truncated`.
    fn varint(&mut self, what: &'static str, eof_ok: bool) -> Result<Option<u64>, CarError> {
        let start = self.pos;
        let mut buf = [0u8; 9];
        for i in 0..9 {
            let Some(b) = self.byte()? else {
                if i == 0 && eof_ok {
                    return Ok(None);
                }
                return Err(CarError::Truncated {
                    offset: self.pos,
                    what,
                });
            };
            buf[i] = b;
            if b & 0x80 == 0 {
                return decode_varint(&buf[..=i])
                    .map(|(n, _)| Some(n))
                    .map_err(|e| e.at(start));
            }
        }
        Err(VarintError::Overlong.at(start))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarintError {
    Short,
    Overlong,
    NotMinimal,
}

impl VarintError {
    fn reason(self) -> &'static str {
        match self {
            VarintError::Short => "ends before its last byte",
            VarintError::Overlong => "longer than 9 bytes",
            VarintError::NotMinimal => "not minimally encoded",
        }
    }

    fn at(self, offset: u64) -> CarError {
        CarError::InvalidVarint {
            offset,
            reason: self.reason(),
        }
    }
}

/// Decode a multiformats unsigned varint from the front of `bytes`: at most 9
/// bytes (63 bits), and minimal (no trailing `0x00` group), as its spec demands.
fn decode_varint(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut n: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i == 9 {
            return Err(VarintError::Overlong);
        }
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(VarintError::NotMinimal);
            }
            return Ok((n, i + 1));
        }
    }
    if bytes.len() >= 9 {
        Err(VarintError::Overlong)
    } else {
        Err(VarintError::Short)
    }
}

// ---------------------------------------------------------------------------
// Reading: CIDs

enum CidParseError {
    /// The bytes end before the CID does.
    Short,
    /// Malformed at byte `at` of the slice.
    Invalid { at: usize, reason: String },
}

/// Parse a binary CID from the front of `bytes`; returns it and its length.
fn parse_cid(bytes: &[u8]) -> Result<(Cid, usize), CidParseError> {
    let invalid = |at: usize, reason: String| CidParseError::Invalid { at, reason };
    // CIDv0 is a bare sha2-256 multihash: 0x12 0x20 and 32 digest bytes.
    if bytes.first() == Some(&0x12) && bytes.get(1) == Some(&0x20) {
        let digest = bytes.get(2..34).ok_or(CidParseError::Short)?;
        let mh = multihash::Multihash::<64>::wrap(SHA2_256, digest)
            .map_err(|e| invalid(0, e.to_string()))?;
        let cid = Cid::new_v0(mh).map_err(|e| invalid(0, e.to_string()))?;
        return Ok((cid, 34));
    }
    let mut at = 0;
    let mut next = |what: &str| -> Result<(u64, usize), CidParseError> {
        let field_at = at;
        let (n, used) = decode_varint(&bytes[at..]).map_err(|e| match e {
            VarintError::Short => CidParseError::Short,
            e => invalid(field_at, format!("{what}: {}", e.reason())),
        })?;
        at += used;
        Ok((n, field_at))
    };
    let (version, _) = next("version")?;
    if version != 1 {
        return Err(invalid(0, format!("unsupported CID version {version}")));
    }
    let (codec, _) = next("codec")?;
    let (code, mh_at) = next("multihash code")?;
    let (len, len_at) = next("digest length")?;
    if len > 64 {
        return Err(invalid(
            len_at,
            format!("digest of {len} bytes (ipkg reads at most 64)"),
        ));
    }
    let digest_start = at;
    let digest_end = digest_start + len as usize;
    let digest = bytes
        .get(digest_start..digest_end)
        .ok_or(CidParseError::Short)?;
    let mh = multihash::Multihash::<64>::wrap(code, digest)
        .map_err(|e| invalid(mh_at, e.to_string()))?;
    Ok((Cid::new_v1(codec, mh), digest_end))
}

// ---------------------------------------------------------------------------
// Reading: headers

/// A decoded CAR header map (CARv1 header, or the CARv2 pragma).
#[derive(Debug)]
struct Header {
    /// Offset of the header's length varint.
    offset: u64,
    version: u64,
    roots: Option<Vec<Cid>>,
}

impl Header {
    /// The roots of a version-1 header.
    ///
    /// A missing `roots` key is an error (the spec's schema has no optional
    /// field). An empty list is accepted: the spec leaves it open, go-car v2's
    /// blockstore writes such CARs and the IPLD maintainers advise new readers to
    /// allow them (<https://github.com/ipld/ipld/issues/287>). Whoever needs a
    /// root (installing a package) checks for one.
    fn roots_v1(self) -> Result<Vec<Cid>, CarError> {
        self.roots.ok_or_else(|| CarError::InvalidHeader {
            offset: self.offset,
            reason: "no `roots` key".into(),
        })
    }
}

fn read_header<R: Read>(src: &mut Source<R>) -> Result<Header, CarError> {
    let offset = src.pos;
    let len = src
        .varint("the header length", false)?
        .ok_or(CarError::Truncated {
            offset,
            what: "the header length",
        })?;
    if len == 0 {
        return Err(CarError::InvalidHeader {
            offset,
            reason: "header of length 0".into(),
        });
    }
    if len > MAX_HEADER_SIZE as u64 {
        return Err(CarError::HeaderTooLarge {
            offset,
            len,
            max: MAX_HEADER_SIZE,
        });
    }
    let body_offset = src.pos;
    let bytes = src.read_exact_vec(len as usize, "the header")?;
    decode_header(&bytes, body_offset).map(|(version, roots)| Header {
        offset,
        version,
        roots,
    })
}

/// Decode the DAG-CBOR header map. Keys may come in any order; unknown keys are
/// skipped (go-car's struct decoding ignores them too); a duplicate key, an
/// indefinite length, or trailing bytes are errors.
fn decode_header(bytes: &[u8], base: u64) -> Result<(u64, Option<Vec<Cid>>), CarError> {
    let mut c = Cbor {
        bytes,
        pos: 0,
        base,
    };
    let (major, entries) = c.head()?;
    if major != 5 {
        return Err(c.err(0, "not a CBOR map"));
    }
    let mut version = None;
    let mut roots: Option<Vec<Cid>> = None;
    for _ in 0..entries {
        let key_at = c.pos;
        let (major, len) = c.head()?;
        if major != 3 {
            return Err(c.err(key_at, "map key is not a text string"));
        }
        let key = c.take(len)?;
        match key {
            b"version" => {
                if version.is_some() {
                    return Err(c.err(key_at, "duplicate key `version`"));
                }
                let at = c.pos;
                let (major, n) = c.head()?;
                if major != 0 {
                    return Err(c.err(at, "`version` is not an unsigned integer"));
                }
                version = Some(n);
            }
            b"roots" => {
                if roots.is_some() {
                    return Err(c.err(key_at, "duplicate key `roots`"));
                }
                let at = c.pos;
                let (major, n) = c.head()?;
                if major != 4 {
                    return Err(c.err(at, "`roots` is not an array"));
                }
                // Each root takes at least 3 bytes, so `n` is bounded by the header.
                let mut list = Vec::with_capacity((n as usize).min(bytes.len() / 3));
                for _ in 0..n {
                    list.push(c.cid_link()?);
                }
                roots = Some(list);
            }
            _ => c.skip(0)?,
        }
    }
    if c.pos != bytes.len() {
        return Err(c.err(c.pos, "trailing bytes after the header map"));
    }
    let version = version.ok_or_else(|| CarError::InvalidHeader {
        offset: base,
        reason: "no `version` key".into(),
    })?;
    Ok((version, roots))
}

/// A tiny DAG-CBOR cursor: just what a CAR header needs.
struct Cbor<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

impl Cbor<'_> {
    fn err(&self, at: usize, reason: &str) -> CarError {
        CarError::InvalidHeader {
            offset: self.base + at as u64,
            reason: reason.to_string(),
        }
    }

    fn take(&mut self, n: u64) -> Result<&[u8], CarError> {
        let start = self.pos;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.err(start, "ends inside a CBOR item"))?;
        self.pos = end;
        Ok(&self.bytes[start..end])
    }

    /// A CBOR head: major type and argument. Indefinite lengths and reserved
    /// additional info are refused (DAG-CBOR forbids them).
    fn head(&mut self) -> Result<(u8, u64), CarError> {
        let at = self.pos;
        let first = *self
            .bytes
            .get(at)
            .ok_or_else(|| self.err(at, "ends where a CBOR item was expected"))?;
        self.pos += 1;
        let major = first >> 5;
        let info = first & 0x1f;
        let n = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let size = 1usize << (info - 24);
                let raw = self.take(size as u64)?;
                raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            _ => return Err(self.err(at, "indefinite or reserved CBOR length")),
        };
        Ok((major, n))
    }

    /// A DAG-CBOR link: tag 42 around a byte string `0x00 ‖ binary CID`.
    fn cid_link(&mut self) -> Result<Cid, CarError> {
        let at = self.pos;
        let (major, tag) = self.head()?;
        if major != 6 || tag != 42 {
            return Err(self.err(at, "root is not a CID (tag 42)"));
        }
        let bytes_at = self.pos;
        let (major, len) = self.head()?;
        if major != 2 {
            return Err(self.err(bytes_at, "CID link is not a byte string"));
        }
        let start = self.pos;
        let raw = self.take(len)?;
        let Some((&0x00, cid_bytes)) = raw.split_first() else {
            return Err(self.err(start, "CID link lacks the 0x00 multibase prefix"));
        };
        match parse_cid(cid_bytes) {
            Ok((cid, used)) if used == cid_bytes.len() => Ok(cid),
            Ok(_) => Err(self.err(start, "trailing bytes after the root CID")),
            Err(CidParseError::Short) => Err(self.err(start, "root CID is cut short")),
            Err(CidParseError::Invalid { at, reason }) => Err(CarError::InvalidCid {
                offset: self.base + (start + 1 + at) as u64,
                reason,
            }),
        }
    }

    /// Skip one item of any type (for unknown header keys).
    fn skip(&mut self, depth: u32) -> Result<(), CarError> {
        if depth > 16 {
            return Err(self.err(self.pos, "CBOR nested too deeply"));
        }
        let (major, n) = self.head()?;
        match major {
            0 | 1 | 7 => {}
            2 | 3 => {
                self.take(n)?;
            }
            4 => {
                for _ in 0..n {
                    self.skip(depth + 1)?;
                }
            }
            5 => {
                for _ in 0..n {
                    self.skip(depth + 1)?;
                    self.skip(depth + 1)?;
                }
            }
            _ => self.skip(depth + 1)?, // 6: a tag, then its item
        }
        Ok(())
    }
}

/// The 40-byte CARv2 header after the pragma; leaves `src` at the start of the
/// data payload with its end set.
fn read_v2_header<R: Read>(src: &mut Source<R>) -> Result<CarV2Header, CarError> {
    let offset = src.pos;
    if offset != CARV2_PRAGMA.len() as u64 {
        // A `{version: 2}` header of another length than the pragma's.
        return Err(CarError::InvalidV2Header {
            offset: 0,
            reason: "the CARv2 pragma is not the fixed 11 bytes".into(),
        });
    }
    let raw = src.read_exact_vec(CARV2_HEADER_LEN as usize, "the CARv2 header")?;
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let mut characteristics = [0u8; 16];
    characteristics.copy_from_slice(&raw[..16]);
    let header = CarV2Header {
        characteristics,
        data_offset: u64_at(16),
        data_size: u64_at(24),
        index_offset: u64_at(32),
    };
    let payload_min = offset + CARV2_HEADER_LEN;
    if header.data_offset < payload_min {
        return Err(CarError::InvalidV2Header {
            offset: offset + 16,
            reason: format!(
                "data offset {} points inside the header (the payload starts at {payload_min} or later)",
                header.data_offset
            ),
        });
    }
    let end = header
        .data_offset
        .checked_add(header.data_size)
        .ok_or_else(|| CarError::InvalidV2Header {
            offset: offset + 24,
            reason: format!(
                "data offset {} plus data size {} overflows",
                header.data_offset, header.data_size
            ),
        })?;
    src.skip(
        header.data_offset - src.pos,
        "the padding before the CARv2 data payload",
    )?;
    src.end = Some(end);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;
    use crate::cid::cid_of;

    fn car_of(roots: &[Cid], blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
        let mut w = CarWriter::new(Vec::new(), roots).unwrap();
        for (cid, data) in blocks {
            w.write_block(cid, data).unwrap();
        }
        w.finish().unwrap()
    }

    fn raw_block(data: &[u8]) -> (Cid, Vec<u8>) {
        (cid_of(1, Codec::Raw, data), data.to_vec())
    }

    #[test]
    fn round_trip_small() {
        let a = raw_block(b"hello");
        let b = raw_block(b"world");
        let bytes = car_of(&[a.0], &[a.clone(), b.clone()]);
        let (roots, blocks) = read_all(&bytes).unwrap();
        assert_eq!(roots, vec![a.0]);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].data, b"world");
    }

    #[test]
    fn header_matches_go_car_bytes() {
        // From the gateway-conformance `symlink.car`: CIDv0 root.
        let root = cid::parse("QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt").unwrap();
        let h = encode_header(&[root]);
        assert_eq!(h[0], 0x38);
        assert_eq!(&h[1..14], b"\xa2\x65roots\x81\xd8\x2a\x58\x23\x00");
        assert_eq!(&h[h.len() - 9..], b"\x67version\x01");
    }

    #[test]
    fn varints() {
        assert_eq!(decode_varint(&[0x00]), Ok((0, 1)));
        assert_eq!(decode_varint(&[0x96, 0x01]), Ok((150, 2)));
        assert_eq!(decode_varint(&[0x80, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(decode_varint(&[0x80]), Err(VarintError::Short));
        assert_eq!(decode_varint(&[0xff; 10]), Err(VarintError::Overlong));
        let mut v = Vec::new();
        put_varint(&mut v, u64::MAX >> 1);
        assert_eq!(v.len(), 9);
        assert_eq!(decode_varint(&v), Ok((u64::MAX >> 1, 9)));
    }

    #[test]
    fn empty_roots_are_read() {
        let bytes = car_of(&[], &[raw_block(b"x")]);
        let (roots, blocks) = read_all(&bytes).unwrap();
        assert!(roots.is_empty());
        assert_eq!(blocks.len(), 1);
    }

    #[test]
    fn keys_in_any_order_and_unknown_keys() {
        let root = cid_of(1, Codec::Raw, b"x");
        let mut cbor = vec![0xa3, 0x67];
        cbor.extend_from_slice(b"version");
        cbor.push(0x01);
        cbor.extend_from_slice(b"\x65extra\x82\x01\xa1\x61a\xf6");
        cbor.extend_from_slice(b"\x65roots\x81\xd8\x2a");
        let cb = root.to_bytes();
        cbor.push(0x58);
        cbor.push(cb.len() as u8 + 1);
        cbor.push(0);
        cbor.extend_from_slice(&cb);
        let mut bytes = Vec::new();
        put_varint(&mut bytes, cbor.len() as u64);
        bytes.extend_from_slice(&cbor);
        let (roots, blocks) = read_all(&bytes).unwrap();
        assert_eq!(roots, vec![root]);
        assert!(blocks.is_empty());
    }

    #[test]
    fn carv2_reads_inner_payload_only() {
        let a = raw_block(b"inner");
        let v1 = car_of(&[a.0], std::slice::from_ref(&a));
        let data_offset = 11 + 40 + 5u64;
        let mut v2 = CARV2_PRAGMA.to_vec();
        v2.extend_from_slice(&[0u8; 16]);
        v2.extend_from_slice(&data_offset.to_le_bytes());
        v2.extend_from_slice(&(v1.len() as u64).to_le_bytes());
        v2.extend_from_slice(&0u64.to_le_bytes());
        v2.extend_from_slice(&[0u8; 5]);
        v2.extend_from_slice(&v1);
        v2.extend_from_slice(b"\x01garbage index that must not be read");
        let mut r = CarReader::new(&v2[..]).unwrap();
        assert_eq!(r.version(), 2);
        assert_eq!(r.roots(), &[a.0]);
        assert_eq!(r.v2_header().unwrap().data_offset, data_offset);
        let blocks: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            blocks,
            vec![Block {
                cid: a.0,
                data: a.1
            }]
        );
        assert_eq!(r.offset(), data_offset + v1.len() as u64);
    }
}

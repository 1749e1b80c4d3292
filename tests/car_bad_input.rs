//! The CAR reader on hostile and broken input: every failure is a typed error
//! that names its offset (and CID), never a panic; plus round-trip properties.

mod support;

use ipkg::content::MAX_BLOCK_SIZE;
use ipkg::content::car::{
    CARV2_PRAGMA, CarError, CarReader, CarWriter, MAX_CID_LEN, MAX_HEADER_SIZE, encode_header,
    read_all,
};
use ipkg::content::cid::{self, Cid, Codec, cid_of};
use proptest::prelude::*;

fn vector(name: &str) -> Vec<u8> {
    let path = support::shared_vectors("car").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

fn car_of(roots: &[Cid], blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut w = CarWriter::new(Vec::new(), roots).unwrap();
    for (cid, data) in blocks {
        w.write_block(cid, data).unwrap();
    }
    w.finish().unwrap()
}

/// A CAR with a raw header body (CBOR bytes, length prefix added).
fn with_header(cbor: &[u8]) -> Vec<u8> {
    let mut out = varint(cbor.len() as u64);
    out.extend_from_slice(cbor);
    out
}

fn cbor_link(cid: &Cid) -> Vec<u8> {
    let b = cid.to_bytes();
    let mut out = vec![0xd8, 0x2a, 0x58, b.len() as u8 + 1, 0x00];
    out.extend_from_slice(&b);
    out
}

fn err_of(bytes: &[u8]) -> CarError {
    match read_all(bytes) {
        Ok(_) => panic!("read_all accepted a bad CAR"),
        Err(e) => e,
    }
}

#[test]
fn flipped_byte_in_a_block_names_the_cid() {
    let mut bytes = vector("dir-with-files.car");
    // The last section (offset 1900) is the 2-byte raw leaf `bafkreifst3…`.
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    match err_of(&bytes) {
        CarError::HashMismatch { cid, offset } => {
            assert_eq!(
                cid.to_string(),
                "bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm"
            );
            assert_eq!(offset, 1900);
        }
        e => panic!("{e}"),
    }
    // Blocks before the bad one were still handed out.
    let mut r = CarReader::new(&bytes[..]).unwrap();
    let mut good = 0;
    while let Ok(Some(_)) = r.next_block() {
        good += 1;
    }
    assert_eq!(good, 8);
    assert!(r.next_block().unwrap().is_none(), "fused after the error");
}

#[test]
fn truncated_at_every_offset() {
    let bytes = vector("symlink.car");
    // Section boundaries in symlink.car: header ends at 57, then 187, 231, 282.
    let boundaries = [(57, 0), (187, 1), (231, 2), (282, 3)];
    for cut in 0..=bytes.len() {
        match read_all(&bytes[..cut]) {
            Ok((roots, blocks)) => {
                let expected = boundaries.iter().find(|b| b.0 == cut);
                assert_eq!(Some(blocks.len()), expected.map(|b| b.1), "cut at {cut}");
                assert_eq!(roots.len(), 1);
            }
            Err(CarError::Truncated { offset, .. }) => {
                assert!(!boundaries.iter().any(|b| b.0 == cut), "cut at {cut}");
                assert_eq!(offset, cut as u64, "cut at {cut}");
            }
            Err(e) => panic!("cut at {cut}: unexpected {e}"),
        }
    }
}

#[test]
fn section_longer_than_a_block_is_refused_before_reading_it() {
    let root = cid_of(1, Codec::Raw, b"r");
    let mut bytes = encode_header(&[root]);
    let at = bytes.len() as u64;
    let len = (MAX_BLOCK_SIZE + MAX_CID_LEN + 1) as u64;
    bytes.extend(varint(len));
    // No body at all: refusing must not depend on reading (or allocating) it.
    match err_of(&bytes) {
        CarError::BlockTooLarge { offset, len: l, .. } => {
            assert_eq!((offset, l), (at, len));
        }
        e => panic!("{e}"),
    }
    // A 4 GiB claim too.
    let mut bytes = encode_header(&[root]);
    bytes.extend(varint(1 << 32));
    assert!(matches!(err_of(&bytes), CarError::BlockTooLarge { .. }));
}

#[test]
fn block_over_the_limit_is_refused_and_the_limit_itself_is_fine() {
    let data = vec![7u8; MAX_BLOCK_SIZE + 1];
    let cid = cid_of(1, Codec::Raw, &data);
    let mut bytes = encode_header(&[cid]);
    let cb = cid.to_bytes();
    bytes.extend(varint((cb.len() + data.len()) as u64));
    bytes.extend_from_slice(&cb);
    bytes.extend_from_slice(&data);
    assert!(matches!(err_of(&bytes), CarError::BlockTooLarge { .. }));

    // The writer refuses to make such a CAR.
    let mut w = CarWriter::new(Vec::new(), &[cid]).unwrap();
    assert!(w.write_block(&cid, &data).is_err());

    let data = &data[..MAX_BLOCK_SIZE];
    let cid = cid_of(1, Codec::Raw, data);
    let (_, blocks) = read_all(&car_of(&[cid], &[(cid, data.to_vec())])).unwrap();
    assert_eq!(blocks[0].data.len(), MAX_BLOCK_SIZE);
}

#[test]
fn bad_headers() {
    let root = cid_of(1, Codec::Raw, b"r");
    let roots_field = {
        let mut v = b"\x65roots\x81".to_vec();
        v.extend(cbor_link(&root));
        v
    };

    // Not CBOR at all (0xff is a CBOR "break" with nothing to break).
    assert!(matches!(
        err_of(&with_header(b"\xff\xff")),
        CarError::InvalidHeader { offset: 1, .. }
    ));
    // CBOR, but not a map.
    assert!(matches!(
        err_of(&with_header(b"\x63abc")),
        CarError::InvalidHeader { .. }
    ));
    // Wrong version.
    let mut h = vec![0xa2];
    h.extend(&roots_field);
    h.extend(b"\x67version\x03");
    match err_of(&with_header(&h)) {
        CarError::UnsupportedVersion { version, offset } => assert_eq!((version, offset), (3, 0)),
        e => panic!("{e}"),
    }
    // Missing roots.
    match err_of(&with_header(b"\xa1\x67version\x01")) {
        CarError::InvalidHeader { reason, .. } => assert!(reason.contains("roots"), "{reason}"),
        e => panic!("{e}"),
    }
    // Missing version.
    let mut h = vec![0xa1];
    h.extend(&roots_field);
    assert!(matches!(
        err_of(&with_header(&h)),
        CarError::InvalidHeader { .. }
    ));
    // Duplicate key.
    let mut h = vec![0xa3];
    h.extend(&roots_field);
    h.extend(b"\x67version\x01\x67version\x01");
    assert!(matches!(
        err_of(&with_header(&h)),
        CarError::InvalidHeader { .. }
    ));
    // Trailing bytes inside the header length.
    let mut h = encode_header(&[root]);
    h[0] += 1;
    h.push(0x00);
    assert!(matches!(err_of(&h), CarError::InvalidHeader { .. }));
    // A root that is not a tag-42 link, or lacks the 0x00 prefix.
    let h = with_header(b"\xa2\x65roots\x81\x01\x67version\x01");
    assert!(matches!(err_of(&h), CarError::InvalidHeader { .. }));
    let mut h = b"\xa2\x65roots\x81".to_vec();
    let mut link = cbor_link(&root);
    link.remove(4);
    link[3] -= 1;
    h.extend(link);
    h.extend(b"\x67version\x01");
    assert!(matches!(
        err_of(&with_header(&h)),
        CarError::InvalidHeader { .. } | CarError::InvalidCid { .. }
    ));
    // Indefinite-length map (not DAG-CBOR).
    assert!(matches!(
        err_of(&with_header(b"\xbf\xff")),
        CarError::InvalidHeader { .. }
    ));
    // Zero-length header and a header length over the limit.
    assert!(matches!(err_of(&[0x00]), CarError::InvalidHeader { .. }));
    assert!(matches!(
        err_of(&varint(MAX_HEADER_SIZE as u64 + 1)),
        CarError::HeaderTooLarge { .. }
    ));
    // A non-minimal varint for the header length.
    assert!(matches!(
        err_of(&[0xb8, 0x00]),
        CarError::InvalidVarint { offset: 0, .. }
    ));
}

#[test]
fn bad_sections() {
    let root = cid_of(1, Codec::Raw, b"r");
    let header = encode_header(&[root]);
    let at = header.len() as u64;
    let section = |body: &[u8]| {
        let mut v = header.clone();
        v.extend(varint(body.len() as u64));
        v.extend_from_slice(body);
        v
    };
    // Zero-length section.
    assert!(matches!(
        err_of(&section(b"")),
        CarError::InvalidSection { .. }
    ));
    // CID version 2.
    match err_of(&section(b"\x02\x55\x12\x20")) {
        CarError::InvalidCid { offset, reason } => {
            assert_eq!(offset, at + 1);
            assert!(reason.contains("version"), "{reason}");
        }
        e => panic!("{e}"),
    }
    // Section shorter than its CID.
    assert!(matches!(
        err_of(&section(&root.to_bytes()[..10])),
        CarError::InvalidSection { .. }
    ));
    // Digest longer than 64 bytes.
    let mut body = b"\x01\x55\x12\x41".to_vec();
    body.extend([0u8; 65]);
    assert!(matches!(
        err_of(&section(&body)),
        CarError::InvalidCid { .. }
    ));
    // A hash ipkg cannot verify (blake2b-256, 0xb220).
    let mut body = b"\x01\x55\xa0\xe4\x02\x20".to_vec();
    body.extend([0u8; 32]);
    body.extend(b"data");
    assert!(matches!(
        err_of(&section(&body)),
        CarError::UnsupportedHash { code: 0xb220, .. }
    ));
    // Non-minimal section length.
    let mut v = header.clone();
    v.extend([0x81, 0x00]);
    assert!(matches!(
        err_of(&v),
        CarError::InvalidVarint { offset, .. } if offset == at
    ));
    // An identity CID verifies by comparison.
    let mh = multihash::Multihash::<64>::wrap(0x00, b"inline").unwrap();
    let id = Cid::new_v1(0x55, mh);
    let (_, blocks) = read_all(&car_of(&[id], &[(id, b"inline".to_vec())])).unwrap();
    assert_eq!(blocks[0].cid, id);
    let bad = car_of(&[id], &[(id, b"inlinf".to_vec())]);
    assert!(matches!(err_of(&bad), CarError::HashMismatch { .. }));
}

fn carv2(data_offset: u64, data_size: u64, padding: usize, payload: &[u8]) -> Vec<u8> {
    let mut v = CARV2_PRAGMA.to_vec();
    v.extend([0u8; 16]);
    v.extend(data_offset.to_le_bytes());
    v.extend(data_size.to_le_bytes());
    v.extend(0u64.to_le_bytes());
    v.extend(std::iter::repeat_n(0u8, padding));
    v.extend_from_slice(payload);
    v
}

#[test]
fn carv2_bad_offsets() {
    let v1 = vector("symlink.car");
    let n = v1.len() as u64;
    // A good one, for contrast.
    let (roots, blocks) = read_all(&carv2(51, n, 0, &v1)).unwrap();
    assert_eq!((roots.len(), blocks.len()), (1, 3));

    // Data offset past the end of input.
    match err_of(&carv2(51 + 10_000, n, 0, &v1)) {
        CarError::Truncated { offset, .. } => assert_eq!(offset, 51 + n),
        e => panic!("{e}"),
    }
    // Data offset inside the CARv2 header.
    assert!(matches!(
        err_of(&carv2(40, n, 0, &v1)),
        CarError::InvalidV2Header { .. }
    ));
    // Offset + size overflows.
    assert!(matches!(
        err_of(&carv2(51, u64::MAX, 0, &v1)),
        CarError::InvalidV2Header { .. }
    ));
    // Data size that cuts the payload mid-section: truncated at the payload end.
    match err_of(&carv2(51, n - 5, 0, &v1)) {
        CarError::Truncated { offset, .. } => assert_eq!(offset, 51 + n - 5),
        e => panic!("{e}"),
    }
    // Data size larger than the input.
    assert!(matches!(
        err_of(&carv2(51, n + 100, 0, &v1)),
        CarError::Truncated { .. }
    ));
    // Truncated inside the 40-byte header.
    assert!(matches!(
        err_of(&carv2(51, n, 0, &v1)[..30]),
        CarError::Truncated { offset: 30, .. }
    ));
    // An inner header that is itself a CARv2 pragma.
    let mut nested = CARV2_PRAGMA.to_vec();
    nested.extend(&v1);
    assert!(matches!(
        err_of(&carv2(51, nested.len() as u64, 0, &nested)),
        CarError::UnsupportedVersion {
            version: 2,
            offset: 51
        }
    ));
}

fn arb_block() -> impl Strategy<Value = (Cid, Vec<u8>)> {
    (
        proptest::collection::vec(any::<u8>(), 0..600),
        prop_oneof![
            Just((1u8, Codec::Raw)),
            Just((0u8, Codec::DagPb)),
            Just((1u8, Codec::DagCbor))
        ],
    )
        .prop_map(|(data, (version, codec))| (cid_of(version, codec, &data), data))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn write_then_read_round_trips(
        blocks in proptest::collection::vec(arb_block(), 0..12),
        n_roots in 0usize..4,
    ) {
        let roots: Vec<Cid> = blocks.iter().take(n_roots).map(|b| b.0).collect();
        let bytes = car_of(&roots, &blocks);
        let mut reader = CarReader::new(&bytes[..]).unwrap();
        prop_assert_eq!(reader.roots(), &roots[..]);
        for (cid, data) in &blocks {
            let b = reader.next_block().unwrap().unwrap();
            prop_assert_eq!(&b.cid, cid);
            prop_assert_eq!(&b.data, data);
            cid::verify(&b.cid, &b.data).unwrap();
        }
        prop_assert!(reader.next_block().unwrap().is_none());
        prop_assert_eq!(reader.offset(), bytes.len() as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_all(&bytes);
    }

    #[test]
    fn mutated_cars_never_panic(
        blocks in proptest::collection::vec(arb_block(), 1..4),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = car_of(&[blocks[0].0], &blocks);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Ok((_, got)) = read_all(&bytes[..cut]) {
            for b in got {
                cid::verify(&b.cid, &b.data).unwrap();
            }
        }
        // And the same bytes wrapped as a CARv2 payload.
        let _ = read_all(&carv2(51, cut as u64, 0, &bytes[..cut]));
    }
}

//! Feed arbitrary bytes to the dag-pb decoder and, when that succeeds, to the
//! UnixFS decoder and the reader (over a one-block store), as a gateway or a CAR
//! could. Nothing may panic; whatever decodes must re-encode and decode again to
//! the same value.
#![no_main]

use std::collections::HashMap;
use std::io::Read;

use ipkg_content::cid::{Codec, cid_of};
use ipkg_content::dagpb::PbNode;
use ipkg_content::reader;
use ipkg_content::unixfs::Data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(node) = PbNode::decode(bytes) else {
        let _ = Data::decode(bytes);
        return;
    };
    let again = PbNode::decode(&node.encode()).expect("re-encoded dag-pb decodes");
    assert_eq!(again.links.len(), node.links.len());
    if let Some(data) = &node.data
        && let Ok(d) = Data::decode(data)
    {
        let round = Data::decode(&d.encode()).expect("re-encoded UnixFS decodes");
        assert_eq!(round, d);
    }
    // Walk it as a UnixFS node: missing children must be errors, not panics.
    let cid = cid_of(1, Codec::DagPb, bytes);
    let store: HashMap<_, _> = [(cid, bytes.to_vec())].into_iter().collect();
    let _ = reader::stat(&store, &cid);
    let _ = reader::list_dir(&store, &cid);
    if let Ok(mut r) = reader::FileReader::new(&store, &cid) {
        let mut sink = [0u8; 4096];
        while let Ok(n) = r.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
});

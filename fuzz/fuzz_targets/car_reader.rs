//! Feed arbitrary bytes to the CAR reader and drain it: it must never panic,
//! never allocate past its limits, and only hand out blocks that verify.

#![no_main]

use ipkg_content::car::CarReader;
use ipkg_content::cid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = CarReader::new(data) else {
        return;
    };
    for block in reader {
        match block {
            Ok(b) => assert!(cid::verify(&b.cid, &b.data).is_ok()),
            Err(_) => break,
        }
    }
});

//! Decodes arbitrary bytes as a stored sealed-record envelope. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::SealedRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SealedRecord::decode("s/fuzz", data) {
        assert!(r.sealed_offset <= data.len());
        let _ = strongroom::seal::header_key_version(&data[r.sealed_offset..]);
    }
});

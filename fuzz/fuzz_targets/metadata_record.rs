//! Decodes arbitrary bytes as a secret's metadata record (`kvm/<path>`, the
//! plaintext inside its barrier envelope). Must never panic; a record that
//! decodes encodes to bytes that decode and encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::fuzzing::parse_metadata;

fuzz_target!(|data: &[u8]| {
    if let Ok(encoded) = parse_metadata(data) {
        let again = parse_metadata(&encoded).expect("re-encoded metadata decodes");
        assert_eq!(again, encoded);
    }
});

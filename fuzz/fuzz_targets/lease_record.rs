//! Decodes arbitrary bytes as a lease record (`lease/<id>`, version 1 or 2,
//! the plaintext inside its barrier envelope), and arbitrary text as a lease
//! id. Must never panic; a record that decodes encodes (as version 2) to one
//! that decodes to the same lease.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::fuzzing::{encode_lease_record, parse_lease_record};
use strongroom::lease::LeaseId;

fuzz_target!(|data: &[u8]| {
    if let Ok(lease) = parse_lease_record(data) {
        let encoded = encode_lease_record(&lease).unwrap();
        let again = parse_lease_record(&encoded).expect("re-encoded lease decodes");
        assert_eq!(again, lease);
        assert_eq!(encode_lease_record(&again).unwrap(), encoded);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<LeaseId>()
    {
        assert_eq!(id.to_string(), text);
    }
});

//! Reads arbitrary bytes as the root-key record (`sys/root-key`) through
//! `WrappedRootKey::read`. Must never panic; the encoding of whatever
//! decodes is exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::fuzzing::{encode_root_key_record, parse_root_key_record};

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = parse_root_key_record(data) {
        let encoded = encode_root_key_record(&w.protector_kind, &w.wrapped).unwrap();
        assert_eq!(encoded, data);
        assert_eq!(parse_root_key_record(&encoded).unwrap(), w);
    }
});

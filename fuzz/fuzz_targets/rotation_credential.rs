//! Decodes arbitrary bytes as a stored credential version (the plaintext of
//! a sealed rotation version record). Must never panic; the encoding is
//! exactly the input for whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::fuzzing::{encode_rotation_credential, parse_rotation_credential};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = parse_rotation_credential(data) {
        let encoded = encode_rotation_credential(&c).unwrap();
        assert_eq!(encoded.expose_secret(), data);
        let again = parse_rotation_credential(encoded.expose_secret()).unwrap();
        assert_eq!(again.identity(), c.identity());
        assert!(again.secret() == c.secret());
    }
});

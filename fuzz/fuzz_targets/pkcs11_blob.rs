//! Parses arbitrary bytes as a PKCS#11 protector's wrapped root-key blob.
//! Must never panic; a blob that parses is exactly its header (as `wrap`
//! writes it) followed by its body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_pkcs11::Pkcs11Protector;
use strongroom_pkcs11::fuzzing::{encode_header, parse_blob};

fuzz_target!(|data: &[u8]| {
    let Some(b) = parse_blob(data) else {
        assert_eq!(Pkcs11Protector::wrapped_key_version(data), None);
        return;
    };
    assert_eq!(Pkcs11Protector::wrapped_key_version(data), Some(b.version));
    assert!(!b.body.is_empty());
    assert_eq!([&b.header[..], &b.body[..]].concat(), data);
    assert!(b.header.ends_with(&b.label));
    if let Ok(label) = std::str::from_utf8(&b.label) {
        assert_eq!(
            encode_header(b.mechanism, b.version, label).unwrap(),
            b.header
        );
    }
});

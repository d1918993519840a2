//! Parses arbitrary bytes as the text of a key file. Must never panic; a
//! key that parses is 32 bytes and reads back from the text
//! `generate_key_file` writes for it.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use strongroom::fuzzing::parse_key_file;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = parse_key_file(data) {
        assert_eq!(key.len(), 32);
        let text = format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(key.expose_secret())
        );
        assert!(parse_key_file(text.as_bytes()).unwrap() == key);
    }
});

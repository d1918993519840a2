//! Decodes arbitrary bytes as a rotation engine's state record
//! (`rotation/<name>`, JSON, the plaintext inside its barrier envelope).
//! Must never panic; a state that decodes encodes to bytes that decode and
//! encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::fuzzing::parse_rotation_state;

fuzz_target!(|data: &[u8]| {
    if let Ok(encoded) = parse_rotation_state(data) {
        let again = parse_rotation_state(&encoded).expect("re-encoded state decodes");
        assert_eq!(again, encoded);
    }
});

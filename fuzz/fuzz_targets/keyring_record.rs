//! Decodes arbitrary bytes as a stored keyring record (its plaintext, as if
//! the root key had opened it). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::keyring::{KeyState, Keyring};

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = Keyring::decode(data) {
        // Whatever decodes satisfies the invariants.
        let keys = k.keys();
        assert_eq!(
            keys.iter().filter(|k| k.state == KeyState::Primary).count(),
            1
        );
        assert!(keys.iter().any(|i| i.version == k.primary_version()));
    }
});

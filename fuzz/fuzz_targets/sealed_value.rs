//! Parses and opens arbitrary bytes as a sealed value. Must never panic; must
//! never open anything but values sealed under this key and context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::SecretBytes;
use strongroom::seal::{Algorithm, DataKey, SealContext, SealedValue};

fuzz_target!(|data: &[u8]| {
    let ctx = SealContext::new("fuzz/path", 1);
    for alg in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
        let Ok(key) = DataKey::new(alg, SecretBytes::new(vec![0x11; 32])) else {
            return;
        };
        if let Ok(v) = SealedValue::parse(data) {
            let _ = v.key_version();
            // Random bytes must not authenticate.
            assert!(key.open(&v, &ctx).is_err());
        }
        let mut buf = data.to_vec();
        assert!(key.open_in_place(&mut buf, &ctx).is_err());
    }
    // A real value with the fuzz input as plaintext round-trips, and a single
    // flipped bit anywhere chosen by the input is rejected.
    let key = DataKey::new(Algorithm::Aes256Gcm, SecretBytes::new(vec![0x22; 32])).unwrap();
    let sealed = key.seal(3, data, &ctx).unwrap();
    assert_eq!(key.open(&sealed, &ctx).unwrap().expose_secret(), data);
    if let Some(&b) = data.first() {
        let mut t = sealed.into_bytes();
        let i = usize::from(b) % t.len();
        t[i] ^= 1;
        if let Ok(v) = SealedValue::from_vec(t) {
            assert!(key.open(&v, &ctx).is_err());
        }
    }
});

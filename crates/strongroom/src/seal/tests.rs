use super::*;

fn key(alg: Algorithm) -> DataKey {
    DataKey::new(alg, SecretBytes::new(vec![7u8; 32])).unwrap()
}

#[test]
fn round_trip_both_algorithms() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
        let k = key(alg);
        let ctx = SealContext::new("prod/db", 3);
        let s = k.seal(9, b"hello", &ctx).unwrap();
        assert_eq!(s.key_version(), 9);
        assert_eq!(s.algorithm(), alg);
        assert_eq!(s.as_bytes().len(), 5 + OVERHEAD);
        assert_eq!(k.open(&s, &ctx).unwrap().expose_secret(), b"hello");
    }
}

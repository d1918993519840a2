use super::*;

#[test]
fn names_are_validated() {
    for ok in ["db", "prod/payment-svc/postgres", "a.b_c-1"] {
        assert!(validate_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "/a",
        "a/",
        "a//b",
        "a/../b",
        "A",
        "a b",
        "a%b",
        &"x".repeat(201),
    ] {
        assert!(
            matches!(
                validate_name(bad),
                Err(Error::Rotation(RotationError::InvalidName { .. }))
            ),
            "{bad}"
        );
    }
}

#[test]
fn credential_round_trips_and_rejects_garbage() {
    let c = Credential::new(7, "app_a", SecretBytes::from("pw-\u{e9}"));
    let enc = c.encode().unwrap();
    let d = Credential::decode("k", 7, &SecretBytes::copy_from(&enc)).unwrap();
    assert_eq!(d.identity(), "app_a");
    assert_eq!(d.secret(), c.secret());
    assert_eq!(d.version(), 7);
    for bad in [
        &[][..],
        &[2, 0, 0][..],
        &[1, 0][..],
        &[1, 0, 5, b'a'][..],
        &[1, 0, 1, 0xff][..],
    ] {
        assert!(Credential::decode("k", 1, &SecretBytes::copy_from(bad)).is_err());
    }
    assert!(!format!("{c:?}").contains("pw-"));
}

#[test]
fn api_key_formats() {
    let f = ApiKeyFormat::base62("sk_", 40);
    let a = f.generate().unwrap();
    let b = f.generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 43);
    assert!(f.matches(a.expose_secret()));
    assert!(!f.matches(b"sk_short"));
    assert!(!f.matches(b"pk_0123456789012345678901234567890123456789"));
    let h = ApiKeyFormat::hex("", 16);
    let k = h.generate().unwrap();
    assert_eq!(k.len(), 32);
    assert!(h.matches(k.expose_secret()));
    // every base62 character appears over enough samples (no bias to a subset)
    let mut seen = [false; 62];
    for _ in 0..50 {
        for c in ApiKeyFormat::base62("", 64)
            .generate()
            .unwrap()
            .expose_secret()
        {
            if let Some(i) = BASE62_ALPHABET.iter().position(|x| x == c) {
                seen[i] = true;
            }
        }
    }
    assert!(seen.iter().all(|s| *s));
}

const BASE62_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

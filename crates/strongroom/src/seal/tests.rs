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

#[test]
fn in_place_round_trip() {
    let k = key(Algorithm::Aes256Gcm);
    let ctx = SealContext::new("big", 1);
    let mut buf = seal_buffer(70_000);
    buf.extend((0..70_000u32).map(|i| i as u8));
    let cap = buf.capacity();
    k.seal_in_place(1, &mut buf, &ctx).unwrap();
    assert_eq!(buf.capacity(), cap, "seal_buffer reserved room for the tag");
    let pt = k.open_in_place(&mut buf, &ctx).unwrap();
    assert_eq!(pt.len(), 70_000);
    assert!(pt.iter().enumerate().all(|(i, b)| *b == i as u8));
}

#[test]
fn open_returns_the_one_buffer_it_decrypted_in() {
    // The secret owns a buffer of exactly the plaintext's size (so it never
    // needs to grow), for empty, small and large values and both algorithms.
    for alg in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
        let k = key(alg);
        let ctx = SealContext::new("prod/db", 3);
        for len in [0usize, 1, 15, 16, 17, 1024, 70_000] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let s = k.seal(2, &plaintext, &ctx).unwrap();
            let mut opened = k.open(&s, &ctx).unwrap();
            assert_eq!(opened.expose_secret(), &plaintext[..]);
            assert_eq!(opened.expose_secret_mut().capacity(), len);
        }
    }
}

#[test]
fn open_fails_opaquely_for_another_algorithm_context_or_key() {
    let k = key(Algorithm::Aes256Gcm);
    let ctx = SealContext::new("prod/db", 3);
    let s = k.seal(2, b"hello", &ctx).unwrap();
    let other_key = DataKey::new(Algorithm::Aes256Gcm, SecretBytes::new(vec![8u8; 32])).unwrap();
    for r in [
        k.open(&s, &SealContext::new("prod/db", 4)),
        k.open(&s, &SealContext::new("prod/dc", 3)),
        other_key.open(&s, &ctx),
        key(Algorithm::ChaCha20Poly1305).open(&s, &ctx),
    ] {
        assert!(matches!(r, Err(Error::DecryptionFailed)));
    }
}

#[test]
fn every_bit_flip_fails_opaquely() {
    let k = key(Algorithm::Aes256Gcm);
    let ctx = SealContext::new("p", 1);
    let s = k.seal(1, b"secret value", &ctx).unwrap();
    for i in 0..s.as_bytes().len() {
        for bit in 0..8 {
            let mut t = s.as_bytes().to_vec();
            t[i] ^= 1 << bit;
            let r = SealedValue::from_vec(t).and_then(|v| k.open(&v, &ctx));
            match r {
                Err(Error::DecryptionFailed) | Err(Error::MalformedSealedValue(_)) => {}
                other => panic!("flip byte {i} bit {bit}: {other:?}"),
            }
            // flips in the key-version field do not fail at DataKey level
            // framing, but must fail authentication
        }
    }
}

#[test]
fn truncated_and_extended_values_fail() {
    let k = key(Algorithm::ChaCha20Poly1305);
    let ctx = SealContext::new("p", 1);
    let s = k.seal(1, b"value", &ctx).unwrap();
    for n in 0..s.as_bytes().len() {
        let r = SealedValue::parse(&s.as_bytes()[..n]).and_then(|v| k.open(&v, &ctx));
        assert!(
            matches!(
                r,
                Err(Error::MalformedSealedValue(_) | Error::DecryptionFailed)
            ),
            "len {n}: {r:?}"
        );
    }
    let mut ext = s.as_bytes().to_vec();
    ext.push(0);
    let r = k.open(&SealedValue::from_vec(ext).unwrap(), &ctx);
    assert!(matches!(r, Err(Error::DecryptionFailed)));
}

#[test]
fn moved_values_fail() {
    let k = key(Algorithm::Aes256Gcm);
    let s = k.seal(1, b"v", &SealContext::new("prod/a", 2)).unwrap();
    for ctx in [
        SealContext::new("prod/b", 2),
        SealContext::new("prod/a", 3),
        SealContext::new("prod/a\0", 2),
        SealContext::new("", 2),
    ] {
        assert!(matches!(k.open(&s, &ctx), Err(Error::DecryptionFailed)));
    }
    // another key
    let other = DataKey::new(Algorithm::Aes256Gcm, SecretBytes::new(vec![8u8; 32])).unwrap();
    assert!(matches!(
        other.open(&s, &SealContext::new("prod/a", 2)),
        Err(Error::DecryptionFailed)
    ));
    // same key bytes, other algorithm: refused
    let chacha = key(Algorithm::ChaCha20Poly1305);
    assert!(matches!(
        chacha.open(&s, &SealContext::new("prod/a", 2)),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn header_errors_are_distinct() {
    let k = key(Algorithm::Aes256Gcm);
    let s = k.seal(1, b"v", &SealContext::new("p", 0)).unwrap();
    let mut t = s.as_bytes().to_vec();
    t[0] = b'X';
    assert!(
        matches!(SealedValue::parse(&t), Err(Error::MalformedSealedValue(m)) if m.contains("magic"))
    );
    let mut t = s.as_bytes().to_vec();
    t[2] = 2;
    assert!(
        matches!(SealedValue::parse(&t), Err(Error::MalformedSealedValue(m)) if m.contains("version"))
    );
    let mut t = s.as_bytes().to_vec();
    t[3] = 9;
    assert!(
        matches!(SealedValue::parse(&t), Err(Error::MalformedSealedValue(m)) if m.contains("algorithm"))
    );
}

#[test]
fn nonces_do_not_repeat() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10_000 {
        assert!(seen.insert(next_nonce().unwrap()));
    }
}

/// A pool that finds another process id discards its unused nonces even
/// when no atfork handler ran (the case of `_Fork()` or a raw `fork`).
#[test]
fn pool_from_another_process_is_discarded_without_atfork() {
    next_nonce().unwrap();
    let unused: Vec<[u8; NONCE_LEN]> = NONCES.with(|slot| {
        let mut slot = slot.borrow_mut();
        let pool = slot.as_mut().unwrap();
        // Pretend the pool was filled in another process and that no atfork
        // handler told us about it.
        pool.fork.pid = pool.fork.pid.wrapping_add(1);
        pool.fork.atfork = None;
        pool.buf[pool.next * NONCE_LEN..]
            .chunks_exact(NONCE_LEN)
            .map(|c| c.try_into().unwrap())
            .collect()
    });
    assert!(!unused.is_empty());
    let n = next_nonce().unwrap();
    assert!(
        !unused.contains(&n),
        "a nonce left over from another process was handed out"
    );
    NONCES.with(|slot| {
        let slot = slot.borrow();
        let pool = slot.as_ref().unwrap();
        assert_eq!(pool.fork.pid, std::process::id());
        assert_eq!(pool.next, 1, "the pool was refilled, not reused");
    });
}

#[test]
fn wrong_key_length_is_rejected() {
    assert!(matches!(
        DataKey::new(Algorithm::Aes256Gcm, SecretBytes::new(vec![0; 16])),
        Err(Error::InvalidArgument(_))
    ));
}

/// The checked-in vectors in `docs/vectors/sealed-v1.json`, byte for byte.
#[test]
fn format_vectors() {
    let text = include_str!("../../../../docs/vectors/sealed-v1.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 6);
    for v in vectors {
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let alg = Algorithm::from_name(&s("algorithm")).unwrap();
        let k = DataKey::new(alg, SecretBytes::new(hex::decode(s("key")).unwrap())).unwrap();
        let path = s("path");
        let ctx = SealContext::new(&path, v["version"].as_u64().unwrap());
        let key_version = u32::try_from(v["key_version"].as_u64().unwrap()).unwrap();
        let nonce: [u8; 12] = hex::decode(s("nonce")).unwrap().try_into().unwrap();
        let plaintext = hex::decode(s("plaintext")).unwrap();
        let expected = hex::decode(s("sealed")).unwrap();
        let mut buf = seal_buffer(plaintext.len());
        buf.extend_from_slice(&plaintext);
        k.seal_in_place_with_nonce(key_version, nonce, &mut buf, &ctx)
            .unwrap();
        assert_eq!(
            hex::encode(&buf),
            hex::encode(&expected),
            "vector {}",
            s("name")
        );
        let opened = k
            .open(&SealedValue::parse(&expected).unwrap(), &ctx)
            .unwrap();
        assert_eq!(opened.expose_secret(), &plaintext[..]);
    }
}

/// Prints the vectors when STRONGROOM_PRINT_VECTORS is set (to regenerate
/// them); otherwise only checks that the cases still seal.
#[test]
#[allow(clippy::type_complexity)]
fn print_vectors_for_docs() {
    let cases: &[(&str, Algorithm, u8, &str, u64, u32, u8, &[u8])] = &[
        (
            "aes-empty",
            Algorithm::Aes256Gcm,
            0x01,
            "prod/app/db",
            1,
            1,
            0x10,
            b"",
        ),
        (
            "aes-hello",
            Algorithm::Aes256Gcm,
            0x01,
            "prod/app/db",
            1,
            1,
            0x11,
            b"hello, world",
        ),
        (
            "aes-version-bound",
            Algorithm::Aes256Gcm,
            0x01,
            "prod/app/db",
            2,
            1,
            0x11,
            b"hello, world",
        ),
        (
            "aes-keyversion-7",
            Algorithm::Aes256Gcm,
            0x42,
            "staging/payments/api-key",
            18_446_744_073_709_551_615,
            7,
            0x20,
            b"sk_live_0123456789",
        ),
        (
            "chacha-hello",
            Algorithm::ChaCha20Poly1305,
            0x01,
            "prod/app/db",
            1,
            1,
            0x11,
            b"hello, world",
        ),
        (
            "chacha-utf8-path",
            Algorithm::ChaCha20Poly1305,
            0x99,
            "dev/caf\u{e9}/t\u{f6}ken",
            3,
            4_294_967_295,
            0x33,
            "p\u{e4}ssw\u{f6}rd \u{1f511}".as_bytes(),
        ),
        (
            "aes-256-bytes",
            Algorithm::Aes256Gcm,
            0x05,
            "a",
            0,
            2,
            0x44,
            &[0xA5; 256],
        ),
    ];
    let mut out = Vec::new();
    for (name, alg, kb, path, ver, kv, nb, pt) in cases {
        let key: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(*kb).wrapping_add(*kb))
            .collect();
        let nonce: [u8; 12] = std::array::from_fn(|i| (i as u8).wrapping_add(*nb));
        let k = DataKey::new(*alg, SecretBytes::new(key.clone())).unwrap();
        let mut buf = seal_buffer(pt.len());
        buf.extend_from_slice(pt);
        k.seal_in_place_with_nonce(*kv, nonce, &mut buf, &SealContext::new(path, *ver))
            .unwrap();
        out.push(serde_json::json!({
            "name": name, "algorithm": alg.name(), "key": hex::encode(&key),
            "key_version": kv, "path": path, "version": ver, "nonce": hex::encode(nonce),
            "plaintext": hex::encode(pt), "sealed": hex::encode(&buf),
        }));
    }
    if std::env::var_os("STRONGROOM_PRINT_VECTORS").is_some() {
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    }
}

#[test]
fn seal_into_a_caller_buffer() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
        let k = key(alg);
        let ctx = SealContext::new("prod/db", 3);
        let mut out = vec![0u8; 5 + OVERHEAD];
        k.seal_into(4, b"hello", &mut out, &ctx).unwrap();
        let s = SealedValue::from_vec(out).unwrap();
        assert_eq!((s.key_version(), s.algorithm()), (4, alg));
        assert_eq!(k.open(&s, &ctx).unwrap().expose_secret(), b"hello");
        let mut short = vec![0u8; 5 + OVERHEAD - 1];
        assert!(matches!(
            k.seal_into(4, b"hello", &mut short, &ctx),
            Err(Error::InvalidArgument(_))
        ));
        assert!(short.iter().all(|&b| b == 0));
    }
}

#[test]
fn open_into_a_caller_buffer() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
        let k = key(alg);
        let ctx = SealContext::new("prod/db", 3);
        let s = k.seal(4, b"hello", &ctx).unwrap();
        let mut out = [0u8; 5];
        k.open_into(s.as_bytes(), &mut out, &ctx).unwrap();
        assert_eq!(&out, b"hello");
        // Wrong output length: refused before anything is written.
        let mut long = [0u8; 6];
        assert!(matches!(
            k.open_into(s.as_bytes(), &mut long, &ctx),
            Err(Error::InvalidArgument(_))
        ));
        // Another context, or any flipped bit: opaque failure, out zeroed.
        let mut out = [0xaau8; 5];
        assert!(matches!(
            k.open_into(s.as_bytes(), &mut out, &SealContext::new("prod/db", 4)),
            Err(Error::DecryptionFailed)
        ));
        assert_eq!(out, [0u8; 5]);
        for i in 0..s.as_bytes().len() {
            let mut t = s.as_bytes().to_vec();
            t[i] ^= 0x01;
            let mut out = [0u8; 5];
            assert!(
                matches!(
                    k.open_into(&t, &mut out, &ctx),
                    Err(Error::DecryptionFailed | Error::MalformedSealedValue(_))
                ),
                "flip at {i}"
            );
            assert_eq!(out, [0u8; 5], "no plaintext after a failure at {i}");
        }
        // Framing errors as for open.
        assert!(matches!(
            k.open_into(&s.as_bytes()[..OVERHEAD - 1], &mut [], &ctx),
            Err(Error::MalformedSealedValue(_))
        ));
        // An empty plaintext.
        let e = k.seal(4, b"", &ctx).unwrap();
        k.open_into(e.as_bytes(), &mut [], &ctx).unwrap();
        // The other algorithm's key refuses it opaquely.
        let other = key(match alg {
            Algorithm::Aes256Gcm => Algorithm::ChaCha20Poly1305,
            _ => Algorithm::Aes256Gcm,
        });
        assert!(matches!(
            other.open_into(s.as_bytes(), &mut [0u8; 5], &ctx),
            Err(Error::DecryptionFailed)
        ));
    }
}

/// The checked-in negative vectors (`invalid` in `docs/vectors/sealed-v1.json`):
/// malformed ones fail to parse, the others parse and do not open.
#[test]
fn invalid_format_vectors() {
    let text = include_str!("../../../../docs/vectors/sealed-v1.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let invalid = doc["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 10);
    for v in invalid {
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let alg = Algorithm::from_name(&s("algorithm")).unwrap();
        let k = DataKey::new(alg, SecretBytes::new(hex::decode(s("key")).unwrap())).unwrap();
        let path = s("path");
        let ctx = SealContext::new(&path, v["version"].as_u64().unwrap());
        let bytes = hex::decode(s("sealed")).unwrap();
        let got = SealedValue::parse(&bytes).and_then(|sv| k.open(&sv, &ctx).map(drop));
        match (s("error").as_str(), got) {
            ("malformed", Err(Error::MalformedSealedValue(_))) => {}
            ("decryption_failed", Err(Error::DecryptionFailed)) => {}
            (want, got) => panic!("vector {}: wanted {want}, got {got:?}", s("name")),
        }
    }
}

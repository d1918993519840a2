#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ProtectorErrorKind;
use crate::protector::conformance;

/// Slow reference multiplication: carry-less product, then reduction by
/// long division (used only to check `gf_mul`).
fn gf_mul_reference(a: u8, b: u8) -> u8 {
    let mut p: u16 = 0;
    for i in 0..8 {
        if b >> i & 1 == 1 {
            p ^= u16::from(a) << i;
        }
    }
    for i in (8..16).rev() {
        if p >> i & 1 == 1 {
            p ^= 0x11b << (i - 8);
        }
    }
    u8::try_from(p).unwrap()
}

#[test]
fn gf_mul_matches_reference_for_all_pairs() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            assert_eq!(gf_mul(a, b), gf_mul_reference(a, b), "{a} * {b}");
        }
    }
    // FIPS-197 section 4.2 example
    assert_eq!(gf_mul(0x57, 0x83), 0xc1);
    assert_eq!(gf_mul(0x57, 0x13), 0xfe);
}

#[test]
fn gf_inv_is_the_inverse() {
    assert_eq!(gf_inv(0), 0);
    for a in 1..=255u8 {
        assert_eq!(gf_mul(a, gf_inv(a)), 1, "a = {a}");
    }
}

fn err(r: Result<impl Sized>) -> ShamirError {
    match r {
        Err(Error::Shamir(e)) => e,
        Err(e) => panic!("not a shamir error: {e:?}"),
        Ok(_) => panic!("expected an error"),
    }
}

/// Every subset of `0..n` as index lists.
fn subsets(n: usize) -> impl Iterator<Item = Vec<usize>> {
    (0u32..1 << n).map(move |mask| (0..n).filter(|i| mask >> i & 1 == 1).collect())
}

#[test]
fn every_k_subset_reconstructs_and_every_smaller_one_fails() {
    for n in 2..=6u8 {
        for k in 2..=n {
            let secret = SecretBytes::random(1 + usize::from(n) * 3).unwrap();
            let shares = split(&secret, k, n).unwrap();
            assert_eq!(shares.len(), usize::from(n));
            for subset in subsets(usize::from(n)) {
                let picked: Vec<Share> = subset.iter().map(|&i| shares[i].clone()).collect();
                let r = combine(&picked);
                if picked.is_empty() {
                    assert_eq!(err(r), ShamirError::NoShares);
                } else if picked.len() >= usize::from(k) {
                    assert_eq!(r.unwrap(), secret, "n={n} k={k} subset={subset:?}");
                } else {
                    assert_eq!(
                        err(r),
                        ShamirError::TooFewShares {
                            needed: k,
                            given: picked.len()
                        }
                    );
                }
            }
        }
    }
}

#[test]
fn random_secrets_round_trip_in_any_order() {
    for round in 0..200usize {
        let len = 1 + round % 67;
        let secret = SecretBytes::random(len).unwrap();
        let mut pick = [0u8; 3];
        random_fill(&mut pick).unwrap();
        let n = 2 + pick[0] % 20;
        let k = 2 + pick[1] % (n - 1);
        let shares = split(&secret, k, n).unwrap();
        // take k shares starting at a random offset, in reverse order
        let start = usize::from(pick[2]) % usize::from(n);
        let picked: Vec<Share> = (0..usize::from(k))
            .rev()
            .map(|i| shares[(start + i) % usize::from(n)].clone())
            .collect();
        assert_eq!(combine(&picked).unwrap(), secret, "n={n} k={k}");
    }
}

#[test]
fn fewer_than_k_shares_do_not_pin_down_the_secret() {
    // With k-1 shares fixed, every value of a one-byte secret is consistent
    // with some k-th share: each candidate is reached by exactly one y.
    let secret = SecretBytes::from(vec![0x42]);
    let shares = split(&secret, 3, 3).unwrap();
    let mut reached = [0u16; 256];
    for y in 0..=255u8 {
        let third = Share::new(shares[0].split_id, 3, 3, SecretBytes::from(vec![y]));
        let got = combine(&[shares[0].clone(), shares[1].clone(), third]).unwrap();
        reached[usize::from(got.expose_secret()[0])] += 1;
    }
    assert!(reached.iter().all(|&c| c == 1), "{reached:?}");
}

#[test]
fn the_largest_split_works() {
    let secret = SecretBytes::random(32).unwrap();
    let shares = split(&secret, 255, 255).unwrap();
    assert_eq!(shares.last().unwrap().x(), 255);
    assert_eq!(combine(&shares).unwrap(), secret);
    assert!(matches!(
        err(combine(&shares[1..])),
        ShamirError::TooFewShares {
            needed: 255,
            given: 254
        }
    ));
}

#[test]
fn text_form_round_trips() {
    let secret = SecretBytes::random(32).unwrap();
    let shares = split(&secret, 3, 5).unwrap();
    let texts: Vec<SecretString> = shares.iter().map(Share::to_text).collect();
    for t in &texts {
        assert!(t.expose_secret().starts_with("srs1-"));
    }
    let parsed = Share::parse_all(&[
        texts[4].expose_secret(),
        &format!("  {}\n", texts[0].expose_secret()),
        texts[2].expose_secret(),
    ])
    .unwrap();
    assert_eq!(parsed[0].x(), 5);
    assert_eq!(parsed[0].threshold(), 3);
    assert_eq!(parsed[0].split_id_hex(), shares[0].split_id_hex());
    assert_eq!(combine(&parsed).unwrap(), secret);
}

#[test]
fn a_mistyped_share_is_named_by_its_index() {
    let secret = SecretBytes::random(32).unwrap();
    let shares = split(&secret, 2, 3).unwrap();
    let good0 = shares[0].to_text().expose_secret().to_owned();
    let good1 = shares[1].to_text().expose_secret().to_owned();
    // change every character position of share 1 in turn
    for pos in "srs1-".len()..good1.len() {
        let mut chars: Vec<char> = good1.chars().collect();
        chars[pos] = if chars[pos] == 'A' { 'B' } else { 'A' };
        let bad: String = chars.into_iter().collect();
        let e = err(Share::parse_all(&[good0.as_str(), bad.as_str()]));
        assert!(
            matches!(e, ShamirError::CorruptShare { index: Some(1), .. }),
            "pos {pos}: {e:?}"
        );
    }
    // truncated, wrong prefix, garbage
    for bad in [
        &good1[..good1.len() - 3],
        "srs2-AAAA",
        "hello",
        "srs1-!!!!",
        "srs1-",
    ] {
        let e = err(Share::parse_all(&[good0.as_str(), bad]));
        assert!(
            matches!(e, ShamirError::CorruptShare { index: Some(1), .. }),
            "{bad}: {e:?}"
        );
    }
    let e = err(Share::parse("srs1-AAAA"));
    assert!(matches!(e, ShamirError::CorruptShare { index: None, .. }));
    assert!(e.to_string().starts_with("share is corrupt"), "{e}");
}

#[test]
fn a_share_damaged_in_memory_is_detected_by_combine() {
    let secret = SecretBytes::random(16).unwrap();
    let shares = split(&secret, 3, 4).unwrap();
    for victim in 0..3 {
        for byte in 0..16 {
            let mut picked: Vec<Share> = shares[..3].to_vec();
            picked[victim].y.expose_secret_mut()[byte] ^= 0x20;
            let e = err(combine(&picked));
            assert_eq!(
                e,
                ShamirError::CorruptShare {
                    index: Some(victim),
                    reason: "checksum mismatch (mistyped or damaged)"
                }
            );
            assert!(e.to_string().contains(&format!("index {victim}")), "{e}");
        }
    }
}

#[test]
fn duplicate_shares_are_rejected() {
    let secret = SecretBytes::random(32).unwrap();
    let shares = split(&secret, 3, 5).unwrap();
    let e = err(combine(&[
        shares[0].clone(),
        shares[3].clone(),
        shares[0].clone(),
    ]));
    assert_eq!(
        e,
        ShamirError::DuplicateShare {
            x: 1,
            first: 0,
            second: 2,
            needed: 3
        }
    );
    assert!(e.to_string().contains("give 3 different shares"), "{e}");
}

#[test]
fn shares_of_two_splits_are_rejected() {
    let secret = SecretBytes::random(32).unwrap();
    let a = split(&secret, 2, 3).unwrap();
    let b = split(&secret, 2, 3).unwrap();
    assert_ne!(a[0].split_id_hex(), b[0].split_id_hex());
    let e = err(combine(&[a[0].clone(), b[1].clone()]));
    assert!(
        matches!(&e, ShamirError::DifferentSplits { index: 1, expected, found }
            if *expected == a[0].split_id_hex() && *found == b[0].split_id_hex()),
        "{e:?}"
    );
}

#[test]
fn bad_parameters_are_rejected() {
    let secret = SecretBytes::random(32).unwrap();
    for (k, n) in [(0, 3), (1, 3), (4, 3), (2, 1), (2, 0)] {
        assert!(
            matches!(
                err(split(&secret, k, n)),
                ShamirError::InvalidParameters { .. }
            ),
            "k={k} n={n}"
        );
    }
    assert!(matches!(
        err(split(&SecretBytes::default(), 2, 3)),
        ShamirError::InvalidParameters { .. }
    ));
    assert_eq!(err(combine(&[])), ShamirError::NoShares);
}

#[test]
fn debug_shows_no_share_value() {
    let secret = SecretBytes::from(vec![0xAB; 32]);
    let shares = split(&secret, 2, 2).unwrap();
    let d = format!("{:?}", shares[0]);
    assert!(d.starts_with("Share {"), "{d}");
    assert!(!d.contains(&hex::encode(shares[0].y.expose_secret())));
    assert!(!d.contains("y:"), "{d}");
    let (p, _) = ShamirProtector::generate(2, 3).unwrap();
    let d = format!("{p:?}");
    assert!(d.starts_with("ShamirProtector"), "{d}");
    assert!(!d.contains("kek"), "{d}");
}

#[tokio::test]
async fn protector_conformance() {
    let (a, _) = ShamirProtector::generate(2, 3).unwrap();
    let (b, _) = ShamirProtector::generate(3, 5).unwrap();
    conformance::run_all(&a, &b).await;
}

#[tokio::test]
async fn protector_rebuilt_from_any_k_shares_unwraps() {
    let (p, shares) = ShamirProtector::generate(3, 5).unwrap();
    assert_eq!(p.threshold(), 3);
    let root = SecretBytes::random(32).unwrap();
    let wrapped = p.wrap(&root).await.unwrap();
    for subset in subsets(5).filter(|s| s.len() == 3) {
        let texts: Vec<SecretString> = subset.iter().map(|&i| shares[i].to_text()).collect();
        let parsed =
            Share::parse_all(&texts.iter().map(|t| t.expose_secret()).collect::<Vec<_>>()).unwrap();
        let q = ShamirProtector::from_shares(&parsed).unwrap();
        assert_eq!(q.split_id_hex(), p.split_id_hex());
        assert_eq!(q.unwrap(&wrapped).await.unwrap(), root);
    }
    let e = ShamirProtector::from_shares(&shares[..2]).unwrap_err();
    assert!(matches!(
        e,
        Error::Shamir(ShamirError::TooFewShares {
            needed: 3,
            given: 2
        })
    ));
    assert!(e.to_string().contains("3 are needed"), "{e}");
}

#[tokio::test]
async fn shares_of_another_split_fail_to_unwrap() {
    let (p, _) = ShamirProtector::generate(2, 2).unwrap();
    let (_, other) = ShamirProtector::generate(2, 2).unwrap();
    let wrapped = p.wrap(&SecretBytes::random(32).unwrap()).await.unwrap();
    let q = ShamirProtector::from_shares(&other).unwrap();
    let e = q.unwrap(&wrapped).await.unwrap_err();
    assert!(matches!(
        e,
        Error::Protector {
            protector: "shamir",
            kind: ProtectorErrorKind::UnwrapFailed,
            ..
        }
    ));
}

#[test]
fn shares_of_a_non_key_secret_are_not_a_protector() {
    let shares = split(&SecretBytes::random(16).unwrap(), 2, 2).unwrap();
    assert!(matches!(
        ShamirProtector::from_shares(&shares),
        Err(Error::Shamir(ShamirError::InvalidParameters { .. }))
    ));
}

/// The checked-in vectors in `docs/vectors/shamir-v1.json` (made by an
/// independent Python implementation), byte for byte.
#[test]
fn checked_in_vectors() {
    let text = include_str!("../../../../docs/vectors/shamir-v1.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["format"], "strongroom shamir share v1");
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 4);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let secret = SecretBytes::new(hex::decode(v["secret"].as_str().unwrap()).unwrap());
        let k = u8::try_from(v["threshold"].as_u64().unwrap()).unwrap();
        let n = u8::try_from(v["shares"].as_u64().unwrap()).unwrap();
        let split_id: [u8; SPLIT_ID_LEN] = hex::decode(v["split_id"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let coefficients: Vec<u8> = v["coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| hex::decode(c.as_str().unwrap()).unwrap())
            .collect();
        let expected: Vec<&str> = v["share_texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        // the same bytes from the same randomness
        let made = split_with(&secret, k, n, split_id, &coefficients);
        let made: Vec<SecretString> = made.iter().map(Share::to_text).collect();
        let made: Vec<&str> = made.iter().map(SecretString::expose_secret).collect();
        assert_eq!(made, expected, "{name}");
        // and the texts combine back, from the last k
        let parsed = Share::parse_all(&expected).unwrap();
        let last_k = &parsed[parsed.len() - usize::from(k)..];
        assert_eq!(combine(last_k).unwrap(), secret, "{name}");
    }
}

//! Parses arbitrary text as Shamir shares and combines them. Must never
//! panic. A share that parses prints as text that parses to the same share.
//!
//! The first input byte picks a mode:
//! - 0: the rest is share texts, one per line, combined if they parse;
//! - 1: the rest is binary shares (11-byte header and value, each preceded
//!   by its length), given the right checksum so that parsing gets past it;
//! - 2: the rest is a secret (after two bytes of threshold and count): its
//!   shares, any `threshold` of them, combine to it, fewer do not.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use strongroom::SecretBytes;
use strongroom::shamir::{Share, combine, split};

/// The checksum domain of `shamir.rs` (format version 1).
const CHECKSUM_DOMAIN: &[u8] = b"strongroom shamir share checksum v1\0";
const HEADER_LEN: usize = 11;

fn text_of(binary: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(CHECKSUM_DOMAIN);
    ctx.update(binary);
    let digest = ctx.finish();
    let mut full = binary.to_vec();
    full.extend_from_slice(&digest.as_ref()[..4]);
    format!(
        "srs1-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(full)
    )
}

fn check_round_trip(s: &Share) {
    let text = s.to_text();
    let back = Share::parse(text.expose_secret()).unwrap();
    assert_eq!(back.version(), s.version());
    assert_eq!(back.split_id_hex(), s.split_id_hex());
    assert_eq!(back.threshold(), s.threshold());
    assert_eq!(back.x(), s.x());
    assert_eq!(back.secret_len(), s.secret_len());
    assert!(back.to_text() == text);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let lines: Vec<&str> = text.lines().take(8).collect();
            let _ = Share::parse_all(&lines);
            let shares: Vec<Share> = lines.iter().filter_map(|l| Share::parse(l).ok()).collect();
            shares.iter().for_each(check_round_trip);
            let _ = combine(&shares);
        }
        1 => {
            let mut shares = Vec::new();
            let mut rest = rest;
            while let Some((&len, tail)) = rest.split_first() {
                let n = (usize::from(len) + HEADER_LEN).min(tail.len());
                let (binary, tail) = tail.split_at(n);
                rest = tail;
                if let Ok(s) = Share::parse(&text_of(binary)) {
                    check_round_trip(&s);
                    shares.push(s);
                }
            }
            let _ = combine(&shares);
        }
        _ => {
            let [k, n, secret @ ..] = rest else {
                return;
            };
            // Interpolation is quadratic in the threshold: keep runs fast.
            if *n > 32 || secret.len() > 128 {
                return;
            }
            let Ok(shares) = split(&SecretBytes::copy_from(secret), *k, *n) else {
                return;
            };
            let k = usize::from(*k);
            shares.iter().take(3).for_each(check_round_trip);
            // A rotating window of k shares, so different shares take part.
            let start = secret.first().map_or(0, |&b| usize::from(b)) % shares.len();
            let pick: Vec<Share> = (0..k)
                .map(|i| shares[(start + i) % shares.len()].clone())
                .collect();
            assert!(combine(&pick).unwrap() == SecretBytes::copy_from(secret));
            assert!(combine(&pick[..k - 1]).is_err());
        }
    }
});

//! Sealing and opening through Strongroom against raw `ring` AES-256-GCM
//! (the baseline) and raw AWS-LC AES-256-GCM through `aws-lc-rs`
//! (the library Strongroom seals with, doing the same work), interleaved
//! round by round in one process.
//!
//! For each size (1 KiB, 64 KiB, 1 MiB) every variant of a group runs one
//! sample per round (the order rotates from round to round, so none always
//! goes first); each round gives a paired ratio Strongroom / baseline, and
//! the bench prints the median of those ratios with their spread (25th-75th
//! percentile and min-max) and the load average at start and end.
//!
//! Seal variants:
//! - `strongroom`: `Strongroom::seal_value` (allocates the sealed value and
//!   copies the plaintext into it; pooled random nonce, 64 per `getrandom`
//!   call; header, associated-data context, keyring lookup, encryption
//!   count);
//! - `strongroom-in-place`: `Strongroom::seal_value_in_place` on a reused
//!   buffer;
//! - `ring-counter`: ring sealing in place with a counter nonce (the
//!   cheapest possible AEAD call), tag appended to the buffer;
//! - `ring-pooled`: the same with random nonces drawn 64 per `getrandom`
//!   call, as Strongroom draws them;
//! - `ring-getrandom`: the same with one `getrandom` call per seal (what
//!   naive code does);
//! - `ring-copy-pooled`: allocate, copy the plaintext in, seal with a pooled
//!   nonce (the work `seal_value` does);
//! - `aws-lc-counter`, `aws-lc-copy-pooled`: the same as `ring-counter` and
//!   `ring-copy-pooled` through AWS-LC.
//!
//! Besides Strongroom against each baseline, the bench pairs AWS-LC with
//! ring doing the same work, so a run shows how much of a ratio against
//! ring is the library's speed.
//!
//! Open variants, each from stored bytes laid out alike (a 20-byte prefix,
//! ciphertext, tag) and each dropping its output:
//! - `strongroom`: `Strongroom::open_value` (the API the README shows; the
//!   `SecretBytes` it returns is wiped on drop);
//! - `strongroom-in-place`: copy the sealed value into a fresh `Vec`, then
//!   `Strongroom::open_value_in_place`;
//! - `ring-copy`: copy ciphertext and tag into a fresh `Vec`, then ring's
//!   `open_in_place`;
//! - `aws-lc-copy`: copy ciphertext and tag into a fresh `Vec`, then
//!   AWS-LC's `open_in_place_separate_tag` on the ciphertext (the same work
//!   as `ring-copy`, and what `open_value` does before its wipe on drop).
//!
//! Run: `cargo bench -p strongroom-benches --bench seal`, then
//! `python3 benches/report.py` (reads `target/strongroom-bench/seal.json`,
//! which this bench writes). `SEAL_BENCH_ROUNDS` (default 201) and
//! `SEAL_BENCH_SAMPLE_US` (default 3000, the work per sample) change the
//! length of the run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead as lc;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use strongroom::protector::SoftwareProtector;
use strongroom::seal::{HEADER_LEN, SealContext, SealedValue, seal_buffer};
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_benches::{env_or, load_average, results_dir};

const SIZES: &[(usize, &str)] = &[(1024, "1KiB"), (64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];
const PATH: &str = "prod/payment-svc/postgres";
/// The associated data Strongroom builds for `PATH`: header, path length,
/// path, version. The ring baselines authenticate as many bytes.
const AAD_LEN: usize = HEADER_LEN + 4 + PATH.len() + 8;
const NONCES_PER_DRAW: usize = 64;

/// The value at quantile `q` (0..=1) of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// One variant: runs `iters` operations.
type Run<'a> = Box<dyn FnMut(u64) + 'a>;

/// Nonces drawn `NONCES_PER_DRAW` at a time, as Strongroom draws them.
struct Pool {
    rng: SystemRandom,
    buf: [u8; 12 * NONCES_PER_DRAW],
    next: usize,
}

impl Pool {
    fn new() -> Self {
        Self {
            rng: SystemRandom::new(),
            buf: [0; 12 * NONCES_PER_DRAW],
            next: NONCES_PER_DRAW,
        }
    }

    fn nonce(&mut self) -> [u8; 12] {
        if self.next == NONCES_PER_DRAW {
            self.rng.fill(&mut self.buf).expect("rng");
            self.next = 0;
        }
        let mut n = [0; 12];
        n.copy_from_slice(&self.buf[self.next * 12..][..12]);
        self.next += 1;
        n
    }
}

/// A ratio to report: (Strongroom variant, baseline variant).
type Pair = (&'static str, &'static str);

struct Outcome {
    group: String,
    ours: &'static str,
    base: &'static str,
    ours_ns: f64,
    base_ns: f64,
    ratios: Vec<f64>,
}

/// Runs `variants` round by round and returns the pairs' per-round ratios.
fn compare(
    group: &str,
    mut variants: Vec<(&'static str, Run<'_>)>,
    pairs: &[Pair],
    rounds: usize,
    sample: Duration,
) -> Vec<Outcome> {
    // Warm up every variant and size one sample by the slowest of them.
    let mut slowest = 0f64;
    for (_, run) in &mut variants {
        run(3);
        let mut iters = 1u64;
        loop {
            let start = Instant::now();
            run(iters);
            let took = start.elapsed();
            if took >= Duration::from_millis(20) || iters >= 1 << 24 {
                slowest = slowest.max(took.as_secs_f64() / iters as f64);
                break;
            }
            iters *= 2;
        }
    }
    let iters = ((sample.as_secs_f64() / slowest) as u64).max(1);
    let k = variants.len();
    let mut per_op: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        for j in 0..k {
            let i = (round + j) % k;
            let start = Instant::now();
            (variants[i].1)(iters);
            per_op[i].push(start.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    let index = |name: &str| {
        variants
            .iter()
            .position(|(n, _)| *n == name)
            .expect("variant")
    };
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        quantile(&v, 0.5)
    };
    pairs
        .iter()
        .map(|&(ours, base)| {
            let (a, b) = (&per_op[index(ours)], &per_op[index(base)]);
            let mut ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
            ratios.sort_by(f64::total_cmp);
            Outcome {
                group: group.to_owned(),
                ours,
                base,
                ours_ns: median(a),
                base_ns: median(b),
                ratios,
            }
        })
        .collect()
}

/// AES-256-GCM from one AEAD library, called the way the baselines call
/// it: `buf` is the plaintext (seal) or the ciphertext with its tag
/// appended (open).
trait Aead {
    fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16];
    /// Returns the plaintext's length.
    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> usize;
}

impl Aead for LessSafeKey {
    fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let tag = self
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
            .expect("seal");
        tag.as_ref().try_into().expect("tag")
    }

    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> usize {
        self.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
            .expect("open")
            .len()
    }
}

impl Aead for lc::LessSafeKey {
    fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let tag = self
            .seal_in_place_separate_tag(
                lc::Nonce::assume_unique_for_key(nonce),
                lc::Aad::from(aad),
                buf,
            )
            .expect("seal");
        tag.as_ref().try_into().expect("tag")
    }

    /// With the tag passed apart, as `open_value` calls AWS-LC (its
    /// `open_in_place` would move the plaintext once more).
    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> usize {
        let (body, tag) = buf.split_at_mut(buf.len() - 16);
        self.open_in_place_separate_tag(
            lc::Nonce::assume_unique_for_key(nonce),
            lc::Aad::from(aad),
            tag,
            body,
        )
        .expect("open")
        .len()
    }
}

/// A seal in place on a reused buffer of `size` bytes, the tag appended,
/// with nonces from `nonce`.
fn seal_reused<'a>(
    key: &'a impl Aead,
    size: usize,
    mut nonce: impl FnMut() -> [u8; 12] + 'a,
) -> Run<'a> {
    let aad = [0x11u8; AAD_LEN];
    let mut buf = Vec::with_capacity(size + 16);
    buf.resize(size, 0xA5u8);
    Box::new(move |iters: u64| {
        for _ in 0..iters {
            buf.truncate(size);
            let tag = key.seal(nonce(), &aad, &mut buf);
            buf.extend_from_slice(&tag);
        }
        black_box(&buf);
    })
}

/// Allocate, copy the plaintext in, seal with a pooled nonce: the work
/// `seal_value` does, laid out as a sealed value (a 20-byte prefix holding
/// the nonce, the ciphertext, the tag).
fn seal_copied<'a>(key: &'a impl Aead, size: usize) -> Run<'a> {
    let aad = [0x11u8; AAD_LEN];
    let plaintext = vec![0xA5u8; size];
    let mut pool = Pool::new();
    Box::new(move |iters: u64| {
        for _ in 0..iters {
            let nonce = pool.nonce();
            let mut out = Vec::with_capacity(HEADER_LEN + size + 16);
            out.extend_from_slice(&[0; HEADER_LEN - 12]);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&plaintext);
            let tag = key.seal(nonce, &aad, &mut out[HEADER_LEN..]);
            out.extend_from_slice(&tag);
            black_box(out);
        }
    })
}

/// Nonces from a counter: the cheapest possible nonce.
fn counter_nonces() -> impl FnMut() -> [u8; 12] {
    let mut counter = 0u64;
    move || {
        counter += 1;
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        n
    }
}

fn seal_variants<'a>(
    rt: &'a tokio::runtime::Runtime,
    sr: &'a Strongroom,
    keys: &'a Keys,
    ctx: &'a SealContext<'a>,
    size: usize,
) -> Vec<(&'static str, Run<'a>)> {
    let plaintext = vec![0xA5u8; size];
    let mut in_place = seal_buffer(size);
    in_place.resize(HEADER_LEN + size, 0xA5);
    let mut pool = Pool::new();
    let rng = SystemRandom::new();
    vec![
        (
            "strongroom",
            Box::new(move |iters: u64| {
                rt.block_on(async {
                    for _ in 0..iters {
                        black_box(sr.seal_value(&plaintext, ctx).await.expect("seal"));
                    }
                })
            }) as Run<'a>,
        ),
        (
            "strongroom-in-place",
            Box::new(move |iters: u64| {
                rt.block_on(async {
                    for _ in 0..iters {
                        in_place.truncate(HEADER_LEN + size);
                        sr.seal_value_in_place(&mut in_place, ctx)
                            .await
                            .expect("seal");
                    }
                });
                black_box(&in_place);
            }),
        ),
        (
            "ring-counter",
            seal_reused(&keys.ring, size, counter_nonces()),
        ),
        (
            "ring-pooled",
            seal_reused(&keys.ring, size, move || pool.nonce()),
        ),
        (
            "ring-getrandom",
            seal_reused(&keys.ring, size, move || {
                let mut n = [0u8; 12];
                rng.fill(&mut n).expect("rng");
                n
            }),
        ),
        ("ring-copy-pooled", seal_copied(&keys.ring, size)),
        (
            "aws-lc-counter",
            seal_reused(&keys.aws_lc, size, counter_nonces()),
        ),
        ("aws-lc-copy-pooled", seal_copied(&keys.aws_lc, size)),
    ]
}

/// Copy the stored ciphertext and tag into a fresh `Vec` and open it there.
fn open_copied<'a>(key: &'a impl Aead, stored: &'a [u8]) -> Run<'a> {
    let aad = [0x11u8; AAD_LEN];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&stored[8..HEADER_LEN]);
    Box::new(move |iters: u64| {
        for _ in 0..iters {
            let mut buf = stored[HEADER_LEN..].to_vec();
            let n = key.open(nonce, &aad, &mut buf);
            black_box((n, &buf));
        }
    })
}

fn open_variants<'a>(
    sr: &'a Strongroom,
    ctx: &'a SealContext<'a>,
    sealed: &'a SealedValue,
    baseline_stored: &'a [u8],
    keys: &'a Keys,
) -> Vec<(&'static str, Run<'a>)> {
    vec![
        (
            "strongroom",
            Box::new(move |iters: u64| {
                for _ in 0..iters {
                    let secret = sr.open_value(sealed, ctx).expect("open");
                    black_box(&secret);
                }
            }) as Run<'a>,
        ),
        (
            "strongroom-in-place",
            Box::new(move |iters: u64| {
                for _ in 0..iters {
                    let mut buf = sealed.as_bytes().to_vec();
                    let n = sr.open_value_in_place(&mut buf, ctx).expect("open").len();
                    black_box((n, &buf));
                }
            }),
        ),
        ("ring-copy", open_copied(&keys.ring, baseline_stored)),
        ("aws-lc-copy", open_copied(&keys.aws_lc, baseline_stored)),
    ]
}

/// The baselines' keys, one per library.
struct Keys {
    ring: LessSafeKey,
    aws_lc: lc::LessSafeKey,
}

/// A value sealed by the baselines (both libraries produce the same bytes
/// for the same key), laid out as a sealed value: a 20-byte prefix holding
/// the nonce, the ciphertext, the tag.
fn baseline_sealed(keys: &Keys, size: usize) -> Vec<u8> {
    let aad = [0x11u8; AAD_LEN];
    let nonce = [9u8; 12];
    let mut stored = vec![0u8; HEADER_LEN];
    stored[8..20].copy_from_slice(&nonce);
    stored.resize(HEADER_LEN + size, 0x5A);
    let tag = keys.ring.seal(nonce, &aad, &mut stored[HEADER_LEN..]);
    stored.extend_from_slice(&tag);
    stored
}

fn json_outcome(o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "group": o.group,
        "ours": o.ours,
        "base": o.base,
        "ours_ns": o.ours_ns,
        "base_ns": o.base_ns,
        "ratio_median": quantile(&o.ratios, 0.5),
        "ratio_p25": quantile(&o.ratios, 0.25),
        "ratio_p75": quantile(&o.ratios, 0.75),
        "ratio_min": quantile(&o.ratios, 0.0),
        "ratio_max": quantile(&o.ratios, 1.0),
        "rounds": o.ratios.len(),
    })
}

fn print_outcome(o: &Outcome) {
    let r = &o.ratios;
    println!(
        "{:<12} {:<20} / {:<17} {:>10.0} ns {:>10.0} ns  {:>6.3}x  [{:.3}-{:.3}; {:.3}-{:.3}]",
        o.group,
        o.ours,
        o.base,
        o.ours_ns,
        o.base_ns,
        quantile(r, 0.5),
        quantile(r, 0.25),
        quantile(r, 0.75),
        quantile(r, 0.0),
        quantile(r, 1.0),
    );
}

fn main() {
    let rounds = env_or("SEAL_BENCH_ROUNDS", 201).max(1);
    let sample = Duration::from_micros(env_or("SEAL_BENCH_SAMPLE_US", 3000).max(1) as u64);
    let load_start = load_average();
    println!(
        "seal bench: {rounds} interleaved rounds, ~{sample:?} per sample; load average at start: {load_start}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let sr = rt.block_on(async {
        let p = SoftwareProtector::from_key(SecretBytes::new(vec![1; 32])).expect("key");
        Strongroom::init(Arc::new(MemoryStorage::new()), &p, Options::default())
            .await
            .expect("init")
    });
    let keys = Keys {
        ring: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1; 32]).expect("key")),
        aws_lc: lc::LessSafeKey::new(lc::UnboundKey::new(&lc::AES_256_GCM, &[1; 32]).expect("key")),
    };
    let ctx = SealContext::new(PATH, 7);
    println!(
        "{:<12} {:<20} / {:<17} {:>13} {:>13}  {:>7}  [p25-p75; min-max]",
        "group", "strongroom", "baseline", "strongroom", "baseline", "ratio"
    );
    let mut outcomes = Vec::new();
    for &(size, name) in SIZES {
        let pairs = [
            ("strongroom", "ring-copy-pooled"),
            ("strongroom", "ring-counter"),
            ("strongroom-in-place", "ring-counter"),
            ("strongroom-in-place", "ring-pooled"),
            ("strongroom-in-place", "ring-getrandom"),
            ("strongroom", "aws-lc-copy-pooled"),
            ("strongroom", "aws-lc-counter"),
            ("strongroom-in-place", "aws-lc-counter"),
            ("aws-lc-counter", "ring-counter"),
        ];
        let variants = seal_variants(&rt, &sr, &keys, &ctx, size);
        for o in compare(&format!("seal/{name}"), variants, &pairs, rounds, sample) {
            print_outcome(&o);
            outcomes.push(o);
        }

        let sealed = rt
            .block_on(sr.seal_value(&vec![0x5Au8; size], &ctx))
            .expect("seal");
        let stored = baseline_sealed(&keys, size);
        let pairs = [
            ("strongroom", "ring-copy"),
            ("strongroom-in-place", "ring-copy"),
            ("strongroom", "aws-lc-copy"),
            ("strongroom-in-place", "aws-lc-copy"),
            ("aws-lc-copy", "ring-copy"),
        ];
        let variants = open_variants(&sr, &ctx, &sealed, &stored, &keys);
        for o in compare(&format!("open/{name}"), variants, &pairs, rounds, sample) {
            print_outcome(&o);
            outcomes.push(o);
        }
    }
    let load_end = load_average();
    println!("load average at end: {load_end}");

    let dir = results_dir();
    let doc = serde_json::json!({
        "bench": "seal",
        "rounds": rounds,
        "sample_us": sample.as_micros() as u64,
        "load_start": load_start,
        "load_end": load_end,
        "results": outcomes.iter().map(json_outcome).collect::<Vec<_>>(),
    });
    let file = dir.join("seal.json");
    match std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &file,
            serde_json::to_string_pretty(&doc).expect("json") + "\n",
        )
    }) {
        Ok(()) => println!("results: {}", file.display()),
        Err(e) => eprintln!("could not write {}: {e}", file.display()),
    }
}

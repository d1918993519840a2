//! Benchmarks for Strongroom: see `benches/` and `report.py`.
//!
//! This library holds what several benchmarks share: the naive lease index
//! that the compact [`strongroom::lease::ExpiryIndex`] is measured against,
//! and a deterministic workload generator.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A lease as a straightforward implementation keeps it in memory: owned
/// strings for the id and the path, plus the numeric fields.
#[derive(Debug, Clone)]
pub struct NaiveLease {
    /// The id in text form (`lease_` + 32 hex digits).
    pub id: String,
    /// The issuing path.
    pub path: String,
    /// Issue time, ms.
    pub issued_at: u64,
    /// TTL, ms.
    pub ttl: u64,
    /// Max TTL, ms.
    pub max_ttl: u64,
    /// Expiry, ms.
    pub expires_at: u64,
    /// Renewable.
    pub renewable: bool,
    /// State tag.
    pub state: u8,
}

/// The naive lease index: a binary heap of `(expiry, id)` plus a map from
/// id to the whole lease.
#[derive(Debug, Default)]
pub struct NaiveIndex {
    heap: BinaryHeap<Reverse<(u64, String)>>,
    map: HashMap<String, NaiveLease>,
}

impl NaiveIndex {
    /// Adds a lease.
    pub fn insert(&mut self, lease: NaiveLease) {
        self.heap
            .push(Reverse((lease.expires_at, lease.id.clone())));
        self.map.insert(lease.id.clone(), lease);
    }

    /// Removes and returns the earliest lease if it expires at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<NaiveLease> {
        loop {
            match self.heap.peek() {
                Some(Reverse((t, _))) if *t <= now => {}
                _ => return None,
            }
            let Reverse((_, id)) = self.heap.pop()?;
            if let Some(l) = self.map.remove(&id) {
                return Some(l);
            }
        }
    }

    /// Leases held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A small deterministic generator (SplitMix64), so every run and both
/// indexes see the same workload.
#[derive(Debug, Clone)]
pub struct Workload {
    state: u64,
}

/// One generated lease.
#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// The id.
    pub id: u128,
    /// Expiry, ms.
    pub expires_at: u64,
    /// Which of the generated paths.
    pub path: u32,
}

/// The start time of generated workloads, ms.
pub const T0: u64 = 1_800_000_000_000;

impl Workload {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A lease with a TTL between one minute and one day, on one of 200 paths.
    pub fn item(&mut self) -> Item {
        let id = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        let ttl = 60_000 + self.next_u64() % 86_340_000;
        Item {
            id,
            expires_at: T0 + ttl,
            path: (self.next_u64() % 200) as u32,
        }
    }
}

/// The path text of generated path number `n`.
pub fn path_of(n: u32) -> String {
    format!("database/creds/role-{n:03}")
}

/// The naive lease for a generated item.
pub fn naive_lease(item: &Item) -> NaiveLease {
    NaiveLease {
        id: strongroom::lease::LeaseId::from_u128(item.id).to_string(),
        path: path_of(item.path),
        issued_at: T0,
        ttl: item.expires_at - T0,
        max_ttl: item.expires_at - T0,
        expires_at: item.expires_at,
        renewable: true,
        state: 0,
    }
}

/// The value of the environment variable `name` as a number, or `default`
/// when it is unset or not a number (benchmarks take their sizes this way).
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `v` (the upper one of the middle two for an even count);
/// `None` when `v` is empty. Incomparable values (NaN) sort as equal.
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`, for the
/// report beside the figures ("unknown" where there is no such file).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Where the benches leave their results for `report.py`:
/// `<target>/strongroom-bench/`.
pub fn results_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/<profile>/deps/<bench binary>
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("strongroom-bench")
}

/// What a figure must reach.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The figure is at most this (a cost ratio).
    AtMost(f64),
    /// The figure is at least this (a speed-up).
    AtLeast(f64),
}

/// The figures of one bench run: each the median of paired per-round
/// ratios with its spread, and the target it is checked against, saved as
/// `<results_dir>/<bench>.json` for `report.py` and printed as they come.
#[derive(Debug)]
pub struct Figures {
    bench: String,
    load_start: String,
    rows: Vec<String>,
}

impl Figures {
    /// Starts the record of `bench`'s run, noting the load average now.
    pub fn new(bench: &str) -> Self {
        Self {
            bench: bench.to_owned(),
            load_start: load_average(),
            rows: Vec::new(),
        }
    }

    /// Records (and prints) the median of the per-round `ratios` as `name`,
    /// with `api` naming what the figure measures (the call a user makes)
    /// and `baseline` what it is divided by.
    pub fn ratio(
        &mut self,
        name: &str,
        api: &str,
        baseline: &str,
        ratios: &[f64],
        target: Option<Target>,
    ) {
        let line = self.record(name, api, baseline, ratios, target);
        println!("{line}");
    }

    /// [`Figures::ratio`] without printing (for benches that print their
    /// own lines); returns the line `ratio` would print.
    pub fn record(
        &mut self,
        name: &str,
        api: &str,
        baseline: &str,
        ratios: &[f64],
        target: Option<Target>,
    ) -> String {
        let m = median(ratios.to_vec()).unwrap_or(f64::NAN);
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (verdict, target_json) = match target {
            None => (String::new(), "null".to_owned()),
            Some(Target::AtMost(t)) => (
                format!("  target <= {t}: {}", if m <= t { "ok" } else { "MISSED" }),
                format!("{{\"at_most\": {t}}}"),
            ),
            Some(Target::AtLeast(t)) => (
                format!("  target >= {t}: {}", if m >= t { "ok" } else { "MISSED" }),
                format!("{{\"at_least\": {t}}}"),
            ),
        };
        let line = format!(
            "{name}: {m:.2}x (min {lo:.2}x, max {hi:.2}x, {} rounds){verdict}",
            ratios.len()
        );
        let quote = |s: &str| format!("{s:?}");
        self.rows.push(format!(
            "{{\"name\": {}, \"api\": {}, \"baseline\": {}, \"median\": {}, \"min\": {}, \"max\": {}, \"rounds\": {}, \"target\": {target_json}}}",
            quote(name),
            quote(api),
            quote(baseline),
            json_number(m),
            json_number(lo),
            json_number(hi),
            ratios.len()
        ));
        line
    }

    /// Writes the record (best effort: a bench never fails on it).
    pub fn save(self) {
        let dir = results_dir();
        let body = format!(
            "{{\"bench\": {:?}, \"load_start\": {:?}, \"load_end\": {:?}, \"figures\": [\n  {}\n]}}\n",
            self.bench,
            self.load_start,
            load_average(),
            self.rows.join(",\n  ")
        );
        let file = dir.join(format!("{}.json", self.bench));
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, body)) {
            Ok(()) => println!("results: {}", file.display()),
            Err(e) => eprintln!("could not save {}: {e}", file.display()),
        }
    }
}

fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_owned()
    }
}

/// An audit sink that accepts every record and keeps none: the audit's
/// own cost without I/O, for benches of audited operations.
#[derive(Debug)]
pub struct DiscardSink;

#[async_trait::async_trait]
impl strongroom::audit::AuditSink for DiscardSink {
    fn name(&self) -> &str {
        "discard"
    }
    async fn write(
        &self,
        _record: &strongroom::audit::AuditRecord,
        line: &str,
    ) -> Result<(), strongroom::audit::AuditError> {
        std::hint::black_box(line);
        Ok(())
    }
}

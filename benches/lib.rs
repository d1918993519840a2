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

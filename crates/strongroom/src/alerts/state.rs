//! The engine's bounded memory: a least-recently-used map and what is kept
//! per principal.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::clock::Timestamp;

/// A map from names to `V` holding at most `cap` entries; inserting into a
/// full map drops the least recently used entry. Lookups through
/// [`Lru::get_or_insert_with`] count as use. Every operation is O(log n).
#[derive(Debug)]
pub(super) struct Lru<V> {
    // Keys are shared between the two maps (a touch clones a pointer, not
    // the text); hashed with foldhash, seeded per map, as the read cache is.
    map: HashMap<Arc<str>, (V, u64), foldhash::quality::RandomState>,
    order: BTreeMap<u64, Arc<str>>,
    tick: u64,
    cap: usize,
}

impl<V> Lru<V> {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::default(),
            order: BTreeMap::new(),
            tick: 0,
            cap: cap.max(1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The entry for `key`, created with `make` (dropping the least
    /// recently used entry if full), marked as just used.
    pub(super) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        let tick = self.next_tick();
        let k: Arc<str> = match self.map.get_key_value(key) {
            Some((k, (_, old))) => {
                let (k, old) = (Arc::clone(k), *old);
                self.order.remove(&old);
                k
            }
            None => {
                if self.map.len() >= self.cap
                    && let Some((_, oldest)) = self.order.pop_first()
                {
                    self.map.remove(&oldest);
                }
                key.into()
            }
        };
        self.order.insert(tick, Arc::clone(&k));
        let entry = self.map.entry(k).or_insert_with(|| (make(), tick));
        entry.1 = tick;
        &mut entry.0
    }

    /// Removes entries for which `keep` is false.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let order = &mut self.order;
        self.map.retain(|_, (v, tick)| {
            let k = keep(v);
            if !k {
                order.remove(tick);
            }
            k
        });
    }

    /// The entries, in no particular order.
    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|(v, _)| v)
    }
}

/// What the engine keeps about one principal.
#[derive(Debug)]
pub(super) struct PrincipalState {
    /// The first record of this principal the engine saw (since it was
    /// last tracked).
    pub(super) first_seen: Timestamp,
    /// Paths read (new-path rule).
    pub(super) known_paths: Lru<()>,
    /// The read-rate window.
    pub(super) rate: RateState,
    /// Paths read or listed recently, with the last time (bulk rule).
    pub(super) recent: Lru<Timestamp>,
    /// No bulk alert before this time.
    pub(super) bulk_quiet_until: Timestamp,
    /// Times of recent denials, oldest first.
    pub(super) denials: VecDeque<Timestamp>,
    /// No off-hours alert before this time.
    pub(super) off_hours_quiet_until: Timestamp,
}

impl PrincipalState {
    pub(super) fn new(now: Timestamp, max_paths: usize) -> Self {
        Self {
            first_seen: now,
            known_paths: Lru::new(max_paths),
            rate: RateState::default(),
            recent: Lru::new(max_paths),
            bulk_quiet_until: Timestamp::EPOCH,
            denials: VecDeque::new(),
            off_hours_quiet_until: Timestamp::EPOCH,
        }
    }
}

/// Reads per fixed window and their moving average.
#[derive(Debug, Default)]
pub(super) struct RateState {
    /// The current window's number (time / window length); `None` before
    /// the first read.
    pub(super) window: Option<u64>,
    /// Reads in the current window.
    pub(super) count: u64,
    /// The moving average of reads per window.
    pub(super) average: f64,
    /// Completed windows (including empty ones) since the first read.
    pub(super) windows_seen: u64,
    /// Whether this window already fired.
    pub(super) fired: bool,
}

impl RateState {
    /// Moves to the window holding `now` (folding finished windows into
    /// the average) and counts one read. Returns the count.
    pub(super) fn count_read(&mut self, now: Timestamp, window_ms: u64, smoothing: f64) -> u64 {
        let w = now.as_millis() / window_ms;
        match self.window {
            None => self.window = Some(w),
            Some(cur) if w > cur => {
                let elapsed = w - cur;
                self.average = self.average * (1.0 - smoothing) + self.count as f64 * smoothing;
                // Each further window passed with no reads.
                let empty = i32::try_from(elapsed - 1).unwrap_or(i32::MAX).min(10_000);
                self.average *= (1.0 - smoothing).powi(empty);
                self.windows_seen = self.windows_seen.saturating_add(elapsed);
                self.window = Some(w);
                self.count = 0;
                self.fired = false;
            }
            // Same window, or a record older than the window (clocks of
            // records only move forward within one log): count it here.
            Some(_) => {}
        }
        self.count += 1;
        self.count
    }
}

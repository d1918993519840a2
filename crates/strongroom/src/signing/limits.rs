//! Per-key rate limits: a token bucket per key name, kept in this process
//! and timed by the store's clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{RateLimit, SigningError};
use crate::Result;
use crate::clock::Timestamp;

/// Thousandths of a signature: the bucket's unit, so that a rate of
/// `per_second` refills `per_second` units every millisecond.
const UNIT: u64 = 1000;
/// Buckets kept before full ones are forgotten (a full bucket and a
/// missing one behave the same).
const MAX_BUCKETS: usize = 4096;

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    /// Units available.
    units: u64,
    at: Timestamp,
}

impl Bucket {
    fn capacity(limit: RateLimit) -> u64 {
        u64::from(limit.burst) * UNIT
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.as_millis().saturating_sub(self.at.as_millis());
        let added = elapsed.saturating_mul(u64::from(self.limit.per_second));
        self.units = self
            .units
            .saturating_add(added)
            .min(Self::capacity(self.limit));
        self.at = self.at.max(now);
    }
}

/// The buckets of every rate-limited key this process signed with.
#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one signature from `key`'s bucket at `now`, or says how long
    /// to wait ([`SigningError::RateLimited`]). A changed limit keeps the
    /// tokens left, up to the new burst.
    pub(super) fn take(&self, key: &str, limit: RateLimit, now: Timestamp) -> Result<()> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.refill(now);
                b.units < Bucket::capacity(b.limit)
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            limit,
            units: Bucket::capacity(limit),
            at: now,
        });
        bucket.refill(now);
        if bucket.limit != limit {
            bucket.limit = limit;
            bucket.units = bucket.units.min(Bucket::capacity(limit));
        }
        if bucket.units >= UNIT {
            bucket.units -= UNIT;
            return Ok(());
        }
        let missing = UNIT - bucket.units;
        let per_ms = u64::from(limit.per_second).max(1);
        let ms = missing.div_ceil(per_ms);
        Err(SigningError::RateLimited {
            key: key.to_owned(),
            retry_after: Duration::from_millis(ms),
        }
        .into())
    }
}

//! One retry delay for every part of the library: exponential from a first
//! delay, capped, optionally shortened by random jitter so that many
//! retries spread out.
//!
//! Used by lease revocation retries ([`RetryPolicy`](crate::lease::RetryPolicy)),
//! rotation step retries
//! ([`RotationOptions`](crate::rotation::RotationOptions)), and, in
//! `strongroom-sqlx`, the healing pool's refreshes and the change watchers'
//! reconnects. Waiting is the caller's (on its clock), so the type itself
//! never sleeps.

use std::time::Duration;

/// Exponential backoff: the delay before retry `n` (1-based) is
/// `first * 2^(n-1)`, at most `max`, then reduced by a random fraction of
/// at most `jitter` of itself (never below 1 ms when jittered).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// Doubling from `first` up to `max`, without jitter. A `max` below
    /// `first` caps every delay at `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            jitter: 0.0,
        }
    }

    /// The same, each delay shortened by a random fraction in
    /// `[0, jitter]` of itself; `jitter` is clamped to `0.0..=1.0` (a NaN
    /// means none).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The first delay.
    pub const fn first(&self) -> Duration {
        self.first
    }

    /// The longest delay.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The delay before retry `attempt` (1-based; 0 counts as 1), without
    /// jitter.
    pub fn full_delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        self.first
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay before retry `attempt` (1-based), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self.full_delay(attempt);
        if self.jitter <= 0.0 {
            return full;
        }
        let factor = 1.0 - self.jitter * unit_random();
        Duration::try_from_secs_f64(full.as_secs_f64() * factor)
            .unwrap_or(full)
            .max(Duration::from_millis(1))
    }

    /// A sequence of delays for one run of retries: [`Retries::next_delay`]
    /// gives the next, [`Retries::reset`] starts again from the first (after
    /// a success).
    pub fn retries(&self) -> Retries {
        Retries {
            backoff: *self,
            attempt: 0,
        }
    }
}

/// The delays of one run of retries (see [`Backoff::retries`]).
#[derive(Debug, Clone)]
pub struct Retries {
    backoff: Backoff,
    attempt: u32,
}

impl Retries {
    /// The delay before the next retry; each call moves one attempt on.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        self.backoff.delay(self.attempt)
    }

    /// Starts again from the first delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Retries counted so far (delays handed out since the last reset).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// A uniform random number in `[0, 1]` from the system's generator (0.0 if
/// it fails: then the full delay is used, which is always safe).
fn unit_random() -> f64 {
    let mut b = [0u8; 4];
    match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b) {
        Ok(()) => f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_first_delay_up_to_the_max() {
        let b = Backoff::new(100 * MS, 1000 * MS);
        let got: Vec<u128> = (1..=6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(0), 100 * MS);
        assert_eq!(b.delay(u32::MAX), 1000 * MS);
    }

    #[test]
    fn a_huge_first_delay_is_capped_not_overflowed() {
        let b = Backoff::new(Duration::MAX, Duration::from_secs(5));
        assert_eq!(b.delay(1), Duration::from_secs(5));
        assert_eq!(b.delay(40), Duration::from_secs(5));
    }

    #[test]
    fn jitter_only_shortens_and_varies() {
        let b = Backoff::new(Duration::from_secs(8), Duration::from_secs(60)).with_jitter(0.5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let d = b.delay(1);
            assert!(
                d <= Duration::from_secs(8) && d >= Duration::from_secs(4),
                "{d:?}"
            );
            seen.insert(d);
        }
        assert!(seen.len() > 1, "jitter varies the delay");
        assert_eq!(b.with_jitter(f64::NAN).delay(1), Duration::from_secs(8));
        assert_eq!(b.with_jitter(-3.0).delay(2), Duration::from_secs(16));
    }

    #[test]
    fn retries_move_on_and_reset() {
        let mut r = Backoff::new(10 * MS, 35 * MS).retries();
        let got: Vec<Duration> = (0..4).map(|_| r.next_delay()).collect();
        assert_eq!(got, [10 * MS, 20 * MS, 35 * MS, 35 * MS]);
        assert_eq!(r.attempts(), 4);
        r.reset();
        assert_eq!(r.next_delay(), 10 * MS);
    }
}

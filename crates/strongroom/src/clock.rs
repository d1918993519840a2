//! Time, from a clock that tests can move.
//!
//! Nothing in Strongroom reads the system time directly: leases, rotation and
//! audit all take an `Arc<dyn Clock>`. [`ManualClock`] lets a test jump
//! forward by an hour without sleeping, and wakes anything waiting on it.

use std::fmt;
use std::future::Future;
use std::ops::{Add, Sub};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);
    /// The latest representable time.
    pub const MAX: Self = Self(u64::MAX);

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// From seconds since the epoch.
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// RFC 3339 text in UTC with millisecond precision, e.g.
    /// `2026-11-22T04:06:39.000Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let ms = self.0 % 1000;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A boxed future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Resolves once `now() >= deadline`. Background tasks wait on this, so a
    /// test that moves a [`ManualClock`] wakes them without real waiting.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;

    /// The current time read cheaply, never ahead of [`Clock::now`], and
    /// the step it moves in. It is usually behind `now()` by less than one
    /// step, but not always: a coarse clock is only as fresh as the last
    /// update of the machine's timekeeping, which a stalled (virtual) CPU
    /// can delay. Callers that check ages with it keep a margin of several
    /// steps and decide close cases with `now()`, as the read cache does.
    /// The default is `now()` itself with a step of zero.
    fn now_coarse(&self) -> (Timestamp, Duration) {
        (self.now(), Duration::ZERO)
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let wait = deadline.saturating_since(self.now());
        Box::pin(tokio::time::sleep(wait))
    }

    /// On Linux, `CLOCK_REALTIME_COARSE` (a few nanoseconds, where
    /// `SystemTime::now` costs tens). Its step is the clock's resolution
    /// (one kernel tick, typically 1-4 ms), rounded up to whole milliseconds
    /// plus one for the truncation of both readings.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_coarse(&self) -> (Timestamp, Duration) {
        use rustix::time::{ClockId, clock_getres, clock_gettime};
        static LAG: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
        let lag = *LAG.get_or_init(|| {
            let res = clock_getres(ClockId::RealtimeCoarse);
            let nanos = u64::try_from(res.tv_sec)
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::try_from(res.tv_nsec).unwrap_or(0));
            Duration::from_millis(nanos.div_ceil(1_000_000).saturating_add(1))
        });
        let t = clock_gettime(ClockId::RealtimeCoarse);
        let ms = u64::try_from(t.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000);
        (Timestamp(ms), lag)
    }
}

/// A clock that only moves when told to. For tests and simulations.
///
/// ```
/// use std::time::Duration;
/// use strongroom::clock::{Clock, ManualClock, Timestamp};
/// let clock = ManualClock::new(Timestamp::from_secs(1_000));
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.now(), Timestamp::from_secs(4_600));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    tx: Arc<tokio::sync::watch::Sender<Timestamp>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        let (tx, _rx) = tokio::sync::watch::channel(start);
        Self { tx: Arc::new(tx) }
    }

    /// Moves the clock forward and wakes every sleeper that is now due.
    pub fn advance(&self, by: Duration) {
        self.tx.send_modify(|t| *t = *t + by);
    }

    /// Sets the clock (forward or back).
    pub fn set(&self, to: Timestamp) {
        self.tx.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.tx.borrow()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            // wait_for returns an error only if the sender is dropped, which
            // cannot happen while `self` lives; then there is nothing to wait for.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_never_ahead_and_lags_less_than_the_cache_margin() {
        let clock = SystemClock;
        for _ in 0..1000 {
            let before = clock.now();
            let (coarse, step) = clock.now_coarse();
            let after = clock.now();
            assert!(coarse <= after, "{coarse:?} is ahead of {after:?}");
            assert!(step < Duration::from_millis(100), "a step of {step:?}");
            // The read cache's default margin is a quarter of a second.
            assert!(
                coarse + Duration::from_millis(250) >= before,
                "{coarse:?} lags {before:?} by a quarter of a second"
            );
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(Timestamp::EPOCH.to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::from_millis(1_795_320_399_123).to_rfc3339(),
            "2026-11-22T04:06:39.123Z"
        );
        assert_eq!(
            Timestamp::from_secs(951_782_400).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers() {
        let clock = ManualClock::new(Timestamp::from_secs(10));
        let c2 = clock.clone();
        let h = tokio::spawn(async move { c2.sleep_until(Timestamp::from_secs(70)).await });
        tokio::task::yield_now().await;
        assert!(!h.is_finished());
        clock.advance(Duration::from_secs(60));
        tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .expect("sleeper woke")
            .expect("task ok");
    }
}

use super::healing::Recycle;
use super::*;

#[test]
fn codes() {
    assert_eq!(classify_code("28P01", "", false), ErrorClass::Credential);
    let hba = "pg_hba.conf rejects connection for host \"127.0.0.1\"";
    assert_eq!(classify_code("28000", hba, true), ErrorClass::HbaRejected);
    assert_eq!(
        classify_code("28000", "x", false),
        ErrorClass::NotAuthorized
    );
    assert_eq!(classify_code("28000", "x", true), ErrorClass::Credential);
    assert_eq!(
        classify_code("3D000", "", true),
        ErrorClass::DatabaseMissing
    );
    assert_eq!(
        classify_code("53300", "", true),
        ErrorClass::TooManyConnections
    );
    assert_eq!(classify_code("57P03", "", true), ErrorClass::Unavailable);
    assert_eq!(classify_code("08006", "", true), ErrorClass::Network);
    assert_eq!(classify_code("42P01", "", true), ErrorClass::Other);
}

fn meta(age_ms: u64) -> Duration {
    Duration::from_millis(age_ms)
}

#[test]
fn recycling_closes_only_connections_older_than_the_swap_and_all_within_the_window() {
    let r = Recycle {
        origin: Instant::now() - Duration::from_secs(100),
        swapped_at_ms: AtomicU64::new(u64::MAX),
        wave_start_ms: AtomicU64::new(u64::MAX),
        window_ms: 1000,
        spacing_ms: 0,
        last_close_ms: AtomicU64::new(u64::MAX),
        recycled: Arc::default(),
    };
    // no swap yet: nothing closes
    assert!(!r.should_close(meta(50_000)));
    let now = u64::try_from(r.origin.elapsed().as_millis()).unwrap();
    // a swap 2 windows ago: every older connection closes, newer ones stay
    r.swapped_at_ms.store(now - 2000, Ordering::Relaxed);
    r.wave_start_ms.store(now - 2000, Ordering::Relaxed);
    for age in [2_500, 3_000, 10_000, 50_000] {
        assert!(r.should_close(meta(age)), "age {age}");
    }
    assert!(!r.should_close(meta(1_000)));
    // a swap just now: old connections close gradually (not all at once)
    r.swapped_at_ms.store(now, Ordering::Relaxed);
    r.wave_start_ms.store(now, Ordering::Relaxed);
    let closed = (0..200u64)
        .filter(|i| r.should_close(meta(5_000 + i * 7)))
        .count();
    assert!(closed < 100, "{closed} of 200 closed at once");
    assert!(r.recycled.recycled.load(Ordering::Relaxed) >= 4);

    // spacing: after one close, no other until the interval passes
    let spaced = Recycle {
        spacing_ms: 60_000,
        last_close_ms: AtomicU64::new(u64::MAX),
        origin: r.origin,
        swapped_at_ms: AtomicU64::new(now - 2000),
        wave_start_ms: AtomicU64::new(now - 2000),
        window_ms: 1000,
        recycled: Arc::default(),
    };
    assert!(spaced.should_close(meta(10_000)));
    assert!(!spaced.should_close(meta(10_000)));
    assert!(!spaced.should_close(meta(20_000)));
}

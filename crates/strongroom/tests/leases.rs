//! Public-API tests of the lease manager. Time only moves through a
//! `ManualClock`; nothing sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use strongroom::clock::{Clock, ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{
    Lease, LeaseConfig, LeaseError, LeaseEvent, LeaseId, LeaseManager, LeaseState, PrefixQuota,
    QuotaScope, Revoker,
};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{BatchOp, DynStorage, FaultyStorage, MemoryStorage};
use strongroom::{Error, Options, SecretBytes, StorageErrorKind, Strongroom};
use tokio::sync::broadcast;

const START: Timestamp = Timestamp::from_secs(1_800_000_000);
const MIN: Duration = Duration::from_secs(60);

/// A revoker that records what it was asked and fails on command.
#[derive(Debug, Default)]
struct TestRevoker {
    fail_ids: Mutex<HashSet<LeaseId>>,
    fail_all: AtomicBool,
    fail_renew: AtomicBool,
    revoked: Mutex<Vec<(LeaseId, Vec<u8>)>>,
    renewed: Mutex<Vec<(LeaseId, Timestamp)>>,
}

impl TestRevoker {
    fn fail_for(&self, id: LeaseId) {
        self.fail_ids.lock().unwrap().insert(id);
    }
    fn heal(&self) {
        self.fail_ids.lock().unwrap().clear();
        self.fail_all.store(false, Ordering::SeqCst);
    }
    fn revoked_ids(&self) -> Vec<LeaseId> {
        self.revoked
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }
}

#[async_trait]
impl Revoker for TestRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        if self.fail_all.load(Ordering::SeqCst)
            || self.fail_ids.lock().unwrap().contains(&lease.id())
        {
            return Err(Error::storage(
                "test-engine",
                StorageErrorKind::Unavailable,
                "engine unreachable",
            ));
        }
        self.revoked
            .lock()
            .unwrap()
            .push((lease.id(), lease.revocation_data().to_vec()));
        Ok(())
    }

    async fn renew(&self, lease: &Lease, new_expiry: Timestamp) -> strongroom::Result<()> {
        if self.fail_renew.load(Ordering::SeqCst) {
            return Err(Error::InvalidArgument("engine refused renewal".into()));
        }
        self.renewed.lock().unwrap().push((lease.id(), new_expiry));
        Ok(())
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    /// The raw storage (lease records in it are sealed).
    storage: DynStorage,
    /// The store the first manager was made from: its barrier reads and
    /// writes lease records as the library stores them.
    store: Door,
    revoker: Arc<TestRevoker>,
    manager: Arc<LeaseManager>,
}

fn config() -> LeaseConfig {
    let mut c = LeaseConfig::default();
    c.retry.jitter = 0.0;
    c.retry.base = Duration::from_secs(10);
    c.retry.max = Duration::from_secs(600);
    c.retry.max_attempts = 3;
    c
}

/// A store over `storage` under one fixed test key: initialised by the
/// first caller, unsealed by every later one (another member on the same
/// storage, a restart, a `FaultyStorage` over an initialised storage).
async fn store_over(storage: &DynStorage) -> Door {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    if Strongroom::is_initialized(storage).await.unwrap() {
        Strongroom::unseal(storage.clone(), &protector, Options::default())
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap()
    } else {
        Strongroom::init(storage.clone(), &protector, Options::default())
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap()
    }
}

fn manager_in(
    store: &Door,
    clock: &Arc<ManualClock>,
    config: LeaseConfig,
) -> (Arc<LeaseManager>, Arc<TestRevoker>) {
    let manager = Arc::new(store.lease_manager(clock.clone(), config).unwrap());
    let revoker = Arc::new(TestRevoker::default());
    manager.register_revoker("test", revoker.clone());
    (manager, revoker)
}

/// A manager over `storage` as a process of its own would make it: with a
/// store of its own over that storage.
async fn manager_over(
    storage: &DynStorage,
    clock: &Arc<ManualClock>,
    config: LeaseConfig,
) -> (Arc<LeaseManager>, Arc<TestRevoker>) {
    manager_in(&store_over(storage).await, clock, config)
}

async fn fixture_with(config: LeaseConfig) -> Fixture {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let store = store_over(&storage).await;
    let (manager, revoker) = manager_in(&store, &clock, config);
    Fixture {
        clock,
        storage,
        store,
        revoker,
        manager,
    }
}

async fn fixture() -> Fixture {
    fixture_with(config()).await
}

impl Fixture {
    async fn issue(&self, path: &str, ttl: Duration, max_ttl: Duration) -> Lease {
        self.manager
            .issue(
                path,
                "test",
                ttl,
                max_ttl,
                true,
                format!("role-for-{path}").into_bytes(),
            )
            .await
            .unwrap()
    }
}

fn lease_err(e: Error) -> LeaseError {
    match e {
        Error::Lease(l) => l,
        other => panic!("expected a lease error, got {other:?}"),
    }
}

fn drain(rx: &mut broadcast::Receiver<LeaseEvent>) -> Vec<LeaseEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

async fn next_event(rx: &mut broadcast::Receiver<LeaseEvent>) -> LeaseEvent {
    // A safety net against a hung test, not a way of letting time pass: the
    // clock the manager reads is the ManualClock.
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event arrives")
        .expect("channel open")
}

/// The lease records in `storage` (raw, sealed), without the store's own
/// records (root key, keyring).
async fn lease_records(storage: &MemoryStorage) -> std::collections::BTreeMap<String, Vec<u8>> {
    storage
        .snapshot()
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("lease"))
        .collect()
}

async fn lease_keys(storage: &DynStorage) -> Vec<String> {
    let mut keys = storage.list("lease").await.unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn issue_lookup_list_renew_revoke() {
    let f = fixture().await;
    let mut rx = f.manager.subscribe();
    let a = f.issue("database/creds/readonly", 10 * MIN, 60 * MIN).await;
    let b = f.issue("database/creds/admin", 10 * MIN, 60 * MIN).await;
    let c = f.issue("pki/issue/web", 10 * MIN, 60 * MIN).await;
    assert_ne!(a.id(), b.id());
    assert_eq!(a.path(), "database/creds/readonly");
    assert_eq!(a.issued_at(), START);
    assert_eq!(a.expires_at(), START + 10 * MIN);
    assert_eq!(a.max_expires_at(), START + 60 * MIN);
    assert_eq!(a.state(), &LeaseState::Active);
    assert_eq!(f.manager.lookup(a.id()).await.unwrap(), a);
    assert_eq!(f.manager.stats().live_leases, 3);

    let mut under_db = f.manager.list("database/creds").await.unwrap();
    under_db.sort();
    let mut want = vec![a.id(), b.id()];
    want.sort();
    assert_eq!(under_db, want);
    assert_eq!(f.manager.list("").await.unwrap().len(), 3);
    assert!(f.manager.list("database/cred").await.unwrap().is_empty());

    f.clock.advance(5 * MIN);
    let renewed = f.manager.renew(a.id(), 20 * MIN).await.unwrap();
    assert_eq!(renewed.expires_at(), START + 25 * MIN);
    assert_eq!(
        f.manager.lookup(a.id()).await.unwrap().expires_at(),
        START + 25 * MIN
    );
    assert_eq!(
        f.revoker.renewed.lock().unwrap().as_slice(),
        &[(a.id(), START + 25 * MIN)]
    );

    let revoked = f.manager.revoke(a.id()).await.unwrap();
    assert_eq!(revoked.state(), &LeaseState::Revoked);
    assert_eq!(
        f.revoker.revoked.lock().unwrap().as_slice(),
        &[(a.id(), b"role-for-database/creds/readonly".to_vec())]
    );
    let err = lease_err(f.manager.lookup(a.id()).await.unwrap_err());
    assert!(matches!(err, LeaseError::NotFound { id } if id == a.id()));
    assert!(matches!(
        lease_err(f.manager.revoke(a.id()).await.unwrap_err()),
        LeaseError::NotFound { .. }
    ));
    assert_eq!(f.manager.stats().live_leases, 2);
    assert_eq!(f.manager.list("").await.unwrap().len(), 2);

    let events = drain(&mut rx);
    assert!(matches!(&events[0], LeaseEvent::Issued { id, .. } if *id == a.id()));
    assert!(matches!(&events[1], LeaseEvent::Issued { id, .. } if *id == b.id()));
    assert!(matches!(&events[2], LeaseEvent::Issued { id, .. } if *id == c.id()));
    assert!(
        matches!(&events[3], LeaseEvent::Renewed { id, expires_at, capped: false, .. } if *id == a.id() && *expires_at == START + 25 * MIN)
    );
    assert!(matches!(&events[4], LeaseEvent::Revoked { id, forced: false, .. } if *id == a.id()));
    assert_eq!(events.len(), 5);
}

#[tokio::test]
async fn renewal_at_the_max_ttl_boundary_cannot_make_a_lease_immortal() {
    let f = fixture().await;
    let mut rx = f.manager.subscribe();
    let lease = f
        .issue(
            "database/creds/app",
            Duration::from_secs(60),
            Duration::from_secs(120),
        )
        .await;
    let hard_end = START + Duration::from_secs(120);

    f.clock.set(START + Duration::from_secs(50));
    let r1 = f
        .manager
        .renew(lease.id(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(r1.expires_at(), START + Duration::from_secs(110));
    f.clock.set(START + Duration::from_secs(100));
    let r2 = f
        .manager
        .renew(lease.id(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(r2.expires_at(), hard_end);
    f.clock.set(START + Duration::from_millis(119_500));
    let renewed = f
        .manager
        .renew(lease.id(), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(renewed.expires_at(), hard_end, "capped at issue + max ttl");
    // Again, 1 ms before the end: still capped, never moved forward.
    f.clock.set(hard_end - Duration::from_millis(1));
    let again = f
        .manager
        .renew(lease.id(), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(again.expires_at(), hard_end);
    assert_eq!(
        f.revoker.renewed.lock().unwrap().last(),
        Some(&(lease.id(), hard_end))
    );
    let capped: Vec<bool> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            LeaseEvent::Renewed { capped, .. } => Some(capped),
            _ => None,
        })
        .collect();
    assert_eq!(capped, [false, true, true, true]);

    // At the end, renewal is refused and expiry revokes it.
    f.clock.set(hard_end);
    let err = lease_err(
        f.manager
            .renew(lease.id(), Duration::from_secs(3600))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, LeaseError::Expired { expired_at, .. } if expired_at == hard_end),
        "{err}"
    );
    let report = f.manager.run_due().await.unwrap();
    assert_eq!(report.revoked, 1);
    assert_eq!(f.revoker.revoked_ids(), vec![lease.id()]);
    assert!(
        lease_keys(&f.storage).await.is_empty(),
        "nothing left in storage"
    );
}

#[tokio::test]
async fn renew_refusals_are_typed() {
    let f = fixture().await;
    let fixed = f
        .manager
        .issue("db/creds/fixed", "test", MIN, 10 * MIN, false, Vec::new())
        .await
        .unwrap();
    assert!(matches!(
        lease_err(f.manager.renew(fixed.id(), MIN).await.unwrap_err()),
        LeaseError::NotRenewable { .. }
    ));
    let lease = f.issue("db/creds/x", MIN, 10 * MIN).await;
    assert!(matches!(
        lease_err(
            f.manager
                .renew(lease.id(), Duration::ZERO)
                .await
                .unwrap_err()
        ),
        LeaseError::InvalidTtl { .. }
    ));
    // The engine refusing the renewal leaves the lease as it was.
    f.revoker.fail_renew.store(true, Ordering::SeqCst);
    assert!(f.manager.renew(lease.id(), 5 * MIN).await.is_err());
    assert_eq!(f.manager.lookup(lease.id()).await.unwrap(), lease);
    f.revoker.fail_renew.store(false, Ordering::SeqCst);
    // Expired but not yet processed: refused as expired.
    f.clock.advance(MIN);
    let err = lease_err(f.manager.renew(lease.id(), MIN).await.unwrap_err());
    assert!(matches!(err, LeaseError::Expired { .. }), "{err}");
    assert!(err.to_string().contains("expired at"), "{err}");
    // Unknown ids, bad ids, bad input to issue.
    let unknown = LeaseId::generate().unwrap();
    assert!(matches!(
        lease_err(f.manager.renew(unknown, MIN).await.unwrap_err()),
        LeaseError::NotFound { .. }
    ));
    assert!(matches!(
        f.manager
            .issue("Bad/Path", "test", MIN, MIN, true, Vec::new())
            .await,
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        lease_err(
            f.manager
                .issue("a/b", "nobody", MIN, MIN, true, Vec::new())
                .await
                .unwrap_err()
        ),
        LeaseError::NoRevoker { .. }
    ));
    assert!(matches!(
        lease_err(
            f.manager
                .issue("a/b", "test", Duration::ZERO, MIN, true, Vec::new())
                .await
                .unwrap_err()
        ),
        LeaseError::InvalidTtl { .. }
    ));
    // A TTL above the max TTL is cut to it.
    let cut = f.issue("a/b", 10 * MIN, MIN).await;
    assert_eq!(cut.expires_at(), f.clock.now() + MIN);
}

#[tokio::test]
async fn expiry_revokes_when_the_clock_moves() {
    let f = fixture().await;
    let short = f.issue("db/creds/a", MIN, 60 * MIN).await;
    let mid = f.issue("db/creds/b", 5 * MIN, 60 * MIN).await;
    let long = f.issue("db/creds/c", 30 * MIN, 60 * MIN).await;
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 0);
    f.clock.advance(MIN - Duration::from_millis(1));
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 0);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 1);
    assert_eq!(f.revoker.revoked_ids(), vec![short.id()]);
    f.clock.advance(10 * MIN);
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 1);
    assert_eq!(f.revoker.revoked_ids(), vec![short.id(), mid.id()]);
    assert_eq!(
        f.manager.lookup(long.id()).await.unwrap().state(),
        &LeaseState::Active
    );
    f.clock.advance(20 * MIN);
    assert_eq!(f.manager.tick().await.unwrap().revoked, 1);
    assert_eq!(f.manager.stats().live_leases, 0);
    assert!(lease_keys(&f.storage).await.is_empty());
}

#[tokio::test]
async fn background_task_revokes_when_the_clock_is_advanced() {
    let f = fixture().await;
    let mut rx = f.manager.subscribe();
    let task = f.manager.clone().spawn();
    let long = f.issue("db/creds/long", 60 * MIN, 120 * MIN).await;
    assert!(matches!(
        next_event(&mut rx).await,
        LeaseEvent::Issued { .. }
    ));
    // Let the task go to sleep on the long lease's deadline.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // An earlier lease wakes it through the notification.
    let short = f
        .issue("db/creds/short", Duration::from_secs(10), MIN)
        .await;
    assert!(matches!(
        next_event(&mut rx).await,
        LeaseEvent::Issued { .. }
    ));
    f.clock.advance(Duration::from_secs(8));
    match next_event(&mut rx).await {
        LeaseEvent::ExpiringSoon { id, expires_at, .. } => {
            assert_eq!(id, short.id());
            assert_eq!(expires_at, START + Duration::from_secs(10));
        }
        other => panic!("{other:?}"),
    }
    f.clock.advance(Duration::from_secs(2));
    match next_event(&mut rx).await {
        LeaseEvent::Revoked { id, .. } => assert_eq!(id, short.id()),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.revoker.revoked_ids(), vec![short.id()]);

    // Dropping the handle stops the task: nothing is revoked any more.
    drop(task);
    f.clock.advance(3 * 60 * MIN);
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        f.manager.lookup(long.id()).await.unwrap().state(),
        &LeaseState::Active
    );
    assert_eq!(f.revoker.revoked_ids(), vec![short.id()]);
}

#[tokio::test]
async fn background_task_retries_and_gives_up() {
    let f = fixture().await;
    let mut rx = f.manager.subscribe();
    let _task = f.manager.clone().spawn();
    let lease = f.issue("db/creds/x", MIN, MIN).await;
    f.revoker.fail_for(lease.id());
    f.clock.advance(MIN);
    assert!(matches!(
        next_event(&mut rx).await,
        LeaseEvent::Issued { .. }
    ));
    // Each retry happens once the clock reaches it: 10 s, then 20 s later.
    for step in [10, 20] {
        loop {
            let l = f.manager.lookup(lease.id()).await.unwrap();
            if let LeaseState::Revoking { next_try, .. } = l.state()
                && *next_try > f.clock.now()
            {
                assert_eq!(*next_try, f.clock.now() + Duration::from_secs(step));
                break;
            }
            tokio::task::yield_now().await;
        }
        f.clock.advance(Duration::from_secs(step));
    }
    match next_event(&mut rx).await {
        LeaseEvent::Irrevocable {
            id,
            attempts,
            reason,
            ..
        } => {
            assert_eq!(id, lease.id());
            assert_eq!(attempts, 3);
            assert!(reason.contains("engine unreachable"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn backoff_then_irrevocable_then_force_revoke() {
    let f = fixture().await;
    let mut rx = f.manager.subscribe();
    let lease = f.issue("db/creds/x", MIN, 10 * MIN).await;
    f.revoker.fail_for(lease.id());
    f.clock.advance(MIN);
    let r = f.manager.run_due().await.unwrap();
    assert_eq!((r.revoked, r.deferred), (0, 1));
    let after1 = f.clock.now() + Duration::from_secs(10);
    assert_eq!(
        f.manager.lookup(lease.id()).await.unwrap().state(),
        &LeaseState::Revoking {
            attempts: 1,
            next_try: after1
        }
    );
    // Not retried before its time.
    f.clock.advance(Duration::from_secs(9));
    assert_eq!(f.manager.run_due().await.unwrap(), Default::default());
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(f.manager.run_due().await.unwrap().deferred, 1);
    let after2 = f.clock.now() + Duration::from_secs(20);
    assert_eq!(
        f.manager.lookup(lease.id()).await.unwrap().state(),
        &LeaseState::Revoking {
            attempts: 2,
            next_try: after2
        }
    );
    f.clock.advance(Duration::from_secs(20));
    assert_eq!(f.manager.run_due().await.unwrap().irrevocable, 1);
    assert_eq!(
        f.manager.lookup(lease.id()).await.unwrap().state(),
        &LeaseState::Irrevocable { attempts: 3 }
    );
    // Irrevocable leases are not retried by the schedule and still count.
    f.clock.advance(60 * MIN);
    assert_eq!(f.manager.run_due().await.unwrap(), Default::default());
    assert_eq!(f.manager.stats().live_leases, 1);
    assert_eq!(f.manager.stats().in_memory, 0);
    // A plain revoke still fails, with a typed error.
    let err = lease_err(f.manager.revoke(lease.id()).await.unwrap_err());
    assert!(
        matches!(err, LeaseError::Irrevocable { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("force_revoke"), "{err}");
    // Force removes it.
    let forced = f.manager.force_revoke(lease.id()).await.unwrap();
    assert_eq!(forced.state(), &LeaseState::Revoked);
    assert!(f.manager.lookup(lease.id()).await.is_err());
    assert_eq!(f.manager.stats().live_leases, 0);
    assert!(lease_keys(&f.storage).await.is_empty());

    let events = drain(&mut rx);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            LeaseEvent::Issued { .. } => "issued",
            LeaseEvent::ExpiringSoon { .. } => "soon",
            LeaseEvent::Irrevocable { .. } => "irrevocable",
            LeaseEvent::Revoked { forced: true, .. } => "forced",
            other => panic!("{other:?}"),
        })
        .collect();
    // No expiring-soon event: the clock jumped straight past the expiry.
    assert_eq!(kinds, ["issued", "irrevocable", "irrevocable", "forced"]);
}

#[tokio::test]
async fn an_explicit_revoke_that_fails_is_retried_by_the_schedule() {
    let f = fixture().await;
    let lease = f.issue("db/creds/x", 60 * MIN, 60 * MIN).await;
    f.revoker.fail_for(lease.id());
    let err = lease_err(f.manager.revoke(lease.id()).await.unwrap_err());
    assert!(
        matches!(err, LeaseError::RevocationDeferred { attempts: 1, .. }),
        "{err}"
    );
    f.revoker.heal();
    f.clock.advance(Duration::from_secs(10));
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 1);
    assert_eq!(f.revoker.revoked_ids(), vec![lease.id()]);
}

#[tokio::test]
async fn one_failing_lease_does_not_block_the_others() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(f.issue(&format!("db/creds/r{i}"), MIN, MIN).await.id());
    }
    let bad = ids[17];
    f.revoker.fail_for(bad);
    f.clock.advance(MIN);
    let report = f.manager.run_due().await.unwrap();
    assert_eq!(report.revoked, 49);
    assert_eq!(report.deferred, 1);
    let revoked: HashSet<_> = f.revoker.revoked_ids().into_iter().collect();
    assert_eq!(revoked.len(), 49);
    assert!(!revoked.contains(&bad));
    assert!(matches!(
        f.manager.lookup(bad).await.unwrap().state(),
        LeaseState::Revoking { attempts: 1, .. }
    ));
    // Leases issued later still expire on time while it keeps failing.
    let later = f.issue("db/creds/later", MIN, MIN).await;
    f.clock.advance(MIN);
    let report = f.manager.run_due().await.unwrap();
    assert_eq!((report.revoked, report.deferred), (1, 1));
    assert!(f.revoker.revoked_ids().contains(&later.id()));
}

#[tokio::test]
async fn quotas_refuse_new_leases_with_a_clear_error() {
    let mut c = config();
    c.max_leases = Some(5);
    c.prefix_quotas = vec![PrefixQuota::new("db/creds", 2)];
    let f = fixture_with(c).await;
    let first = f.issue("db/creds/a", MIN, MIN).await;
    f.issue("db/creds/b", MIN, MIN).await;
    let err = lease_err(
        f.manager
            .issue("db/creds/a", "test", MIN, MIN, true, Vec::new())
            .await
            .unwrap_err(),
    );
    match &err {
        LeaseError::QuotaExceeded {
            scope,
            limit,
            count,
        } => {
            assert_eq!(scope, &QuotaScope::Prefix("db/creds".into()));
            assert_eq!((*limit, *count), (2, 2));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("db/creds") && msg.contains('2'), "{msg}");
    // Whole segments: db/credsx is not under db/creds.
    f.issue("db/credsx", MIN, MIN).await;
    f.issue("pki/a", MIN, MIN).await;
    f.issue("pki/b", MIN, MIN).await;
    let err = lease_err(
        f.manager
            .issue("pki/c", "test", MIN, MIN, true, Vec::new())
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(
            err,
            LeaseError::QuotaExceeded {
                scope: QuotaScope::Total,
                limit: 5,
                count: 5
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("store-wide"), "{err}");
    // Revoking frees room.
    f.manager.revoke(first.id()).await.unwrap();
    f.issue("db/creds/c", MIN, MIN).await;
    assert_eq!(f.manager.stats().live_leases, 5);

    // Counts survive a restart.
    let mut c = config();
    c.max_leases = Some(5);
    let (again, _) = manager_over(&f.storage, &f.clock, c).await;
    assert_eq!(again.restore().await.unwrap().live_leases, 5);
    assert!(
        again
            .issue("x/y", "test", MIN, MIN, true, Vec::new())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn revoke_prefix_takes_whole_segments_and_reports_failures() {
    let f = fixture().await;
    let a = f.issue("db/creds/a", 10 * MIN, 10 * MIN).await;
    let b = f.issue("db/creds/b/deep", 10 * MIN, 10 * MIN).await;
    let c = f.issue("db/creds", 10 * MIN, 10 * MIN).await;
    let x = f.issue("db/credsx", 10 * MIN, 10 * MIN).await;
    let p = f.issue("pki/a", 10 * MIN, 10 * MIN).await;
    f.revoker.fail_for(b.id());
    let out = f.manager.revoke_prefix("db/creds").await.unwrap();
    let got: HashSet<_> = out.revoked.iter().copied().collect();
    assert_eq!(got, HashSet::from([a.id(), c.id()]));
    assert_eq!(out.pending, vec![b.id()]);
    let mut left = f.manager.list("").await.unwrap();
    left.sort();
    let mut want = vec![b.id(), x.id(), p.id()];
    want.sort();
    assert_eq!(left, want);
    assert!(matches!(
        f.manager.revoke_prefix("Bad Prefix").await,
        Err(Error::InvalidPath { .. })
    ));
}

#[tokio::test]
async fn events_arrive_in_order_without_revocation_data() {
    let f = fixture().await;
    let mut rx = f.manager.subscribe();
    let lease = f.issue("db/creds/app", 40 * MIN, 120 * MIN).await;
    f.clock.advance(29 * MIN);
    assert_eq!(f.manager.run_due().await.unwrap().expiring_soon, 0);
    f.clock.advance(MIN); // 75 % of 40 minutes
    assert_eq!(f.manager.run_due().await.unwrap().expiring_soon, 1);
    // Sent once.
    f.clock.advance(MIN);
    assert_eq!(f.manager.run_due().await.unwrap().expiring_soon, 0);
    // Renewal re-arms it at 75 % of the new span: 40 min from t=31 -> t=61.
    f.manager.renew(lease.id(), 40 * MIN).await.unwrap();
    f.clock.advance(30 * MIN);
    assert_eq!(f.manager.run_due().await.unwrap().expiring_soon, 1);
    f.clock.advance(10 * MIN);
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 1);

    let events = drain(&mut rx);
    let names: Vec<&str> = events
        .iter()
        .map(|e| match e {
            LeaseEvent::Issued { .. } => "issued",
            LeaseEvent::ExpiringSoon { .. } => "soon",
            LeaseEvent::Renewed { .. } => "renewed",
            LeaseEvent::Revoked { .. } => "revoked",
            LeaseEvent::Irrevocable { .. } => "irrevocable",
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["issued", "soon", "renewed", "soon", "revoked"]);
    for e in &events {
        let text = format!("{e:?}");
        assert!(!text.contains("role-for"), "revocation data leaked: {text}");
        assert!(text.contains(&lease.id().to_string()));
    }
}

#[tokio::test]
async fn restart_with_10_000_live_leases_loads_only_due_soon_ones() {
    let mut c = config();
    c.expiring_soon_fraction = None;
    c.restore_horizon = 10 * MIN;
    let f = fixture_with(c.clone()).await;
    let n: u64 = 10_000;
    for i in 1..=n {
        // One lease expiring every minute, for a week.
        f.manager
            .issue(
                &format!("db/creds/r{}", i % 7),
                "test",
                i as u32 * MIN,
                20_000 * MIN,
                true,
                Vec::new(),
            )
            .await
            .unwrap();
    }
    assert_eq!(f.manager.stats().live_leases, n);
    drop(f.manager);

    // A fresh manager over the same storage.
    let (manager, revoker) = manager_over(&f.storage, &f.clock, c).await;
    let stats = manager.restore().await.unwrap();
    assert_eq!(stats.live_leases, n);
    assert_eq!(
        stats.loaded, 10,
        "only the leases due within the 10 minute horizon"
    );
    assert_eq!(manager.stats().in_memory, 10);

    // Move through the week an hour at a time: every lease is revoked when
    // its time comes and memory never holds more than the next stretch.
    let mut max_in_memory = 0;
    let mut revoked = 0;
    let end = START + n as u32 * MIN;
    while f.clock.now() < end {
        f.clock.advance(60 * MIN);
        let report = manager.run_due().await.unwrap();
        revoked += report.revoked;
        let now = f.clock.now();
        let expected_revoked = ((now.as_secs() - START.as_secs()) / 60).min(n) as usize;
        assert_eq!(revoked, expected_revoked, "at {now}");
        max_in_memory = max_in_memory.max(manager.stats().in_memory);
    }
    assert_eq!(revoked, n as usize);
    assert!(
        max_in_memory <= 10,
        "in memory at most the horizon's worth, saw {max_in_memory}"
    );
    assert_eq!(
        revoker.revoked_ids().iter().collect::<HashSet<_>>().len(),
        n as usize
    );
    assert_eq!(manager.stats().live_leases, 0);
    assert!(lease_keys(&f.storage).await.is_empty());
}

#[tokio::test]
async fn pending_revocations_survive_a_restart() {
    let f = fixture().await;
    let lease = f.issue("db/creds/x", MIN, MIN).await;
    let other = f.issue("db/creds/y", 60 * MIN, 60 * MIN).await;
    f.revoker.fail_for(lease.id());
    f.clock.advance(MIN);
    assert_eq!(f.manager.run_due().await.unwrap().deferred, 1);
    drop(f.manager);

    let (manager, revoker) = manager_over(&f.storage, &f.clock, config()).await;
    manager.restore().await.unwrap();
    assert!(matches!(
        manager.lookup(lease.id()).await.unwrap().state(),
        LeaseState::Revoking { attempts: 1, .. }
    ));
    let mut rx = manager.subscribe();
    let _task = manager.clone().spawn();
    f.clock.advance(Duration::from_secs(10));
    match next_event(&mut rx).await {
        LeaseEvent::Revoked { id, .. } => assert_eq!(id, lease.id()),
        other => panic!("{other:?}"),
    }
    assert_eq!(revoker.revoked_ids(), vec![lease.id()]);
    assert_eq!(
        manager.lookup(other.id()).await.unwrap().state(),
        &LeaseState::Active
    );
}

#[tokio::test]
async fn a_failed_write_leaves_no_half_written_lease() {
    let clock = Arc::new(ManualClock::new(START));
    let inner = MemoryStorage::new();
    let faulty = FaultyStorage::new(Arc::new(inner.clone()));
    let (manager, revoker) =
        manager_over(&(Arc::new(faulty.clone()) as DynStorage), &clock, config()).await;
    manager.restore().await.unwrap();
    let mut rx = manager.subscribe();

    // Issue fails: nothing stored, nothing counted, no event.
    faulty.fail_from_write(1);
    let err = manager
        .issue("db/creds/x", "test", MIN, MIN, true, b"data".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert!(lease_records(&inner).await.is_empty());
    assert_eq!(manager.stats().live_leases, 0);
    assert_eq!(manager.stats().in_memory, 0);
    assert!(drain(&mut rx).is_empty());

    faulty.heal();
    let lease = manager
        .issue("db/creds/x", "test", MIN, 10 * MIN, true, b"data".to_vec())
        .await
        .unwrap();
    let stored = lease_records(&inner).await;
    assert_eq!(stored.len(), 4, "{:?}", stored.keys());
    let before = stored.clone();

    // Renewal fails: the old record and index stay as they were.
    faulty.fail_from_write(1);
    assert!(manager.renew(lease.id(), 5 * MIN).await.is_err());
    assert_eq!(lease_records(&inner).await, before);
    assert_eq!(manager.lookup(lease.id()).await.unwrap(), lease);

    // The claim cannot be written: the engine is not called and nothing
    // changes.
    assert!(manager.revoke(lease.id()).await.is_err());
    assert_eq!(lease_records(&inner).await, before);
    assert!(revoker.revoked_ids().is_empty());

    // The claim is written and the engine revokes, but recording that
    // fails: the lease stays, claimed, and a later revocation (idempotent
    // engine) completes it.
    faulty.fail_from_write(2);
    assert!(manager.revoke(lease.id()).await.is_err());
    let claimed = manager.lookup(lease.id()).await.unwrap();
    assert_eq!(claimed.claim().unwrap().owner(), manager.member_id());
    assert!(matches!(claimed.state(), LeaseState::Revoking { .. }));
    faulty.heal();
    manager.revoke(lease.id()).await.unwrap();
    assert!(lease_records(&inner).await.is_empty());
    assert_eq!(revoker.revoked_ids(), vec![lease.id(), lease.id()]);

    // Expiry processing that cannot write retries later instead of losing
    // the lease.
    let l2 = manager
        .issue("db/creds/y", "test", MIN, MIN, true, Vec::new())
        .await
        .unwrap();
    clock.advance(MIN);
    faulty.fail_from_write(1);
    let report = manager.run_due().await.unwrap();
    assert_eq!(report.errors, 1);
    assert!(manager.lookup(l2.id()).await.is_ok());
    faulty.heal();
    clock.advance(Duration::from_secs(10));
    assert_eq!(manager.run_due().await.unwrap().revoked, 1);
    assert!(lease_records(&inner).await.is_empty());
}

#[tokio::test]
async fn leases_beyond_the_horizon_are_loaded_as_it_moves() {
    let mut c = config();
    c.restore_horizon = 10 * MIN;
    let f = fixture_with(c).await;
    let far = f.issue("db/creds/far", 60 * MIN, 60 * MIN).await;
    // 75 % of 60 minutes is beyond the 10 minute horizon: storage only.
    assert_eq!(f.manager.stats().in_memory, 0);
    let near = f.issue("db/creds/near", 4 * MIN, 60 * MIN).await;
    assert_eq!(f.manager.stats().in_memory, 1);
    f.clock.advance(4 * MIN);
    assert_eq!(f.manager.run_due().await.unwrap().revoked, 1);
    assert_eq!(f.revoker.revoked_ids(), vec![near.id()]);
    let mut rx = f.manager.subscribe();
    for _ in 0..14 {
        f.clock.advance(5 * MIN);
        f.manager.run_due().await.unwrap();
    }
    let events = drain(&mut rx);
    assert!(matches!(&events[0], LeaseEvent::ExpiringSoon { id, .. } if *id == far.id()));
    assert!(matches!(&events[1], LeaseEvent::Revoked { id, .. } if *id == far.id()));
    assert_eq!(f.revoker.revoked_ids(), vec![near.id(), far.id()]);
    assert!(f.clock.now() >= START + 60 * MIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issue_renew_revoke_and_expiry_keep_counts_consistent() {
    let f = fixture().await;
    let task = f.manager.clone().spawn();
    let mut handles = Vec::new();
    for t in 0..4u32 {
        let m = f.manager.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..100u32 {
                let ttl = Duration::from_secs(u64::from(10 + (i * 7 + t) % 50));
                let l = m
                    .issue(
                        &format!("db/creds/t{t}"),
                        "test",
                        ttl,
                        10 * ttl,
                        true,
                        Vec::new(),
                    )
                    .await
                    .unwrap();
                match i % 4 {
                    0 => {
                        // May already be expired and revoked by the task.
                        let _ = m.revoke(l.id()).await;
                    }
                    1 => {
                        let _ = m.renew(l.id(), 2 * ttl).await;
                    }
                    _ => {}
                }
            }
        }));
    }
    let clock = f.clock.clone();
    let ticker = tokio::spawn(async move {
        for _ in 0..50 {
            clock.advance(Duration::from_secs(1));
            tokio::task::yield_now().await;
        }
    });
    for h in handles {
        h.await.unwrap();
    }
    ticker.await.unwrap();
    // Stop the task: whatever it was processing goes back into the index.
    task.stop().await;
    // Every lease expires within 1000 s of now; drive them all out.
    f.clock.advance(Duration::from_secs(2000));
    f.manager.run_due().await.unwrap();
    assert_eq!(f.manager.stats().live_leases, 0);
    assert!(f.manager.list("").await.unwrap().is_empty());
    assert!(
        lease_keys(&f.storage).await.is_empty(),
        "{:?}",
        lease_keys(&f.storage).await
    );
    let revoked = f.revoker.revoked_ids();
    let distinct: HashSet<_> = revoked.iter().collect();
    assert_eq!(distinct.len(), 400, "every lease revoked");
}

#[tokio::test]
async fn lease_events_are_audited_including_irrevocable() {
    use strongroom::audit::{AuditLog, MemorySink, Operation, Outcome};
    let f = fixture().await;
    let sink = Arc::new(MemorySink::new());
    let audit = Arc::new(
        AuditLog::new(
            strongroom::SecretBytes::new(vec![5; 32]),
            vec![sink.clone()],
            f.clock.clone(),
        )
        .unwrap(),
    );
    let _task = f.manager.audit_events(audit.clone());
    let ok = f.issue("db/creds/ok", MIN, 10 * MIN).await;
    let bad = f.issue("db/creds/bad", MIN, 10 * MIN).await;
    f.revoker.fail_for(bad.id());
    f.manager.revoke(ok.id()).await.unwrap();
    for step in [MIN, Duration::from_secs(10), Duration::from_secs(20)] {
        f.clock.advance(step);
        f.manager.run_due().await.unwrap();
    }
    // Wait (without sleeping) for the forwarding task to write 4 records.
    let records = loop {
        let r = sink.records().unwrap();
        if r.len() >= 4 {
            break r;
        }
        tokio::task::yield_now().await;
    };
    let summary: Vec<(Operation, Option<String>, Outcome)> = records
        .iter()
        .map(|r| {
            (
                r.event.operation,
                r.event.lease_id.clone(),
                r.event.outcome.clone(),
            )
        })
        .collect();
    let ok_id = Some(ok.id().to_string());
    let bad_id = Some(bad.id().to_string());
    assert_eq!(
        summary,
        vec![
            (Operation::LeaseIssue, ok_id.clone(), Outcome::Allowed),
            (Operation::LeaseIssue, bad_id.clone(), Outcome::Allowed),
            (Operation::LeaseRevoke, ok_id, Outcome::Allowed),
            (
                Operation::LeaseRevoke,
                bad_id,
                Outcome::Error {
                    kind: "irrevocable".into()
                }
            ),
        ]
    );
    // revocation data never reaches the audit trail
    for r in &records {
        let line = r.to_json_line().unwrap();
        assert!(!line.contains("role-for-"), "{line}");
    }
}

/// Stores written before the packed index kept one `lease-exp/<due>/<id>`
/// key per lease. The first restore converts them, in atomic batches, and a
/// crash in the middle of the conversion leaves a store the next restore
/// converts correctly: every lease is still revoked exactly once.
#[tokio::test]
async fn a_legacy_index_is_converted_on_restore_even_after_a_crash_midway() {
    let mut c = config();
    c.expiring_soon_fraction = None;
    c.restore_horizon = 10 * MIN;
    let f = fixture_with(c.clone()).await;
    let n: u32 = 5_000; // more than one conversion batch
    let mut ids = Vec::new();
    for i in 1..=n {
        let lease = f
            .manager
            .issue(
                "db/creds/app",
                "test",
                i * MIN,
                20_000 * MIN,
                true,
                Vec::new(),
            )
            .await
            .unwrap();
        ids.push(lease.id());
    }
    drop(f.manager);

    // Rewrite the index in the legacy layout, sealed the way the library
    // stores every lease record (through the store's barrier).
    let barrier = f.store.barrier();
    let segments = f.storage.list("lease-due/").await.unwrap();
    assert!(
        !segments.is_empty() && segments.len() < 5_000,
        "packed: {}",
        segments.len()
    );
    let mut ops: Vec<BatchOp> = segments.into_iter().map(BatchOp::delete).collect();
    for (i, id) in ids.iter().enumerate() {
        let due = START + (i as u32 + 1) * MIN;
        ops.push(BatchOp::put(
            format!("lease-exp/{:016x}/{id}", due.as_millis()),
            Vec::new(),
        ));
    }
    barrier.batch(ops).await.unwrap();

    // A restore that crashes after the first conversion batch.
    let faulty = FaultyStorage::new(f.storage.clone());
    let crashed_store = store_over(&(Arc::new(faulty.clone()) as DynStorage)).await;
    // A freshly unsealed store reserves encryptions (one keyring write) on
    // its first seal: do that now, so the writes counted below are the
    // conversion's.
    crashed_store
        .seal_value(
            b"warm-up",
            &strongroom::seal::SealContext::new("test/warm-up", 1),
        )
        .await
        .unwrap();
    faulty.fail_from_write(2);
    let (crashed, _) = manager_in(&crashed_store, &f.clock, c.clone());
    let err = crashed.restore().await.unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    drop(crashed);
    let left = f.storage.list("lease-exp/").await.unwrap().len();
    assert!(
        left > 0 && left < 5_000,
        "half converted: {left} legacy keys left"
    );

    // The next restore finishes the conversion.
    let (manager, revoker) = manager_over(&f.storage, &f.clock, c).await;
    let stats = manager.restore().await.unwrap();
    assert_eq!(stats.live_leases, u64::from(n));
    assert_eq!(stats.loaded, 10);
    assert!(f.storage.list("lease-exp/").await.unwrap().is_empty());
    let end = START + (n + 1) * MIN;
    while f.clock.now() < end {
        f.clock.advance(600 * MIN);
        manager.run_due().await.unwrap();
    }
    let revoked = revoker.revoked_ids();
    assert_eq!(revoked.len(), n as usize, "each lease revoked exactly once");
    assert_eq!(revoked.iter().collect::<HashSet<_>>().len(), n as usize);
    assert!(lease_keys(&f.storage).await.is_empty());
}

// ---------------------------------------------------------------------------
// Several managers over one store: exactly-once expiry, claims that pass to
// the others when a member dies, and a restarted member taking its own
// claims back. A "dead" member is one whose task was aborted in the middle
// of a revocation (its revoker never returns); time moves only through the
// ManualClock.
// ---------------------------------------------------------------------------

/// The revoker of one member: completed revocations go to a log shared by
/// all members. From call `hang_from` on (1-based), a call announces itself
/// and waits on `gate` (forever unless opened).
#[derive(Debug, Default)]
struct MemberRevoker {
    log: Arc<Mutex<Vec<LeaseId>>>,
    calls: std::sync::atomic::AtomicUsize,
    hang_from: Option<usize>,
    started: Mutex<Vec<LeaseId>>,
    entered: tokio::sync::Notify,
    gate: tokio::sync::Notify,
}

impl MemberRevoker {
    fn new(log: &Arc<Mutex<Vec<LeaseId>>>, hang_from: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            log: log.clone(),
            hang_from,
            ..Self::default()
        })
    }
    fn completed_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    async fn wait_entered(&self) {
        tokio::time::timeout(Duration::from_secs(20), self.entered.notified())
            .await
            .expect("the revoker was entered");
    }
}

#[async_trait]
impl Revoker for MemberRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        let n = self.started.lock().unwrap().len() + 1;
        self.started.lock().unwrap().push(lease.id());
        if self.hang_from.is_some_and(|h| n >= h) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
        // Let the other members interleave.
        tokio::task::yield_now().await;
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push(lease.id());
        Ok(())
    }
}

/// Moves the clock by `by` (more than a third of the 30 s claim, less than
/// all of it) and waits (without sleeping) until the live holder of `id`
/// has renewed its claim, as it would in real time.
async fn advance_while_held(clock: &ManualClock, m: &LeaseManager, id: LeaseId, by: Duration) {
    clock.advance(by);
    let want = clock.now() + Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let claim = m.lookup(id).await.unwrap().claim().cloned().unwrap();
        if claim.until() == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "claim not renewed");
        tokio::task::yield_now().await;
    }
}

fn member_config(member: &str) -> LeaseConfig {
    let mut c = config();
    c.expiring_soon_fraction = None;
    c.member_id = Some(member.to_owned());
    c
}

async fn member(
    storage: &DynStorage,
    clock: &Arc<ManualClock>,
    config: LeaseConfig,
    revoker: Arc<MemberRevoker>,
) -> Arc<LeaseManager> {
    let store = store_over(storage).await;
    let m = Arc::new(store.lease_manager(clock.clone(), config).unwrap());
    m.register_revoker("test", revoker);
    m
}

/// Every id in `log` once, and exactly the ids in `issued`.
fn assert_each_revoked_once(log: &Mutex<Vec<LeaseId>>, issued: &[LeaseId]) {
    let log = log.lock().unwrap();
    let distinct: HashSet<_> = log.iter().collect();
    assert_eq!(
        log.len(),
        distinct.len(),
        "{} revocations ran twice",
        log.len() - distinct.len()
    );
    assert_eq!(distinct, issued.iter().collect::<HashSet<_>>());
}

async fn issue_many(m: &LeaseManager, n: usize, ttl: Duration) -> Vec<LeaseId> {
    let requests = (0..n)
        .map(|i| {
            strongroom::lease::LeaseRequest::new(format!("db/creds/r{}", i % 5), "test", ttl, ttl)
        })
        .collect();
    m.issue_batch(requests)
        .await
        .unwrap()
        .iter()
        .map(Lease::id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_managers_share_expiry_and_revoke_each_lease_exactly_once() {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let log = Arc::default();
    let mut managers = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..4 {
        let mut c = member_config(&format!("m{i}"));
        // Half-way events too: each must be sent by one manager only.
        c.expiring_soon_fraction = Some(0.5);
        // This test is about managers that stay alive: claims outlast any
        // starvation of a task while the test moves the clock.
        c.claim_ttl = 600 * MIN;
        c.rescan_interval = Duration::from_secs(5);
        c.event_capacity = 10_000;
        let m = member(&storage, &clock, c, MemberRevoker::new(&log, None)).await;
        receivers.push(m.subscribe());
        managers.push(m);
    }
    // Issue concurrently from every manager (one at a time and in batches),
    // so index segments and counts are contended.
    let mut issuers = Vec::new();
    for (i, m) in managers.iter().enumerate() {
        let m = m.clone();
        issuers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for round in 0..10u32 {
                let ttl = Duration::from_secs(u64::from(10 + (round * 7 + i as u32) % 90));
                ids.extend(issue_many(&m, 40, ttl).await);
                let l = m
                    .issue("db/creds/one", "test", ttl, ttl, true, Vec::new())
                    .await
                    .unwrap();
                ids.push(l.id());
            }
            ids
        }));
    }
    let mut issued = Vec::new();
    for h in issuers {
        issued.extend(h.await.unwrap());
    }
    assert_eq!(issued.len(), 4 * 410);
    let tasks: Vec<_> = managers.iter().map(|m| m.clone().spawn()).collect();
    // Move the clock through every expiry while the background tasks and
    // direct calls race each other.
    for step in 0..120 {
        clock.advance(Duration::from_secs(1));
        let m = managers[step % 4].clone();
        let direct = tokio::spawn(async move { m.run_due().await.unwrap() });
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        direct.await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !storage.list("lease/").await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "leases left");
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(tasks);
    assert_each_revoked_once(&log, &issued);
    // Only lease-count shards may be left: two managers taking a path's
    // count to zero at once, each in its own shard, leave shards that sum
    // to zero (docs/FORMAT.md); the next restore deletes them (below).
    let left = lease_keys(&storage).await;
    assert!(
        left.iter().all(|k| k.starts_with("lease-count/")),
        "lease keys left: {left:?}"
    );
    // Each event was sent by one manager, once per lease.
    let mut soon = Vec::new();
    let mut revoked = Vec::new();
    for rx in &mut receivers {
        for e in drain(rx) {
            match e {
                LeaseEvent::ExpiringSoon { id, .. } => soon.push(id),
                LeaseEvent::Revoked { id, .. } => revoked.push(id),
                _ => {}
            }
        }
    }
    assert_eq!(
        soon.len(),
        issued.len(),
        "one expiring-soon event per lease"
    );
    assert_eq!(soon.iter().collect::<HashSet<_>>().len(), issued.len());
    assert_eq!(revoked.len(), issued.len(), "one revoked event per lease");
    // The work was shared.
    let fresh = store_over(&storage)
        .await
        .lease_manager(clock.clone(), config())
        .unwrap();
    assert_eq!(fresh.restore().await.unwrap().live_leases, 0);
    let left = lease_keys(&storage).await;
    assert!(left.is_empty(), "lease keys left after a restore: {left:?}");
}

/// A member hangs in its tenth revocation and dies (its task is aborted):
/// the other member revokes what the dead one had not claimed, leaves its
/// claims alone while they last, then takes them over, revoking the lease
/// that was in flight again but not the ones the dead member had finished.
#[tokio::test]
async fn a_dead_members_claims_pass_to_the_others_when_they_lapse() {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let log = Arc::default();
    let ra = MemberRevoker::new(&log, Some(10));
    let rb = MemberRevoker::new(&log, None);
    let a = member(&storage, &clock, member_config("a"), ra.clone()).await;
    let b = member(&storage, &clock, member_config("b"), rb.clone()).await;
    // b started before the leases existed: it learns of them by rescanning.
    b.restore().await.unwrap();
    let issued = issue_many(&a, 50, MIN).await;
    clock.advance(MIN);

    let a2 = a.clone();
    let dying = tokio::spawn(async move { a2.run_due().await });
    ra.wait_entered().await;
    dying.abort();
    assert!(dying.await.unwrap_err().is_cancelled());
    drop(a);
    assert_eq!(ra.completed_calls(), 9);
    let in_flight = *ra.started.lock().unwrap().last().unwrap();

    // b revokes what a had not claimed and leaves a's live claims alone.
    b.run_due().await.unwrap();
    let left = b.list("").await.unwrap();
    assert!(left.contains(&in_flight));
    for id in &left {
        let lease = b.lookup(*id).await.unwrap();
        assert_eq!(lease.claim().expect("claimed by a").owner(), "a");
    }
    let lease = b.lookup(in_flight).await.unwrap();
    assert!(!lease.claim().unwrap().revoked());
    // A renewal cannot revive a lease being revoked.
    assert!(matches!(
        lease_err(b.renew(in_flight, MIN).await.unwrap_err()),
        LeaseError::Expired { .. }
    ));

    // Once the claims lapse, b takes everything over.
    let before = rb.completed_calls();
    clock.advance(Duration::from_secs(29));
    assert_eq!(b.run_due().await.unwrap().revoked, 0);
    assert_eq!(rb.completed_calls(), before);
    clock.advance(Duration::from_secs(1));
    let report = b.run_due().await.unwrap();
    assert_eq!(report.revoked, left.len(), "{report:?}");
    assert_eq!(
        rb.completed_calls(),
        41,
        "the nine a revoked are not revoked again"
    );
    assert_each_revoked_once(&log, &issued);
    assert!(lease_keys(&storage).await.is_empty());
    assert_eq!(b.stats().live_leases, 0);
}

/// Leases whose revocations are claimed together (one index segment) by a
/// member that dies after revoking the first and while revoking the
/// second: the survivor only deletes the first (its revocation was
/// recorded) and revokes the second, once.
#[tokio::test]
async fn a_revocation_recorded_before_a_crash_is_not_repeated() {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let log = Arc::default();
    let ra = MemberRevoker::new(&log, Some(2));
    let rb = MemberRevoker::new(&log, None);
    let a = member(&storage, &clock, member_config("a"), ra.clone()).await;
    let b = member(&storage, &clock, member_config("b"), rb.clone()).await;
    // Seventeen leases due at the same time: two share an index segment.
    let ids = issue_many(&a, 17, MIN).await;
    let mut by_shard: std::collections::HashMap<u128, Vec<LeaseId>> = Default::default();
    for id in &ids {
        by_shard.entry(id.as_u128() % 16).or_default().push(*id);
    }
    let pair: Vec<LeaseId> = by_shard
        .into_values()
        .find(|v| v.len() >= 2)
        .unwrap()
        .into_iter()
        .take(2)
        .collect();
    for id in ids.iter().filter(|id| !pair.contains(id)) {
        b.revoke(*id).await.unwrap();
    }
    clock.advance(MIN);
    let a2 = a.clone();
    let dying = tokio::spawn(async move { a2.run_due().await });
    ra.wait_entered().await;
    dying.abort();
    let _ = dying.await;
    drop(a);
    let (done, in_flight) = {
        let started = ra.started.lock().unwrap();
        (started[0], started[1])
    };
    let recorded = b.lookup(done).await.unwrap();
    assert!(recorded.claim().unwrap().revoked(), "{recorded:?}");
    assert!(
        !b.lookup(in_flight)
            .await
            .unwrap()
            .claim()
            .unwrap()
            .revoked()
    );
    let calls = rb.completed_calls();
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.run_due().await.unwrap().revoked, 2);
    assert_eq!(rb.completed_calls(), calls + 1, "only the one in flight");
    assert_each_revoked_once(&log, &ids);
    assert!(lease_keys(&storage).await.is_empty());
}

/// A member started again with the same member id takes its own claims
/// back at once, while another member keeps away from them.
#[tokio::test]
async fn a_restarted_member_takes_its_own_claims_back_at_once() {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let log = Arc::default();
    let ra = MemberRevoker::new(&log, Some(5));
    let a = member(&storage, &clock, member_config("node-a"), ra.clone()).await;
    let issued = issue_many(&a, 30, MIN).await;
    clock.advance(MIN);
    let a2 = a.clone();
    let dying = tokio::spawn(async move { a2.run_due().await });
    ra.wait_entered().await;
    dying.abort();
    let _ = dying.await;
    drop(a);
    assert_eq!(ra.completed_calls(), 4);

    // Another member revokes what node-a had not claimed, nothing else.
    let rb = MemberRevoker::new(&log, None);
    let b = member(&storage, &clock, member_config("node-b"), rb.clone()).await;
    b.run_due().await.unwrap();
    let left = b.list("").await.unwrap();
    assert!(!left.is_empty());
    for id in &left {
        let lease = b.lookup(*id).await.unwrap();
        assert_eq!(lease.claim().unwrap().owner(), "node-a");
    }

    // Same id, same clock: no waiting for the claims to lapse.
    let again = MemberRevoker::new(&log, None);
    let restarted = member(&storage, &clock, member_config("node-a"), again.clone()).await;
    assert_eq!(restarted.member_id(), "node-a");
    let report = restarted.run_due().await.unwrap();
    assert_eq!(report.revoked, left.len(), "{report:?}");
    assert_eq!(again.completed_calls() + rb.completed_calls(), 26);
    assert_each_revoked_once(&log, &issued);
    assert!(lease_keys(&storage).await.is_empty());
}

/// A revoker that runs longer than the claim lasts keeps its claim: the
/// holder renews it while the call runs, so no other member steps in.
#[tokio::test]
async fn a_long_revocation_keeps_its_claim_while_its_member_lives() {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let log = Arc::default();
    let ra = MemberRevoker::new(&log, Some(1));
    let rb = MemberRevoker::new(&log, None);
    let a = member(&storage, &clock, member_config("a"), ra.clone()).await;
    let b = member(&storage, &clock, member_config("b"), rb.clone()).await;
    let lease = a
        .issue("db/creds/x", "test", MIN, MIN, true, Vec::new())
        .await
        .unwrap();
    clock.advance(MIN);
    let a2 = a.clone();
    let working = tokio::spawn(async move { a2.run_due().await });
    ra.wait_entered().await;
    for _ in 0..6 {
        advance_while_held(&clock, &a, lease.id(), Duration::from_secs(11)).await;
        assert_eq!(b.run_due().await.unwrap().revoked, 0);
    }
    // A manual revoke elsewhere waits for the holder and reports the
    // revocation it made; the revoker runs once.
    let b2 = b.clone();
    let id = lease.id();
    let manual = tokio::spawn(async move { b2.revoke(id).await });
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!manual.is_finished());
    ra.gate.notify_one();
    assert_eq!(working.await.unwrap().unwrap().revoked, 1);
    let revoked = manual.await.unwrap().unwrap();
    assert_eq!(revoked.state(), &LeaseState::Revoked);
    assert_eq!(rb.completed_calls(), 0);
    assert_each_revoked_once(&log, &[lease.id()]);
}

/// A revocation on request claims the lease first, so expiry processing in
/// another manager at the same moment leaves it alone (and a renewal is
/// refused); if the requesting member dies mid-way, the lease is revoked by
/// the others once the claim lapses.
#[tokio::test]
async fn a_manual_revoke_racing_expiry_runs_the_revoker_once() {
    let clock = Arc::new(ManualClock::new(START));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let log = Arc::default();
    let ra = MemberRevoker::new(&log, Some(1));
    let rb = MemberRevoker::new(&log, None);
    let a = member(&storage, &clock, member_config("a"), ra.clone()).await;
    let b = member(&storage, &clock, member_config("b"), rb.clone()).await;
    let first = a
        .issue("db/creds/x", "test", MIN, MIN, true, Vec::new())
        .await
        .unwrap();
    let second = a
        .issue("db/creds/y", "test", 10 * MIN, 10 * MIN, true, Vec::new())
        .await
        .unwrap();
    let a2 = a.clone();
    let id = first.id();
    let manual = tokio::spawn(async move { a2.revoke(id).await });
    ra.wait_entered().await;
    for _ in 0..6 {
        advance_while_held(&clock, &a, first.id(), Duration::from_secs(10)).await;
    }
    assert_eq!(b.run_due().await.unwrap().revoked, 0);
    assert!(matches!(
        lease_err(b.renew(first.id(), MIN).await.unwrap_err()),
        LeaseError::NotActive {
            state: LeaseState::Revoking { .. },
            ..
        }
    ));
    ra.gate.notify_one();
    assert_eq!(manual.await.unwrap().unwrap().state(), &LeaseState::Revoked);
    assert_eq!(b.run_due().await.unwrap().revoked, 0);
    assert_each_revoked_once(&log, &[first.id()]);

    // The requester dies holding its claim on the second lease.
    let a2 = a.clone();
    let id = second.id();
    let dying = tokio::spawn(async move { a2.revoke(id).await });
    ra.wait_entered().await;
    dying.abort();
    let _ = dying.await;
    drop(a);
    assert_eq!(b.run_due().await.unwrap().revoked, 0);
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.run_due().await.unwrap().revoked, 1);
    assert_each_revoked_once(&log, &[first.id(), second.id()]);
    assert!(lease_keys(&storage).await.is_empty());
}

/// Per-path counts are spread over shard keys; a store whose counts were
/// written as one key per path (before shards) is counted the same, the old
/// key is folded into a shard on the next change, and a path whose leases
/// are all gone leaves no count keys behind.
#[tokio::test]
async fn counts_written_before_shards_are_read_and_folded() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(f.issue("db/creds/x", 10 * MIN, 10 * MIN).await.id());
    }
    let shards = f.storage.list("lease-count/").await.unwrap();
    assert!(
        !shards.is_empty()
            && shards
                .iter()
                .all(|k| k.starts_with("lease-count/db/creds/x#")),
        "{shards:?}"
    );
    // Rewrite the count in the old layout (sealed, through the barrier).
    let mut ops: Vec<BatchOp> = shards.into_iter().map(BatchOp::delete).collect();
    ops.push(BatchOp::put(
        "lease-count/db/creds/x",
        3u64.to_be_bytes().to_vec(),
    ));
    f.store.barrier().batch(ops).await.unwrap();

    let (manager, _) = manager_over(&f.storage, &f.clock, config()).await;
    assert_eq!(manager.restore().await.unwrap().live_leases, 3);
    let fourth = manager
        .issue("db/creds/x", "test", MIN, MIN, true, Vec::new())
        .await
        .unwrap();
    ids.push(fourth.id());
    assert_eq!(manager.stats().live_leases, 4);
    let keys = f.storage.list("lease-count/").await.unwrap();
    assert_eq!(keys.len(), 1, "folded into one shard: {keys:?}");
    assert!(keys[0].starts_with("lease-count/db/creds/x#"));
    let (again, _) = manager_over(&f.storage, &f.clock, config()).await;
    assert_eq!(again.restore().await.unwrap().live_leases, 4);
    for id in ids {
        again.revoke(id).await.unwrap();
    }
    assert_eq!(again.stats().live_leases, 0);
    assert!(lease_keys(&f.storage).await.is_empty());
}

/// Two managers that take a path's count to zero at the same moment, in
/// different shards, leave keys that sum to zero; the next restore deletes
/// them.
#[tokio::test]
async fn zero_sum_count_shards_are_deleted_on_restore() {
    let f = fixture().await;
    f.store
        .barrier()
        .batch(vec![
            BatchOp::put("lease-count/db/creds/x#2", 3i64.to_be_bytes().to_vec()),
            BatchOp::put("lease-count/db/creds/x#5", (-3i64).to_be_bytes().to_vec()),
            BatchOp::put("lease-count/db/creds/y#1", 2i64.to_be_bytes().to_vec()),
        ])
        .await
        .unwrap();
    assert_eq!(f.manager.restore().await.unwrap().live_leases, 2);
    assert_eq!(
        f.storage.list("lease-count/").await.unwrap(),
        vec!["lease-count/db/creds/y#1"]
    );
}

/// A holder whose claim cannot be renewed (its storage writes fail) gives
/// the revocation up once the claim has lapsed, instead of finishing it
/// while another member may already be revoking the lease.
#[tokio::test]
async fn a_claim_that_cannot_be_renewed_is_given_up_when_it_lapses() {
    let clock = Arc::new(ManualClock::new(START));
    let inner: DynStorage = Arc::new(MemoryStorage::new());
    let faulty = FaultyStorage::new(inner.clone());
    let a_storage: DynStorage = Arc::new(faulty.clone());
    let log = Arc::default();
    let ra = MemberRevoker::new(&log, Some(1));
    let rb = MemberRevoker::new(&log, None);
    let a = member(&a_storage, &clock, member_config("a"), ra.clone()).await;
    let b = member(&inner, &clock, member_config("b"), rb.clone()).await;
    let lease = a
        .issue("db/creds/x", "test", MIN, MIN, true, Vec::new())
        .await
        .unwrap();
    clock.advance(MIN);
    let a2 = a.clone();
    let working = tokio::spawn(async move { a2.run_due().await });
    ra.wait_entered().await;
    faulty.fail_from_write(1);
    clock.advance(Duration::from_secs(31));
    let report = tokio::time::timeout(Duration::from_secs(20), working)
        .await
        .expect("the holder gave up")
        .unwrap()
        .unwrap();
    assert_eq!(report.revoked, 0, "{report:?}");
    // The abandoned call never completed; b revokes the lease once.
    assert_eq!(ra.completed_calls(), 0);
    assert_eq!(b.run_due().await.unwrap().revoked, 1);
    assert_each_revoked_once(&log, &[lease.id()]);
}

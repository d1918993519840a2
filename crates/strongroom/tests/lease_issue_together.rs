//! Concurrent `issue` calls on one manager are written together: one batch
//! for the calls that waited, quotas counted caller by caller, and a shared
//! write that fails or whose writer stops leaves each caller to write its
//! own leases, without issuing any twice.
//!
//! The tests run on a current-thread runtime over a storage whose writes
//! can be held at a gate, so which calls wait, and which call writes them,
//! is fixed: spawned calls run up to their first wait each time the test
//! yields, and the manager's write lock serves waiters in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use strongroom::changes::ChangeFeed;
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::lease::{Lease, LeaseConfig, LeaseError, LeaseEvent, LeaseManager, Revoker};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{BatchOp, DynStorage, LastRecord, MemoryStorage, Storage};
use strongroom::{Error, Options, SecretBytes, StorageErrorKind, Strongroom};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const START: Timestamp = Timestamp::from_secs(1_800_000_000);
const MIN: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct NoopRevoker;

#[async_trait]
impl Revoker for NoopRevoker {
    async fn revoke(&self, _lease: &Lease) -> strongroom::Result<()> {
        Ok(())
    }
}

/// What the gate does to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Fails without writing.
    Before,
    /// Writes, then reports a failure (a connection lost after its commit).
    After,
}

#[derive(Debug, Default)]
struct GateState {
    /// Writes begun.
    writes: usize,
    /// Writes waiting at the closed gate.
    held: usize,
    /// The write (by its number in `writes`) that fails, and how.
    fault: Option<(usize, Fault)>,
    /// Whether writes wait.
    closed: bool,
    /// Writes let through while the gate is closed.
    passes: usize,
}

/// A storage whose writes wait while its gate is closed, and one of whose
/// writes can be made to fail.
#[derive(Debug)]
struct GatedStorage {
    inner: DynStorage,
    state: Mutex<GateState>,
    /// Moves whenever the gate changes.
    changed: watch::Sender<u64>,
}

impl GatedStorage {
    fn new(inner: DynStorage) -> Self {
        Self {
            inner,
            state: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }
    fn set(&self, f: impl FnOnce(&mut GateState)) {
        f(&mut self.state.lock().unwrap());
        self.changed.send_modify(|n| *n += 1);
    }
    fn close(&self) {
        self.set(|s| s.closed = true);
    }
    fn open(&self) {
        self.set(|s| s.closed = false);
    }
    /// Lets the next `n` writes through the closed gate.
    fn pass(&self, n: usize) {
        self.set(|s| s.passes += n);
    }
    fn writes(&self) -> usize {
        self.state.lock().unwrap().writes
    }
    fn held(&self) -> usize {
        self.state.lock().unwrap().held
    }
    /// Makes the `n`th write from now (1 = the next) fail as `fault` says.
    fn fail(&self, n: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.fault = Some((s.writes + n, fault));
    }
}

#[async_trait]
impl Storage for GatedStorage {
    fn backend(&self) -> &'static str {
        "gated"
    }
    async fn get(&self, key: &str) -> strongroom::Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> strongroom::Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan(prefix, start_after, limit).await
    }
    async fn get_with_last(
        &self,
        key: &str,
        prefix: &str,
    ) -> strongroom::Result<(Option<Vec<u8>>, LastRecord)> {
        self.inner.get_with_last(key, prefix).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> strongroom::Result<()> {
        let fault = {
            let mut s = self.state.lock().unwrap();
            s.writes += 1;
            s.held += 1;
            s.fault.filter(|(n, _)| *n == s.writes).map(|(_, f)| f)
        };
        let mut changed = self.changed.subscribe();
        loop {
            {
                let mut s = self.state.lock().unwrap();
                if !s.closed || s.passes > 0 {
                    s.passes = s.passes.saturating_sub(usize::from(s.closed));
                    s.held -= 1;
                    break;
                }
            }
            let _ = changed.changed().await;
        }
        let failure = || {
            Error::storage(
                "gated",
                StorageErrorKind::Unavailable,
                "injected write failure",
            )
        };
        match fault {
            Some(Fault::Before) => Err(failure()),
            Some(Fault::After) => {
                self.inner.batch(ops).await?;
                Err(failure())
            }
            None => self.inner.batch(ops).await,
        }
    }
    fn watch(&self) -> Option<ChangeFeed> {
        self.inner.watch()
    }
}

struct Fixture {
    storage: Arc<GatedStorage>,
    manager: Arc<LeaseManager>,
}

async fn fixture(config: LeaseConfig) -> Fixture {
    let storage = Arc::new(GatedStorage::new(Arc::new(MemoryStorage::new())));
    let dyn_storage: DynStorage = storage.clone();
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
    let door = Strongroom::init(dyn_storage, &protector, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let manager = Arc::new(door.lease_manager(clock, config).unwrap());
    manager.register_revoker("test", Arc::new(NoopRevoker));
    manager.restore().await.unwrap();
    Fixture { storage, manager }
}

fn spawn_issue(m: &Arc<LeaseManager>, i: usize) -> JoinHandle<strongroom::Result<Lease>> {
    let m = Arc::clone(m);
    tokio::spawn(async move {
        m.issue(&format!("db/role-{i}"), "test", MIN, 10 * MIN, true, vec![])
            .await
    })
}

/// Lets every spawned task run until it waits.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Starts call 0, holds its write at the gate, then starts calls 1..n,
/// which wait behind it. Returns the calls in order.
async fn queue_behind_a_held_write(
    f: &Fixture,
    n: usize,
) -> Vec<JoinHandle<strongroom::Result<Lease>>> {
    f.storage.close();
    let mut calls = vec![spawn_issue(&f.manager, 0)];
    settle().await;
    assert_eq!(f.storage.held(), 1, "call 0 is writing");
    for i in 1..n {
        calls.push(spawn_issue(&f.manager, i));
    }
    settle().await;
    assert_eq!(f.storage.held(), 1, "the other calls wait for the manager");
    calls
}

async fn stored(f: &Fixture, lease: &Lease) -> bool {
    f.manager.lookup(lease.id()).await.is_ok()
}

#[tokio::test]
async fn calls_that_waited_are_written_in_one_batch_with_quotas_in_call_order() {
    let mut config = LeaseConfig::default();
    config.max_leases = Some(40);
    let f = fixture(config).await;
    let mut events = f.manager.subscribe();
    let before = f.storage.writes();
    let calls = queue_behind_a_held_write(&f, 64).await;
    f.storage.open();
    let mut issued = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        match call.await.unwrap() {
            Ok(lease) => {
                assert!(i < 40, "call {i} was issued past the quota");
                assert_eq!(lease.path(), format!("db/role-{i}"));
                issued.push(lease);
            }
            Err(Error::Lease(LeaseError::QuotaExceeded { limit, count, .. })) => {
                assert!(i >= 40, "call {i} was refused within the quota");
                assert_eq!((limit, count), (40, 40));
            }
            Err(e) => panic!("call {i}: {e}"),
        }
    }
    assert_eq!(issued.len(), 40);
    // Call 0 alone, then the 63 that waited in one write.
    assert_eq!(f.storage.writes() - before, 2);
    for lease in &issued {
        assert!(stored(&f, lease).await);
    }
    assert_eq!(f.manager.list("").await.unwrap().len(), 40);
    let mut seen = 0;
    while let Ok(event) = events.try_recv() {
        assert!(matches!(event, LeaseEvent::Issued { .. }), "{event:?}");
        seen += 1;
    }
    assert_eq!(seen, 40, "one Issued event per lease");
}

#[tokio::test]
async fn a_shared_write_that_fails_is_written_again_call_by_call() {
    let f = fixture(LeaseConfig::default()).await;
    let calls = queue_behind_a_held_write(&f, 10).await;
    // Call 0's write has begun; the next, the shared write of calls 1..9,
    // fails.
    f.storage.fail(1, Fault::Before);
    let before = f.storage.writes();
    f.storage.open();
    for call in calls {
        let lease = call.await.unwrap().unwrap();
        assert!(stored(&f, &lease).await);
    }
    // The failed shared write, then the nine calls on their own.
    assert_eq!(f.storage.writes() - before, 10);
    assert_eq!(f.manager.list("").await.unwrap().len(), 10);
}

#[tokio::test]
async fn a_shared_write_stored_despite_its_error_is_found_not_issued_twice() {
    use strongroom::audit::{AuditLog, MemorySink, Operation, Outcome};
    let sink = Arc::new(MemorySink::new());
    let mut config = LeaseConfig::default();
    config.audit = Some(Arc::new(
        AuditLog::new(
            SecretBytes::new(vec![5; 32]),
            vec![sink.clone()],
            Arc::new(ManualClock::new(START)),
        )
        .unwrap(),
    ));
    let f = fixture(config).await;
    let mut events = f.manager.subscribe();
    let calls = queue_behind_a_held_write(&f, 10).await;
    f.storage.fail(1, Fault::After);
    let before = f.storage.writes();
    f.storage.open();
    let mut ids = Vec::new();
    for call in calls {
        let lease = call.await.unwrap().unwrap();
        assert!(stored(&f, &lease).await);
        ids.push(lease.id());
    }
    // Only the shared write: the calls found their leases.
    assert_eq!(f.storage.writes() - before, 1);
    assert_eq!(f.manager.list("").await.unwrap().len(), 10);
    let mut issued = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let LeaseEvent::Issued { id, .. } = event {
            issued.push(id);
        }
    }
    assert_eq!(issued, ids, "one Issued event per lease, in call order");
    // The audit record: call 0's issue; the shared write's intents, each
    // with its error; then each found lease again, with no error after it,
    // so the record says the lease exists.
    let records = sink.records().unwrap();
    for id in &ids[1..] {
        let id = Some(id.to_string());
        let of_lease: Vec<(&str, bool)> = records
            .iter()
            .filter(|r| r.event.lease_id == id)
            .map(|r| {
                assert_eq!(r.event.operation, Operation::LeaseIssue);
                (
                    r.event.request_id.as_str(),
                    matches!(r.event.outcome, Outcome::Allowed),
                )
            })
            .collect();
        let [(shared, true), (shared_again, false), (alone, true)] = of_lease[..] else {
            panic!("audit records of {id:?}: {of_lease:?}");
        };
        assert_eq!(shared, shared_again);
        assert_ne!(shared, alone);
    }
}

#[tokio::test]
async fn when_the_writing_call_is_dropped_the_others_write_their_own() {
    let f = fixture(LeaseConfig::default()).await;
    let mut calls = queue_behind_a_held_write(&f, 10).await;
    // Call 0 finishes; call 1 goes on and holds the shared write at the
    // gate, and is dropped there.
    f.storage.pass(1);
    let first = calls.remove(0).await.unwrap().unwrap();
    settle().await;
    assert_eq!(f.storage.held(), 1, "call 1 writes for calls 1..9");
    let writer = calls.remove(0);
    writer.abort();
    assert!(writer.await.unwrap_err().is_cancelled());
    f.storage.open();
    let mut leases = vec![first];
    for call in calls {
        leases.push(call.await.unwrap().unwrap());
    }
    for lease in &leases {
        assert!(stored(&f, lease).await);
    }
    // The dropped call issued nothing.
    assert_eq!(f.manager.list("").await.unwrap().len(), 9);
}

#[tokio::test]
async fn a_call_dropped_while_it_waits_issues_nothing() {
    let f = fixture(LeaseConfig::default()).await;
    let mut calls = queue_behind_a_held_write(&f, 4).await;
    let dropped = calls.remove(2);
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    f.storage.open();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(f.manager.list("").await.unwrap().len(), 3);
}

//! The rotation engine against a model target system with fault injection:
//! crash points between every step, roll-back, retries, locks, grace period,
//! schedule, events and the API-key verifier.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use strongroom::clock::{Clock, ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::protector::SoftwareProtector;
use strongroom::rotation::{
    ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, Credential, Matched, RotationAudit,
    RotationContext, RotationEngine, RotationError, RotationEvent, RotationOptions, RotationStep,
    Rotator, StagedCredentials, StepOutcome, TargetError,
};
use strongroom::storage::{DynStorage, FaultyStorage, MemoryStorage};
use strongroom::{Error, Options, SecretBytes, Strongroom};
use tokio::sync::Notify;

const NAME: &str = "prod/app/db";

/// A model of a target system: identity -> the one password that logs in.
#[derive(Debug, Default)]
struct Model {
    passwords: Mutex<HashMap<String, Vec<u8>>>,
    /// Upcoming `set` calls that fail (transiently) before acting.
    fail_set: AtomicU32,
    /// Upcoming `set` calls that act and then report a permanent failure.
    fail_set_after_acting: AtomicU32,
    /// Upcoming `test` calls that fail.
    fail_test: AtomicU32,
    /// When set, `set` waits for `release` after announcing `entered`.
    block_set: AtomicBool,
    entered: Notify,
    release: Notify,
    /// Probe: times no stored credential worked.
    violations: AtomicU64,
    probes: AtomicU64,
    /// Secrets ever handed to `set`, to check none is reused.
    set_secrets: Mutex<Vec<Vec<u8>>>,
}

impl Model {
    fn works(&self, c: &Credential) -> bool {
        self.passwords
            .lock()
            .unwrap()
            .get(c.identity())
            .is_some_and(|p| p.as_slice() == c.secret().expose_secret())
    }

    fn any_works(&self, staged: &StagedCredentials) -> bool {
        staged.in_try_order().any(|c| self.works(c))
    }
}

#[derive(Debug)]
struct ModelRotator {
    model: Arc<Model>,
    single_user: bool,
    /// Reads the stored stages after every change to the target.
    probe: Door,
}

impl ModelRotator {
    async fn probe(&self) {
        // The state record may be mid-write only between our own calls, so
        // what is stored now is what a restarted process would see.
        let staged = self.probe.load_staged(NAME).await.unwrap();
        self.model.probes.fetch_add(1, Ordering::SeqCst);
        if staged.current.is_some() && !self.model.any_works(&staged) {
            self.model.violations.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn dec(a: &AtomicU32) -> bool {
    a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait]
impl Rotator for ModelRotator {
    fn kind(&self) -> &'static str {
        "model"
    }

    async fn create(&self, ctx: &RotationContext<'_>) -> Result<Credential, TargetError> {
        let identity = if self.single_user {
            "app"
        } else if ctx.current.is_some_and(|c| c.identity() == "app_a") {
            "app_b"
        } else {
            "app_a"
        };
        Ok(Credential::new(
            ctx.version,
            identity,
            SecretBytes::random(16).unwrap(),
        ))
    }

    async fn set(&self, _ctx: &RotationContext<'_>, p: &Credential) -> Result<(), TargetError> {
        if self.model.block_set.load(Ordering::SeqCst) {
            self.model.entered.notify_one();
            self.model.release.notified().await;
        }
        if dec(&self.model.fail_set) {
            return Err(TargetError::transient("connection reset"));
        }
        self.model
            .set_secrets
            .lock()
            .unwrap()
            .push(p.secret().expose_secret().to_vec());
        self.model
            .passwords
            .lock()
            .unwrap()
            .insert(p.identity().to_owned(), p.secret().expose_secret().to_vec());
        self.probe().await;
        if dec(&self.model.fail_set_after_acting) {
            return Err(TargetError::permanent("permission denied after acting"));
        }
        Ok(())
    }

    async fn test(&self, _ctx: &RotationContext<'_>, p: &Credential) -> Result<(), TargetError> {
        if dec(&self.model.fail_test) {
            return Err(TargetError::transient("password authentication failed"));
        }
        if self.model.works(p) {
            Ok(())
        } else {
            Err(TargetError::permanent("password authentication failed"))
        }
    }

    async fn rollback(
        &self,
        ctx: &RotationContext<'_>,
        failed: &Credential,
    ) -> Result<(), TargetError> {
        if self.single_user {
            // one slot: put the current password back
            if let Some(cur) = ctx.current {
                self.model.passwords.lock().unwrap().insert(
                    cur.identity().to_owned(),
                    cur.secret().expose_secret().to_vec(),
                );
            }
            self.probe().await;
            Ok(())
        } else {
            self.revoke(ctx, failed).await
        }
    }

    async fn revoke(
        &self,
        _ctx: &RotationContext<'_>,
        old: &Credential,
    ) -> Result<(), TargetError> {
        {
            let mut pw = self.model.passwords.lock().unwrap();
            if pw
                .get(old.identity())
                .is_some_and(|p| p.as_slice() == old.secret().expose_secret())
            {
                pw.remove(old.identity());
            }
        }
        self.probe().await;
        Ok(())
    }
}

struct Fixture {
    clock: ManualClock,
    mem: MemoryStorage,
    faulty: FaultyStorage,
    model: Arc<Model>,
    single_user: bool,
}

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![9; 32])).unwrap()
}

fn fast_options() -> RotationOptions {
    RotationOptions {
        grace_period: Duration::from_secs(600),
        max_attempts: 3,
        backoff_initial: Duration::ZERO,
        backoff_max: Duration::ZERO,
        lock_ttl: Duration::from_secs(60),
        ..RotationOptions::default()
    }
}

impl Fixture {
    async fn new(single_user: bool) -> Self {
        let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
        let mem = MemoryStorage::new();
        let faulty = FaultyStorage::new(Arc::new(mem.clone()));
        let storage: DynStorage = Arc::new(faulty.clone());
        Strongroom::init(storage, &protector(), self_options(&clock))
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        Self {
            clock,
            mem,
            faulty,
            model: Arc::default(),
            single_user,
        }
    }

    /// A fresh process over the same storage.
    async fn open(&self, options: RotationOptions) -> RotationEngine {
        self.open_over(Arc::new(self.faulty.clone()), options).await
    }

    /// A fresh process over `storage` (the same data, other faults).
    async fn open_over(&self, storage: DynStorage, options: RotationOptions) -> RotationEngine {
        let sr = Strongroom::unseal(storage, &protector(), self_options(&self.clock))
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        let rotator = ModelRotator {
            model: self.model.clone(),
            single_user: self.single_user,
            probe: sr.clone(),
        };
        sr.rotation_engine(NAME, Arc::new(rotator), options)
            .await
            .unwrap()
    }

    async fn staged(&self) -> StagedCredentials {
        let storage: DynStorage = Arc::new(self.mem.clone());
        let sr = Strongroom::unseal(storage, &protector(), self_options(&self.clock))
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        sr.load_staged(NAME).await.unwrap()
    }

    async fn assert_current_works(&self) -> Credential {
        let staged = self.staged().await;
        let cur = staged.current.clone().expect("a current version");
        assert!(self.model.works(&cur), "current must work in the target");
        cur
    }
}

fn self_options(clock: &ManualClock) -> Options {
    Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    }
}

fn rotation_err(e: Error) -> RotationError {
    match e {
        Error::Rotation(r) => r,
        other => panic!("expected a rotation error, got {other:?}"),
    }
}

#[tokio::test]
async fn first_rotation_creates_and_second_keeps_previous_through_grace() {
    let f = Fixture::new(false).await;
    let engine = f.open(fast_options()).await;
    let r = engine.rotate_now().await.unwrap();
    assert_eq!(r.promoted, Some(1));
    let v1 = f.assert_current_works().await;
    assert_eq!(v1.identity(), "app_a");

    let r = engine.rotate_now().await.unwrap();
    assert_eq!(r.promoted, Some(2));
    let staged = f.staged().await;
    let v2 = staged.current.clone().unwrap();
    assert_eq!(v2.identity(), "app_b");
    assert_eq!(staged.previous.as_ref().unwrap().version(), 1);
    assert!(staged.pending.is_none());
    // both roles valid through the switch
    assert!(f.model.works(&v1) && f.model.works(&v2));

    // within the grace period nothing is revoked
    f.clock.advance(Duration::from_secs(599));
    assert!(!engine.revoke_due().await.unwrap());
    assert!(f.model.works(&v1));
    f.clock.advance(Duration::from_secs(1));
    assert!(engine.revoke_due().await.unwrap());
    assert!(!f.model.works(&v1));
    assert!(f.model.works(&v2));

    let st = engine.status().await.unwrap();
    assert_eq!((st.current, st.previous, st.pending), (Some(2), None, None));
    let h1 = st.history.iter().find(|h| h.version == 1).unwrap();
    assert!(h1.promoted.is_some() && h1.superseded.is_some() && h1.revoked.is_some());
    assert!(h1.failed.is_none());
    // the revoked version's sealed record is gone; only v2 remains sealed
    let keys: Vec<String> = f.mem.snapshot().await.into_keys().collect();
    assert!(keys.contains(&format!("s/rot/{NAME}/v/2")));
    assert!(!keys.contains(&format!("s/rot/{NAME}/v/1")));
    assert!(keys.contains(&format!("rot/{NAME}")));
    // the state record holds no secret: stored sealed (behind the barrier),
    // and its plaintext names versions and identities only
    let stored = f.mem.snapshot().await[&format!("rot/{NAME}")].clone();
    assert!(
        String::from_utf8(stored).is_err(),
        "stored sealed, not as JSON"
    );
    let sr = Strongroom::unseal(
        Arc::new(f.mem.clone()),
        &protector(),
        self_options(&f.clock),
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap();
    let state = sr
        .barrier()
        .get(&format!("rot/{NAME}"))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(state).unwrap();
    assert!(text.contains("\"current\":2"), "{text}");
    assert!(!text.contains(&hex::encode(v2.secret().expose_secret())));
    assert_eq!(f.model.violations.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn failed_test_rolls_back_and_never_reuses_the_secret() {
    for single in [false, true] {
        let f = Fixture::new(single).await;
        let engine = f.open(fast_options()).await;
        engine.rotate_now().await.unwrap();
        let before = f.assert_current_works().await;

        f.model.fail_test.store(10, Ordering::SeqCst);
        let err = rotation_err(engine.rotate_now().await.unwrap_err());
        match &err {
            RotationError::RolledBack { version, step, .. } => {
                assert_eq!((*version, *step), (2, RotationStep::TestPending));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("rolled back"), "{err}");
        // current untouched and working, pending discarded
        let staged = f.staged().await;
        assert!(staged.pending.is_none());
        let cur = f.assert_current_works().await;
        assert_eq!(cur.version(), before.version());
        assert_eq!(cur.secret(), before.secret());
        let st = engine.status().await.unwrap();
        assert!(
            st.history
                .iter()
                .any(|h| h.version == 2 && h.failed.is_some())
        );
        assert!(st.in_flight.is_none());

        // next attempt: a new version with a fresh secret
        f.model.fail_test.store(0, Ordering::SeqCst);
        let r = engine.rotate_now().await.unwrap();
        assert_eq!(r.promoted, Some(3));
        let secrets = f.model.set_secrets.lock().unwrap().clone();
        let mut dedup = secrets.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), secrets.len(), "a secret was set twice");
        f.assert_current_works().await;
        assert_eq!(
            f.model.violations.load(Ordering::SeqCst),
            0,
            "single={single}"
        );
    }
}

#[tokio::test]
async fn set_that_acts_then_fails_is_rolled_back_in_the_target() {
    // single user: the password was changed, so roll-back must restore it
    let f = Fixture::new(true).await;
    let engine = f.open(fast_options()).await;
    engine.rotate_now().await.unwrap();
    let before = f.assert_current_works().await;
    f.model.fail_set_after_acting.store(1, Ordering::SeqCst);
    let err = rotation_err(engine.rotate_now().await.unwrap_err());
    assert!(matches!(
        err,
        RotationError::RolledBack {
            step: RotationStep::SetInTarget,
            ..
        }
    ));
    let cur = f.assert_current_works().await;
    assert_eq!(cur.secret(), before.secret());
    assert_eq!(f.model.violations.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_on_the_clock() {
    let f = Fixture::new(false).await;
    let opts = RotationOptions {
        max_attempts: 4,
        backoff_initial: Duration::from_secs(10),
        backoff_max: Duration::from_secs(15),
        ..fast_options()
    };
    let engine = Arc::new(f.open(opts).await);
    let mut events = engine.subscribe();
    f.model.fail_set.store(3, Ordering::SeqCst);
    let start = f.clock.now();
    let e2 = engine.clone();
    let task = tokio::spawn(async move { e2.rotate_now().await });
    // Advance the clock each time the engine reports a retry; it waits on
    // the clock, never on real time.
    let mut retries = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event")
            .unwrap();
        if let StepOutcome::Retrying { attempt, .. } = ev.outcome {
            retries.push(attempt);
            assert!(!task.is_finished());
            f.clock.advance(Duration::from_secs(15));
        }
        if ev.step == RotationStep::Promote && ev.outcome == StepOutcome::Completed {
            break;
        }
    }
    let r = task.await.unwrap().unwrap();
    assert_eq!(r.promoted, Some(1));
    assert_eq!(retries, vec![1, 2, 3]);
    assert_eq!(f.clock.now(), start + Duration::from_secs(45));
    f.assert_current_works().await;

    // the bound: more failures than attempts ends in a roll-back
    f.model.fail_set.store(100, Ordering::SeqCst);
    let opts = RotationOptions {
        max_attempts: 2,
        ..fast_options()
    };
    let engine = f.open(opts).await;
    let err = rotation_err(engine.rotate_now().await.unwrap_err());
    assert!(matches!(err, RotationError::RolledBack { .. }), "{err:?}");
    f.assert_current_works().await;
    assert_eq!(f.model.fail_set.load(Ordering::SeqCst), 98);
}

/// Crash (storage stops accepting writes, the engine is dropped, a new
/// process opens the same storage) before every write of a rotation; after
/// resume the rotation has completed or rolled back, and no stored
/// credential set was ever entirely invalid.
#[tokio::test]
async fn crash_between_every_step_resumes_or_rolls_back() {
    for single in [false, true] {
        let mut completed_cleanly = false;
        let mut points = 0;
        for n in 1..=40u64 {
            let f = Fixture::new(single).await;
            let engine = f.open(fast_options()).await;
            engine.rotate_now().await.unwrap();
            engine.rotate_now().await.unwrap(); // now with a previous (v1)
            let before = f.assert_current_works().await;

            f.faulty.fail_from_write(n);
            let r = engine.rotate_now().await;
            drop(engine);
            f.faulty.heal();
            if r.is_ok() {
                completed_cleanly = true;
                points = n - 1;
                break;
            }
            // the target must still be usable with what is stored
            let staged = f.staged().await;
            assert!(
                f.model.any_works(&staged),
                "single={single} crash at write {n}: no stored credential works"
            );

            // a new process: the old lock expires, resume finishes the job
            f.clock.advance(Duration::from_secs(61));
            let engine = f.open(fast_options()).await;
            engine.resume().await.unwrap();
            let st = engine.status().await.unwrap();
            assert!(st.in_flight.is_none(), "crash at write {n}: {st:?}");
            assert!(st.pending.is_none());
            let cur = f.assert_current_works().await;
            assert!(
                cur.version() == before.version() || cur.version() > before.version(),
                "current went backwards"
            );
            // and rotation works again afterwards
            engine.rotate_now().await.unwrap();
            f.assert_current_works().await;
            assert_eq!(
                f.model.violations.load(Ordering::SeqCst),
                0,
                "single={single} crash at write {n}"
            );
            assert!(f.model.probes.load(Ordering::SeqCst) > 0);
        }
        eprintln!("single={single}: {points} crash points");
        assert!(
            completed_cleanly,
            "rotation never completed within 40 writes"
        );
        assert!(
            points >= 6,
            "expected at least 6 crash points, got {points}"
        );
    }
}

#[tokio::test]
async fn one_rotation_at_a_time_across_processes() {
    let f = Fixture::new(false).await;
    let a = Arc::new(
        f.open(RotationOptions {
            owner_id: Some("proc-a".into()),
            ..fast_options()
        })
        .await,
    );
    let b = f.open(fast_options()).await;
    a.rotate_now().await.unwrap();

    f.model.block_set.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let task = tokio::spawn(async move { a2.rotate_now().await });
    f.model.entered.notified().await;
    let err = rotation_err(b.rotate_now().await.unwrap_err());
    match err {
        RotationError::Busy { owner, until, .. } => {
            assert_eq!(owner, "proc-a");
            assert!(until > f.clock.now());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rotation_err(b.resume().await.unwrap_err()),
        RotationError::Busy { .. }
    ));
    f.model.block_set.store(false, Ordering::SeqCst);
    f.model.release.notify_one();
    assert_eq!(task.await.unwrap().unwrap().promoted, Some(2));
    // lock released: b can rotate now
    assert_eq!(b.rotate_now().await.unwrap().promoted, Some(3));
}

#[tokio::test]
async fn an_expired_lock_is_taken_over_and_the_old_owner_stops() {
    let f = Fixture::new(false).await;
    // a's own connection to storage fails while its step runs, so it
    // cannot renew its lock: the lock lapses although a lives.
    let a_storage = FaultyStorage::new(Arc::new(f.mem.clone()));
    let a = Arc::new(
        f.open_over(Arc::new(a_storage.clone()), fast_options())
            .await,
    );
    a.rotate_now().await.unwrap();
    f.model.block_set.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let task = tokio::spawn(async move { a2.rotate_now().await });
    f.model.entered.notified().await;
    a_storage.fail_from_write(1);
    f.clock.advance(Duration::from_secs(61));
    f.model.block_set.store(false, Ordering::SeqCst);
    // b takes over and finishes the rotation (the recorded step again)
    let b = f.open(fast_options()).await;
    let r = b.resume().await.unwrap();
    assert_eq!(r.promoted, Some(2));
    // a gave its step up once the lock it could not renew lapsed
    let err = rotation_err(task.await.unwrap().unwrap_err());
    assert!(matches!(err, RotationError::LostLock { .. }), "{err:?}");
    let st = b.status().await.unwrap();
    assert_eq!(st.current, Some(2));
    assert!(st.in_flight.is_none());
    f.assert_current_works().await;
}

#[derive(Debug, Default)]
struct RecordingAudit {
    events: Mutex<Vec<RotationEvent>>,
    refuse: AtomicBool,
}

#[async_trait]
impl RotationAudit for RecordingAudit {
    async fn record(&self, event: &RotationEvent) -> Result<(), String> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err("audit sink unavailable".into());
        }
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[tokio::test]
async fn every_step_is_audited_and_an_audit_failure_stops_the_step() {
    let f = Fixture::new(false).await;
    let audit = Arc::new(RecordingAudit::default());
    let engine = f
        .open(RotationOptions {
            audit: Some(audit.clone()),
            ..fast_options()
        })
        .await;
    let mut rx = engine.subscribe();
    engine.rotate_now().await.unwrap();
    let seen: Vec<(RotationStep, StepOutcome)> = audit
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.step, e.outcome.clone()))
        .collect();
    use RotationStep::*;
    let expect: Vec<(RotationStep, StepOutcome)> =
        [CreatePending, SetInTarget, TestPending, Promote]
            .into_iter()
            .flat_map(|s| [(s, StepOutcome::Started), (s, StepOutcome::Completed)])
            .collect();
    assert_eq!(seen, expect);
    // the broadcast carries the same events, with versions and no secret
    let cur = f.staged().await.current.unwrap();
    let secret_hex = hex::encode(cur.secret().expose_secret());
    let mut n = 0;
    while let Ok(ev) = rx.try_recv() {
        assert_eq!(ev.version, 1);
        assert!(!format!("{ev:?}").contains(&secret_hex));
        n += 1;
    }
    assert_eq!(n, 8);

    audit.refuse.store(true, Ordering::SeqCst);
    let before = f.model.set_secrets.lock().unwrap().len();
    let err = rotation_err(engine.rotate_now().await.unwrap_err());
    assert!(matches!(err, RotationError::AuditRefused { .. }), "{err:?}");
    // nothing reached the target
    assert_eq!(f.model.set_secrets.lock().unwrap().len(), before);
    audit.refuse.store(false, Ordering::SeqCst);
    // the recorded step resumes once the audit works again
    engine.resume().await.unwrap();
    assert_eq!(engine.status().await.unwrap().current, Some(2));
}

#[tokio::test]
async fn import_current_tests_then_stores() {
    let f = Fixture::new(true).await;
    let engine = f.open(fast_options()).await;
    // not valid in the target: refused
    let err = rotation_err(
        engine
            .import_current("app", SecretBytes::from("wrong"))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, RotationError::StepFailed { .. }), "{err:?}");
    f.model
        .passwords
        .lock()
        .unwrap()
        .insert("app".into(), b"initial".to_vec());
    assert_eq!(
        engine
            .import_current("app", SecretBytes::from("initial"))
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        rotation_err(
            engine
                .import_current("app", SecretBytes::from("initial"))
                .await
                .unwrap_err()
        ),
        RotationError::AlreadyInitialized { .. }
    ));
    engine.rotate_now().await.unwrap();
    let cur = f.assert_current_works().await;
    assert_eq!(cur.version(), 2);
    assert_ne!(cur.secret(), &SecretBytes::from("initial"));
}

/// The version of the next completed `step` event.
async fn wait_for(
    rx: &mut tokio::sync::broadcast::Receiver<RotationEvent>,
    step: RotationStep,
) -> u64 {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("event in time")
            .unwrap();
        if ev.step == step && ev.outcome == StepOutcome::Completed {
            return ev.version;
        }
    }
}

#[tokio::test]
async fn schedule_rotates_on_interval_and_revokes_after_grace() {
    let f = Fixture::new(false).await;
    let engine = Arc::new(
        f.open(RotationOptions {
            interval: Some(Duration::from_secs(3600)),
            grace_period: Duration::from_secs(600),
            ..fast_options()
        })
        .await,
    );
    let mut rx = engine.subscribe();
    let handle = engine.spawn_schedule();
    // no current version: the schedule creates one at once
    assert_eq!(wait_for(&mut rx, RotationStep::Promote).await, 1);
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(wait_for(&mut rx, RotationStep::Promote).await, 2);
    f.clock.advance(Duration::from_secs(600));
    assert_eq!(wait_for(&mut rx, RotationStep::RevokePrevious).await, 1);
    // on demand, between intervals
    engine.rotate_now().await.unwrap();
    assert_eq!(engine.status().await.unwrap().current, Some(3));
    assert!(!handle.is_finished());
    drop(handle);
    for _ in 0..1000 {
        if Arc::strong_count(&engine) == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(Arc::strong_count(&engine), 1, "the task stopped on drop");
    f.assert_current_works().await;
}

#[tokio::test]
async fn api_keys_verify_current_and_previous_during_the_overlap_only() {
    let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let sr = Strongroom::init(storage, &protector(), self_options(&clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let verifier = Arc::new(ApiKeyVerifier::new().unwrap());
    let format = ApiKeyFormat::base62("sk_test_", 32);
    let engine = sr
        .rotation_engine(
            "svc/api-key",
            Arc::new(ApiKeyRotator::new(format.clone(), verifier.clone())),
            fast_options(),
        )
        .await
        .unwrap();
    engine.rotate_now().await.unwrap();
    let k1 = engine.staged().await.unwrap().current.unwrap();
    assert!(format.matches(k1.secret().expose_secret()));
    assert_eq!(
        verifier.verify(k1.secret().expose_secret()),
        Matched::Current
    );
    assert_eq!(verifier.verify(b"sk_test_nope"), Matched::NoMatch);

    engine.rotate_now().await.unwrap();
    let k2 = engine.staged().await.unwrap().current.unwrap();
    assert_ne!(k1.secret(), k2.secret());
    assert_eq!(
        verifier.verify(k2.secret().expose_secret()),
        Matched::Current
    );
    assert_eq!(
        verifier.verify(k1.secret().expose_secret()),
        Matched::Previous
    );

    // a verifier in another process, loaded from storage, agrees
    let other = ApiKeyVerifier::new().unwrap();
    other
        .sync(&sr.load_staged("svc/api-key").await.unwrap())
        .unwrap();
    assert_eq!(other.verify(k1.secret().expose_secret()), Matched::Previous);
    assert_eq!(other.verify(k2.secret().expose_secret()), Matched::Current);

    clock.advance(Duration::from_secs(600));
    assert!(engine.revoke_due().await.unwrap());
    assert_eq!(
        verifier.verify(k1.secret().expose_secret()),
        Matched::NoMatch
    );
    assert_eq!(
        verifier.verify(k2.secret().expose_secret()),
        Matched::Current
    );
    assert!(!format!("{verifier:?}").contains("sk_test_"));
}

#[tokio::test]
async fn an_existing_api_key_is_imported_as_current_then_rotated_with_overlap() {
    let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
    let storage: DynStorage = Arc::new(MemoryStorage::new());
    let sr = Strongroom::init(storage, &protector(), self_options(&clock))
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    let verifier = Arc::new(ApiKeyVerifier::new().unwrap());
    let engine = sr
        .rotation_engine(
            "svc/legacy-key",
            Arc::new(ApiKeyRotator::new(
                ApiKeyFormat::base62("sk_live_", 32),
                verifier.clone(),
            )),
            fast_options(),
        )
        .await
        .unwrap();
    // an old key that predates the format
    let legacy = b"legacy-key-from-the-env-file";
    let err = engine
        .import_current("svc", SecretBytes::from(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "rotation_step_failed", "{err}");
    let v = engine
        .import_current("svc", SecretBytes::from(legacy.to_vec()))
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(verifier.verify(legacy), Matched::Current);
    engine.rotate_now().await.unwrap();
    let k2 = engine.staged().await.unwrap().current.unwrap();
    assert_eq!(
        verifier.verify(k2.secret().expose_secret()),
        Matched::Current
    );
    assert_eq!(verifier.verify(legacy), Matched::Previous);
    clock.advance(Duration::from_secs(600));
    assert!(engine.revoke_due().await.unwrap());
    assert_eq!(verifier.verify(legacy), Matched::NoMatch);
}

#[tokio::test]
async fn schedule_backs_off_on_the_clock_after_a_failed_rotation() {
    let f = Fixture::new(false).await;
    let engine = Arc::new(
        f.open(RotationOptions {
            interval: Some(Duration::from_secs(3600)),
            ..fast_options()
        })
        .await,
    );
    f.model.fail_test.store(1_000, Ordering::SeqCst);
    let mut rx = engine.subscribe();
    let _handle = engine.spawn_schedule();
    let rolled_back = |rx: &mut tokio::sync::broadcast::Receiver<RotationEvent>| {
        let mut rx = rx.resubscribe();
        async move {
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                    .await
                    .expect("event in time")
                    .unwrap();
                if ev.step == RotationStep::RollBack && ev.outcome == StepOutcome::Completed {
                    return ev.version;
                }
            }
        }
    };
    let first = rolled_back(&mut rx);
    assert_eq!(first.await, 1);
    // no hot loop: without the clock moving, no new attempt starts
    for _ in 0..500 {
        tokio::task::yield_now().await;
    }
    assert_eq!(f.model.set_secrets.lock().unwrap().len(), 1);
    let second = tokio::spawn(rolled_back(&mut rx));
    tokio::task::yield_now().await;
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(second.await.unwrap(), 2);
    assert_eq!(f.model.set_secrets.lock().unwrap().len(), 2);
    assert!(f.staged().await.current.is_none());
}

#[tokio::test]
async fn rotation_steps_land_in_the_audit_chain() {
    use strongroom::audit::{AuditLog, MemorySink, Operation};
    let f = Fixture::new(false).await;
    let sink = Arc::new(MemorySink::new());
    let log = Arc::new(
        AuditLog::new(
            SecretBytes::new(vec![6; 32]),
            vec![sink.clone()],
            Arc::new(f.clock.clone()),
        )
        .unwrap(),
    );
    let engine = f
        .open(RotationOptions {
            audit: Some(log.clone()),
            ..fast_options()
        })
        .await;
    engine.rotate_now().await.unwrap();
    let records = sink.records().unwrap();
    assert_eq!(records.len(), 8);
    assert!(
        records
            .iter()
            .all(|r| r.event.operation == Operation::Rotate)
    );
    assert!(records.iter().all(|r| r.event.version == Some(1)));
    assert!(
        records[0]
            .event
            .request_id
            .contains("CreatePending:started")
    );
    assert!(records[7].event.request_id.contains("Promote:completed"));
    // the chain verifies, and the secret is not in it
    let secret = f.staged().await.current.unwrap();
    let secret_text = String::from_utf8_lossy(secret.secret().expose_secret()).into_owned();
    for r in &records {
        assert!(!r.to_json_line().unwrap().contains(&secret_text));
    }
    strongroom::audit::verify(
        records.iter().cloned(),
        &SecretBytes::new(vec![6; 32]),
        None,
        Some(&log.head().await),
    )
    .unwrap();
}

/// Moves the clock by `by` and waits (without sleeping) until `holder`'s
/// heartbeat has renewed the lock to `ttl` from the new time.
async fn advance_while_locked(f: &Fixture, holder: &RotationEngine, by: Duration, ttl: Duration) {
    f.clock.advance(by);
    let want = f.clock.now() + ttl;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let locked = holder.status().await.unwrap().locked;
        if locked.as_ref().is_some_and(|(_, until)| *until == want) {
            assert_eq!(locked.unwrap().0, holder.owner_id());
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lock not renewed: {locked:?}"
        );
        tokio::task::yield_now().await;
    }
}

fn short_lock(owner: &str) -> RotationOptions {
    RotationOptions {
        lock_ttl: Duration::from_secs(15),
        owner_id: Some(owner.into()),
        ..fast_options()
    }
}

#[tokio::test]
async fn the_default_lock_is_short() {
    assert_eq!(RotationOptions::default().lock_ttl, Duration::from_secs(15));
}

/// A target step that runs four times longer than the lock keeps the lock:
/// the holder's heartbeat renews it, and another process stays out.
#[tokio::test]
async fn a_heartbeat_keeps_the_lock_through_a_long_step() {
    let f = Fixture::new(false).await;
    let a = Arc::new(f.open(short_lock("proc-a")).await);
    let b = f.open(short_lock("proc-b")).await;
    a.rotate_now().await.unwrap();
    f.model.block_set.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let task = tokio::spawn(async move { a2.rotate_now().await });
    f.model.entered.notified().await;
    let ttl = Duration::from_secs(15);
    for _ in 0..10 {
        advance_while_locked(&f, &a, Duration::from_secs(6), ttl).await;
        assert!(matches!(
            rotation_err(b.resume().await.unwrap_err()),
            RotationError::Busy { ref owner, .. } if owner == "proc-a"
        ));
    }
    f.model.block_set.store(false, Ordering::SeqCst);
    f.model.release.notify_one();
    assert_eq!(task.await.unwrap().unwrap().promoted, Some(2));
    let st = b.status().await.unwrap();
    assert_eq!((st.current, st.locked), (Some(2), None));
    f.assert_current_works().await;
}

/// The holder dies in the middle of setting the new credential: another
/// process takes the lock once it lapses (one TTL, not minutes) and
/// completes the rotation forward from the recorded step.
#[tokio::test]
async fn a_dead_holder_is_replaced_within_one_lock_ttl() {
    let f = Fixture::new(false).await;
    let a = Arc::new(f.open(short_lock("proc-a")).await);
    let b = f.open(short_lock("proc-b")).await;
    a.rotate_now().await.unwrap();
    f.model.block_set.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let task = tokio::spawn(async move { a2.rotate_now().await });
    f.model.entered.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    drop(a);
    f.model.block_set.store(false, Ordering::SeqCst);
    let st = b.status().await.unwrap();
    assert_eq!(st.in_flight, Some((RotationStep::SetInTarget, 2)));
    let until = st.locked.unwrap().1;
    assert_eq!(until, f.clock.now() + Duration::from_secs(15));
    f.clock.advance(Duration::from_secs(14));
    assert!(matches!(
        rotation_err(b.resume().await.unwrap_err()),
        RotationError::Busy { .. }
    ));
    f.clock.advance(Duration::from_secs(1));
    let r = b.resume().await.unwrap();
    assert_eq!(r.promoted, Some(2));
    let st = b.status().await.unwrap();
    assert_eq!((st.current, st.in_flight, st.locked), (Some(2), None, None));
    f.assert_current_works().await;
}

/// A process restarted with the same owner id takes its lock back at once
/// and finishes what it was doing; a process with another id waits.
#[tokio::test]
async fn a_restarted_holder_takes_its_own_lock_back_at_once() {
    let f = Fixture::new(false).await;
    let a = Arc::new(f.open(short_lock("node-1")).await);
    a.rotate_now().await.unwrap();
    f.model.block_set.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let task = tokio::spawn(async move { a2.rotate_now().await });
    f.model.entered.notified().await;
    task.abort();
    let _ = task.await;
    drop(a);
    f.model.block_set.store(false, Ordering::SeqCst);
    let other = f.open(short_lock("node-2")).await;
    assert!(matches!(
        rotation_err(other.resume().await.unwrap_err()),
        RotationError::Busy { ref owner, .. } if owner == "node-1"
    ));
    let restarted = f.open(short_lock("node-1")).await;
    let r = restarted.resume().await.unwrap();
    assert_eq!(r.promoted, Some(2));
    f.assert_current_works().await;
}

/// Importing a current credential releases the lock when it is done.
#[tokio::test]
async fn import_current_releases_its_lock() {
    let f = Fixture::new(false).await;
    let a = f.open(short_lock("proc-a")).await;
    f.model
        .passwords
        .lock()
        .unwrap()
        .insert("app_a".into(), b"existing".to_vec());
    a.import_current("app_a", SecretBytes::new(b"existing".to_vec()))
        .await
        .unwrap();
    assert_eq!(a.status().await.unwrap().locked, None);
    let b = f.open(short_lock("proc-b")).await;
    assert_eq!(b.rotate_now().await.unwrap().promoted, Some(2));
}

/// Another process's schedule, started while the holder is alive and
/// renewing, takes the rotation over one lock TTL after the holder dies
/// (not after the failure backoff) and finishes it.
#[tokio::test]
async fn a_schedule_takes_over_a_dead_holders_rotation() {
    let f = Fixture::new(false).await;
    let a = Arc::new(f.open(short_lock("proc-a")).await);
    a.rotate_now().await.unwrap();
    f.model.block_set.store(true, Ordering::SeqCst);
    let a2 = a.clone();
    let task = tokio::spawn(async move { a2.rotate_now().await });
    f.model.entered.notified().await;
    let b = Arc::new(
        f.open(RotationOptions {
            backoff_max: Duration::from_secs(600),
            ..short_lock("proc-b")
        })
        .await,
    );
    let mut events = b.subscribe();
    let _schedule = b.spawn_schedule();
    let ttl = Duration::from_secs(15);
    for _ in 0..5 {
        advance_while_locked(&f, &a, Duration::from_secs(6), ttl).await;
        // let b's schedule wake, find the lock renewed and go back to sleep
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }
    task.abort();
    let _ = task.await;
    drop(a);
    f.model.block_set.store(false, Ordering::SeqCst);
    f.clock.advance(ttl);
    let promoted = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.step == RotationStep::Promote && e.outcome == StepOutcome::Completed {
                return e.version;
            }
        }
    })
    .await
    .expect("b's schedule finished the rotation");
    assert_eq!(promoted, 2);
    f.assert_current_works().await;
}

#[tokio::test]
async fn a_schedule_applied_from_files_by_another_process_drives_the_engine() {
    let f = Fixture::new(false).await;
    // the engine's own options: no interval, a 600 s grace period
    let engine = Arc::new(f.open(fast_options()).await);
    engine.rotate_now().await.unwrap();
    let mut rx = engine.subscribe();
    let handle = engine.spawn_schedule();

    // another process applies a schedule from declaration files
    let storage: DynStorage = Arc::new(f.faulty.clone());
    let door = Strongroom::unseal(storage, &protector(), self_options(&f.clock))
        .await
        .unwrap()
        .dangerous_traced("operator")
        .await
        .unwrap();
    let files = format!("[rotation.\"{NAME}\"]\ninterval = \"1h\"\ngrace_period = \"2m\"\n");
    let declared =
        strongroom::declarative::Declared::from_toml_str(&files, "rotation.toml").unwrap();
    let plan = strongroom::declarative::plan(&door, &declared)
        .await
        .unwrap();
    assert!(
        plan.to_string()
            .contains(&format!("+ rotation schedule {NAME:?}")),
        "{plan}"
    );
    strongroom::declarative::apply(&door, &plan, door.handle())
        .await
        .unwrap();
    assert!(
        strongroom::declarative::plan(&door, &declared)
            .await
            .unwrap()
            .is_empty()
    );

    // the engine looks again within SCHEDULE_RECHECK, then rotates an hour
    // after the last promotion and keeps `previous` for the applied two
    // minutes, not its own ten
    f.clock.advance(strongroom::rotation::SCHEDULE_RECHECK);
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(wait_for(&mut rx, RotationStep::Promote).await, 2);
    f.clock.advance(Duration::from_secs(120));
    assert_eq!(wait_for(&mut rx, RotationStep::RevokePrevious).await, 1);
    drop(handle);
    f.assert_current_works().await;
}

//! A rotation member: one process rotating an API key (credential
//! `chaos/api-key`) with a `RotationEngine` (default options, so the
//! default lock TTL, and owner id `<owner>`). The API-key verifier is this
//! process's own (it is synced from the stored versions at start).
//!
//! Modes:
//! - `init`: rotates once (version 1 becomes current) and exits.
//! - `hold`: starts a rotation whose `set` step never returns (a target
//!   that hangs); prints `set-entered <version>` when it is in that step.
//!   Runs until killed.
//! - `takeover [fail-test]`: runs the engine's schedule (which resumes an
//!   interrupted rotation once the holder's lock lapses); with `fail-test`
//!   the target refuses the new key, so the rotation is rolled back.
//!   Prints `busy <owner>` when it finds another process holding the lock,
//!   every step event as `event <step> <version> <outcome>`, and `done
//!   current=<v> rolled-back=<bool>` once the interrupted rotation it saw
//!   has no step in flight and the lock is free, then exits.
//!
//! Usage: `rotation_member <store-spec> <key-file> <owner> <mode> [fail-test]`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strongroom::rotation::{
    ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, Credential, RotationContext, RotationOptions,
    Rotator, StepOutcome, TargetError,
};

const NAME: &str = "chaos/api-key";

/// The API-key rotator, with a `set` that can hang and a `test` that can
/// refuse.
#[derive(Debug)]
struct ChaosRotator {
    inner: ApiKeyRotator,
    hang_in_set: bool,
    fail_test: bool,
}

#[async_trait]
impl Rotator for ChaosRotator {
    fn kind(&self) -> &'static str {
        "chaos-api-key"
    }

    async fn create(&self, ctx: &RotationContext<'_>) -> Result<Credential, TargetError> {
        self.inner.create(ctx).await
    }

    async fn set(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> Result<(), TargetError> {
        if self.hang_in_set {
            println!("set-entered {}", pending.version());
            std::future::pending::<()>().await;
        }
        self.inner.set(ctx, pending).await
    }

    async fn test(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> Result<(), TargetError> {
        if self.fail_test {
            return Err(TargetError::permanent(
                "the chaos target refuses the new key",
            ));
        }
        self.inner.test(ctx, pending).await
    }

    async fn promote(
        &self,
        ctx: &RotationContext<'_>,
        promoted: &Credential,
    ) -> Result<(), TargetError> {
        self.inner.promote(ctx, promoted).await
    }

    async fn rollback(
        &self,
        ctx: &RotationContext<'_>,
        failed: &Credential,
    ) -> Result<(), TargetError> {
        self.inner.rollback(ctx, failed).await
    }

    async fn revoke(&self, ctx: &RotationContext<'_>, old: &Credential) -> Result<(), TargetError> {
        self.inner.revoke(ctx, old).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (spec, key, owner, mode) = (&args[1], PathBuf::from(&args[2]), &args[3], &args[4]);
    let fail_test = args.get(5).is_some_and(|a| a == "fail-test");
    let sr = strongroom_chaos::open_store(spec, &key).await;
    let verifier = Arc::new(ApiKeyVerifier::new().unwrap());
    verifier.sync(&sr.load_staged(NAME).await.unwrap()).unwrap();
    let rotator = ChaosRotator {
        inner: ApiKeyRotator::new(ApiKeyFormat::base62("sk_chaos_", 32), verifier),
        hang_in_set: mode == "hold",
        fail_test,
    };
    let options = RotationOptions {
        owner_id: Some(owner.clone()),
        ..RotationOptions::default()
    };
    let engine = Arc::new(
        sr.rotation_engine(NAME, Arc::new(rotator), options)
            .await
            .unwrap(),
    );
    match mode.as_str() {
        "init" => {
            let r = engine.rotate_now().await.unwrap();
            println!("initialised current={:?}", r.promoted);
        }
        "hold" => {
            println!("ready");
            let r = engine.rotate_now().await;
            panic!("the hanging rotation returned: {r:?}");
        }
        "takeover" => {
            let mut events = engine.subscribe();
            tokio::spawn(async move {
                while let Ok(e) = events.recv().await {
                    let outcome = match e.outcome {
                        StepOutcome::Started => "started".to_owned(),
                        StepOutcome::Completed => "completed".to_owned(),
                        other => format!("{other:?}").replace(' ', "_"),
                    };
                    println!("event {:?} {} {outcome}", e.step, e.version);
                }
            });
            let _schedule = engine.spawn_schedule();
            println!("ready");
            let mut said_busy = false;
            let mut seen_in_flight = false;
            loop {
                let st = engine.status().await.unwrap();
                match &st.locked {
                    Some((holder, _)) if holder != owner && !said_busy => {
                        println!("busy {holder}");
                        said_busy = true;
                    }
                    _ => {}
                }
                seen_in_flight |= st.in_flight.is_some();
                if seen_in_flight && st.in_flight.is_none() && st.locked.is_none() {
                    let rolled_back = st.history.last().is_some_and(|h| h.failed.is_some());
                    println!("done current={:?} rolled-back={rolled_back}", st.current);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

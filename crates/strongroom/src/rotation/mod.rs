//! Dual-credential rotation: a rotated credential has staged versions
//! `current`, `pending` and `previous`, and a [`RotationEngine`] moves a new
//! version through idempotent, write-ahead-recorded steps so that at every
//! instant at least one stored credential works in the target system.
//!
//! The steps of one rotation, each recorded in storage before it acts:
//!
//! 1. [`RotationStep::CreatePending`]: the [`Rotator`] makes a fresh
//!    credential; it is sealed and stored as `pending`.
//! 2. [`RotationStep::SetInTarget`]: the rotator installs it in the target
//!    system (a database role's password, a verifier's accepted keys).
//! 3. [`RotationStep::TestPending`]: the rotator checks that it works.
//! 4. [`RotationStep::Promote`]: `current` becomes `previous`, `pending`
//!    becomes `current`.
//! 5. After the grace period, [`RotationStep::RevokePrevious`].
//!
//! A step that fails is retried with exponential backoff (waiting on the
//! [`Clock`](crate::clock::Clock)) up to a bound; if setting or testing the pending credential
//! still fails, the rotation is rolled back ([`RotationStep::RollBack`]):
//! `current` is left untouched and working, the failed pending credential is
//! discarded, and its version number is never used again (a new attempt
//! generates a new secret under a new version). After a crash at any point,
//! [`RotationEngine::resume`] (or the next [`RotationEngine::rotate_now`])
//! continues the recorded step.
//!
//! Storage layout for a credential named `name`:
//!
//! - `rot/<name>`: the plain state record (stage pointers, history, the
//!   write-ahead step and the rotation lock), JSON, format version 1;
//! - `s/rot/<name>/v/<n>`: version `n`, sealed with context
//!   (`rot/<name>`, `n`).
//!
//! Only one rotation of a credential runs at a time, across processes: the
//! state record carries a lock (owner id and expiry by the clock) and every
//! write is conditional on the record not having changed. The lock is short
//! ([`RotationOptions::lock_ttl`], 15 s by default) and renewed by a
//! heartbeat while a step runs, so a process killed mid-rotation is replaced
//! within one TTL: another engine's [`RotationEngine::resume`] (or its
//! schedule) takes the lapsed lock and finishes or rolls back the recorded
//! step, and a process restarted with the same
//! [`RotationOptions::owner_id`] takes its own lock back at once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> strongroom::Result<()> {
//! use std::sync::Arc;
//! use strongroom::rotation::{ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, Matched,
//!     RotationEngine, RotationOptions};
//! # let storage = Arc::new(strongroom::storage::MemoryStorage::new());
//! # let protector = strongroom::protector::SoftwareProtector::from_key(
//! #     strongroom::SecretBytes::new(vec![7; 32]))?;
//! # let sr = strongroom::Strongroom::init(storage, &protector, Default::default()).await?;
//! let verifier = Arc::new(ApiKeyVerifier::new()?);
//! let rotator = ApiKeyRotator::new(ApiKeyFormat::base62("sk_live_", 32), verifier.clone());
//! // an engine's own methods are unchecked: it is built through the door
//! // (wrap it in `Handle::rotation` to check a principal's policies)
//! let engine = sr.dangerous_traced("rotation-setup").await?
//!     .rotation_engine("payments/api-key", Arc::new(rotator), RotationOptions::default())
//!     .await?;
//! engine.rotate_now().await?;                       // version 1 becomes current
//! let key = engine.staged().await?.current.expect("a current key");
//! assert_eq!(verifier.verify(key.secret().expose_secret()), Matched::Current);
//! engine.rotate_now().await?;                       // version 2; 1 is previous
//! assert_eq!(verifier.verify(key.secret().expose_secret()), Matched::Previous);
//! # Ok(()) }
//! ```
//!
//! # Files
//!
//! `model` (stages, steps, credentials, status, events), `hooks` (the
//! [`Rotator`], the audit hook, the options), `engine` (the engine and its
//! stored state), `operations` (its public operations), `steps` (the
//! session lock, writes and each step with its retries), `schedule` (the
//! background schedule, and rotation steps in the audit log), `apikey`
//! (API keys as a rotation target) and `error`.

mod apikey;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};
use zeroize::Zeroizing;

use crate::clock::Timestamp;
use crate::seal::SealContext;
use crate::storage::BatchOp;
use crate::{Error, Result, SecretBytes, Strongroom};

pub use apikey::{ApiKeyEncoding, ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, Matched};

/// Storage prefix of the plain rotation state records.
pub const STATE_PREFIX: &str = "rot/";
/// Storage prefix of the sealed credential versions.
pub const SEALED_VERSION_PREFIX: &str = "s/rot/";
/// The longest a schedule ([`RotationEngine::spawn_schedule`]) waits on the
/// clock before it looks at the stored state and applied schedule again.
pub const SCHEDULE_RECHECK: Duration = Duration::from_secs(60);

const STATE_FORMAT: u32 = 1;
const CREDENTIAL_FORMAT: u8 = 1;

mod engine;
mod error;
mod hooks;
mod model;
mod operations;
mod schedule;
mod steps;

#[cfg(test)]
mod tests;

#[cfg(feature = "fuzzing")]
pub(crate) use engine::State;
pub(crate) use engine::load_staged;
use engine::{Lock, Op, Session, load_version, random_owner, read_state, sealed_key, staged_from};
pub use engine::{RotationEngine, RotationReport, validate_name};
pub use error::RotationError;
pub use hooks::{RotationAudit, RotationContext, RotationOptions, Rotator, TargetError};
pub use model::{
    Credential, RotationEvent, RotationStage, RotationStatus, RotationStep, StagedCredentials,
    StepOutcome, VersionInfo,
};
pub use schedule::ScheduleHandle;

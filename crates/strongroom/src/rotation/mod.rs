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
//! [`Clock`]) up to a bound; if setting or testing the pending credential
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

const STATE_FORMAT: u32 = 1;
const CREDENTIAL_FORMAT: u8 = 1;

/// Errors of the dual-credential rotation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The credential name cannot be used.
    #[error("invalid credential name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Another process (or task) is rotating this credential.
    #[error(
        "credential {credential:?} is being rotated by {owner:?} until {until}; retry after that"
    )]
    Busy {
        /// The credential.
        credential: String,
        /// The lock owner's id.
        owner: String,
        /// When the lock expires if not renewed.
        until: Timestamp,
    },
    /// The rotation state changed under this engine (its lock expired and
    /// another process took over); this engine stopped without acting further.
    #[error("lost the rotation lock of credential {credential:?}: another process took over")]
    LostLock {
        /// The credential.
        credential: String,
    },
    /// A step against the target system kept failing; the step is recorded
    /// and [`RotationEngine::resume`] retries it.
    #[error(
        "credential {credential:?} version {version}: {step} failed after {attempts} attempt(s): {message}"
    )]
    StepFailed {
        /// The credential.
        credential: String,
        /// The version being worked on.
        version: u64,
        /// The failing step.
        step: RotationStep,
        /// How many attempts were made.
        attempts: u32,
        /// The target system's error (never contains a secret).
        message: String,
    },
    /// The new version could not be set or tested and the rotation was
    /// rolled back: `current` is untouched and the failed version discarded.
    #[error(
        "credential {credential:?} version {version} failed at {step} and was rolled back ({message}); the current version is unchanged"
    )]
    RolledBack {
        /// The credential.
        credential: String,
        /// The discarded version.
        version: u64,
        /// The step that failed.
        step: RotationStep,
        /// The target system's error (never contains a secret).
        message: String,
    },
    /// The credential already has a current version (for `import_current`).
    #[error("credential {credential:?} already has a current version; rotate instead")]
    AlreadyInitialized {
        /// The credential.
        credential: String,
    },
    /// The stored state record cannot be read.
    #[error("rotation state of credential {credential:?} is corrupt: {reason}")]
    CorruptState {
        /// The credential.
        credential: String,
        /// What is wrong.
        reason: String,
    },
    /// The audit hook refused to record a step, so the step was not run.
    #[error("the audit hook refused {step} of credential {credential:?}: {message}")]
    AuditRefused {
        /// The credential.
        credential: String,
        /// The step.
        step: RotationStep,
        /// The hook's error.
        message: String,
    },
}

/// A stage a credential version can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationStage {
    /// Created and being set and tested; not yet handed to clients.
    Pending,
    /// The version clients use.
    Current,
    /// The version before `current`, still valid during the grace period.
    Previous,
}

/// One step of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RotationStep {
    /// Generate and store the pending credential.
    CreatePending,
    /// Install the pending credential in the target system.
    SetInTarget,
    /// Check that the pending credential works.
    TestPending,
    /// Make pending current and current previous.
    Promote,
    /// Revoke the previous credential after the grace period.
    RevokePrevious,
    /// Undo a pending credential that could not be set or tested.
    RollBack,
}

impl fmt::Display for RotationStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreatePending => "create-pending",
            Self::SetInTarget => "set-in-target",
            Self::TestPending => "test-pending",
            Self::Promote => "promote",
            Self::RevokePrevious => "revoke-previous",
            Self::RollBack => "roll-back",
        })
    }
}

/// One version of a rotated credential: a non-secret identity (a user or
/// role name, a key id; may be empty) and the secret.
#[derive(Clone)]
pub struct Credential {
    version: u64,
    identity: String,
    secret: SecretBytes,
}

impl Credential {
    /// A credential. The engine assigns the version it stores it under.
    pub fn new(version: u64, identity: impl Into<String>, secret: SecretBytes) -> Self {
        Self {
            version,
            identity: identity.into(),
            secret,
        }
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The non-secret identity (for example a database role name).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The secret.
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    pub(crate) fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let id = self.identity.as_bytes();
        let len = u16::try_from(id.len())
            .map_err(|_| Error::InvalidArgument("credential identity longer than 65535".into()))?;
        let mut out = Zeroizing::new(Vec::with_capacity(3 + id.len() + self.secret.len()));
        out.push(CREDENTIAL_FORMAT);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(self.secret.expose_secret());
        Ok(out)
    }

    pub(crate) fn decode(key: &str, version: u64, plain: &SecretBytes) -> Result<Self> {
        let bad = |r: &str| Error::corrupt(key, r.to_owned());
        let b = plain.expose_secret();
        let (&format, rest) = b.split_first().ok_or_else(|| bad("empty credential"))?;
        if format != CREDENTIAL_FORMAT {
            return Err(bad("unsupported credential format"));
        }
        let len = rest.get(..2).ok_or_else(|| bad("truncated credential"))?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let id = rest
            .get(2..2 + len)
            .ok_or_else(|| bad("truncated credential"))?;
        let identity = std::str::from_utf8(id)
            .map_err(|_| bad("credential identity is not UTF-8"))?
            .to_owned();
        let secret = SecretBytes::copy_from(rest.get(2 + len..).unwrap_or_default());
        Ok(Self {
            version,
            identity,
            secret,
        })
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("version", &self.version)
            .field("identity", &self.identity)
            .field("secret", &self.secret)
            .finish()
    }
}

/// The stored versions of a credential, by stage.
#[derive(Clone, Debug, Default)]
pub struct StagedCredentials {
    /// The version being introduced, if a rotation is in flight.
    pub pending: Option<Credential>,
    /// The version clients should use.
    pub current: Option<Credential>,
    /// The version before, valid until the grace period ends.
    pub previous: Option<Credential>,
}

impl StagedCredentials {
    /// The stored versions in the order a client should try them after a
    /// login failure: pending (it may already be set in the target), current,
    /// previous.
    pub fn in_try_order(&self) -> impl Iterator<Item = &Credential> {
        [&self.pending, &self.current, &self.previous]
            .into_iter()
            .flatten()
    }
}

/// What happened to one version (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: u64,
    /// Its non-secret identity.
    pub identity: String,
    /// When it was created (stored as pending).
    pub created: Timestamp,
    /// When it became current.
    pub promoted: Option<Timestamp>,
    /// When it stopped being current (became previous).
    pub superseded: Option<Timestamp>,
    /// When it was revoked in the target.
    pub revoked: Option<Timestamp>,
    /// When it was discarded after failing to set or test.
    pub failed: Option<Timestamp>,
}

/// The non-secret state of a rotated credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationStatus {
    /// The pending version, if any.
    pub pending: Option<u64>,
    /// The current version, if any.
    pub current: Option<u64>,
    /// The previous version, if any.
    pub previous: Option<u64>,
    /// When the previous version is due to be revoked.
    pub revoke_previous_at: Option<Timestamp>,
    /// When the current version was promoted.
    pub last_promoted: Option<Timestamp>,
    /// The recorded step in flight, if a rotation was interrupted or is running.
    pub in_flight: Option<(RotationStep, u64)>,
    /// The rotation lock as stored: its owner id and when it lapses unless
    /// renewed (it may already have lapsed).
    pub locked: Option<(String, Timestamp)>,
    /// Recent versions, oldest first (bounded).
    pub history: Vec<VersionInfo>,
}

/// What a step did, in a [`RotationEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// The step is recorded and about to act.
    Started,
    /// The step finished.
    Completed,
    /// The step failed and will be retried.
    Retrying {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The error (never a secret).
        error: String,
    },
    /// The step failed for good.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The error (never a secret).
        error: String,
    },
}

/// A rotation event: which step, for which version, with what outcome.
/// Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationEvent {
    /// The credential name.
    pub credential: String,
    /// The version the step works on.
    pub version: u64,
    /// The step.
    pub step: RotationStep,
    /// What happened.
    pub outcome: StepOutcome,
    /// When.
    pub at: Timestamp,
}

/// The hook the audit trail connects to. Called for every event before the
/// engine acts on it; an error refuses the step (fail closed).
#[async_trait]
pub trait RotationAudit: Send + Sync + fmt::Debug {
    /// Records one event.
    async fn record(&self, event: &RotationEvent) -> std::result::Result<(), String>;
}

/// An error from a [`Rotator`]. Its message must never contain a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    message: String,
    retryable: bool,
}

impl TargetError {
    /// An error worth retrying (a timeout, a lost connection).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// An error that retrying will not fix (a refused permission).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a [`Rotator`] is told about the rotation it takes part in.
#[derive(Debug)]
pub struct RotationContext<'a> {
    /// The credential name.
    pub credential: &'a str,
    /// The version being worked on.
    pub version: u64,
    /// The current version, if any.
    pub current: Option<&'a Credential>,
    /// The previous version, if any.
    pub previous: Option<&'a Credential>,
}

/// How to rotate a credential in one kind of target system. Every method
/// must be idempotent: after a crash the engine repeats the recorded step.
#[async_trait]
pub trait Rotator: Send + Sync + fmt::Debug {
    /// A short name of the target kind ("postgres-alternating", "api-key").
    fn kind(&self) -> &'static str;

    /// Generates a fresh credential (no effect on the target yet).
    async fn create(
        &self,
        ctx: &RotationContext<'_>,
    ) -> std::result::Result<Credential, TargetError>;

    /// Installs `pending` in the target system.
    async fn set(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> std::result::Result<(), TargetError>;

    /// Checks that `pending` works in the target system.
    async fn test(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> std::result::Result<(), TargetError>;

    /// Called when `promoted` becomes current (`ctx.current` is the version
    /// it replaces). Default: nothing to do.
    async fn promote(
        &self,
        _ctx: &RotationContext<'_>,
        _promoted: &Credential,
    ) -> std::result::Result<(), TargetError> {
        Ok(())
    }

    /// Undoes `failed`, a pending credential that could not be set or
    /// tested, so that `ctx.current` works. Default: [`Rotator::revoke`].
    async fn rollback(
        &self,
        ctx: &RotationContext<'_>,
        failed: &Credential,
    ) -> std::result::Result<(), TargetError> {
        self.revoke(ctx, failed).await
    }

    /// Makes `old` stop working in the target (it is no longer stored).
    async fn revoke(
        &self,
        ctx: &RotationContext<'_>,
        old: &Credential,
    ) -> std::result::Result<(), TargetError>;
}

/// Settings of a [`RotationEngine`].
#[derive(Clone, Debug)]
pub struct RotationOptions {
    /// How long `previous` stays valid after a promotion. Default 1 hour.
    pub grace_period: Duration,
    /// Rotate automatically this long after the last promotion (used by
    /// [`RotationEngine::spawn_schedule`]). Default none (on demand only).
    pub interval: Option<Duration>,
    /// Attempts per step before giving up (at least 1). Default 5.
    pub max_attempts: u32,
    /// The first retry delay; doubles per attempt. Default 1 s.
    pub backoff_initial: Duration,
    /// The longest retry delay. Default 60 s.
    pub backoff_max: Duration,
    /// How long a rotation lock lasts without renewal. The holder renews it
    /// at every step and, while a step runs, every third of this (a
    /// heartbeat), so only a dead or stalled holder loses it. Another engine
    /// takes over a lapsed lock and finishes or rolls back the recorded
    /// step. Default 15 s.
    pub lock_ttl: Duration,
    /// The lock owner id (a stable member id, such as the host or pod
    /// name). Default: random per engine. A process restarting with the
    /// same id takes over its own unexpired lock at once. Two live engines
    /// must not share an id.
    pub owner_id: Option<String>,
    /// Versions kept in the history. Default 64.
    pub history_limit: usize,
    /// The audit hook, called with every event before the engine acts.
    pub audit: Option<Arc<dyn RotationAudit>>,
}

impl Default for RotationOptions {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(3600),
            interval: None,
            max_attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            lock_ttl: Duration::from_secs(15),
            owner_id: None,
            history_limit: 64,
            audit: None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    format: u32,
    next_version: u64,
    current: Option<u64>,
    pending: Option<u64>,
    previous: Option<u64>,
    revoke_after: Option<Timestamp>,
    last_promoted: Option<Timestamp>,
    op: Option<Op>,
    lock: Option<Lock>,
    history: Vec<VersionInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Op {
    step: RotationStep,
    version: u64,
    /// Why a roll-back is running (the step that failed).
    #[serde(default)]
    cause: Option<RotationStep>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Lock {
    owner: String,
    expires: Timestamp,
}

impl State {
    fn info_mut(&mut self, version: u64) -> Option<&mut VersionInfo> {
        self.history.iter_mut().rev().find(|h| h.version == version)
    }
}

/// What one call to the engine did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// The version promoted to current, if any.
    pub promoted: Option<u64>,
    /// The previous version revoked, if any.
    pub revoked: Option<u64>,
    /// A version rolled back (the rotation failed), with the failed step.
    pub rolled_back: Option<(u64, RotationStep)>,
}

/// Runs rotations of one credential. Cheap to share behind an `Arc`.
pub struct RotationEngine {
    sr: Strongroom,
    name: String,
    state_key: String,
    context_path: String,
    rotator: Arc<dyn Rotator>,
    options: RotationOptions,
    owner: String,
    events: broadcast::Sender<RotationEvent>,
    local: tokio::sync::Mutex<()>,
    wake: Notify,
    last_error: std::sync::Mutex<Option<String>>,
}

impl fmt::Debug for RotationEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationEngine")
            .field("credential", &self.name)
            .field("rotator", &self.rotator.kind())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Checks a credential name: 1 to 200 bytes of `a-z 0-9 - _ .` in
/// `/`-separated segments, none empty, `.` or `..`.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(RotationError::InvalidName {
            name: name.chars().take(64).collect(),
            reason,
        }
        .into())
    };
    if name.is_empty() || name.len() > 200 {
        return bad("must be 1 to 200 bytes");
    }
    if !name.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'/')
    }) {
        return bad("use only a-z, 0-9, '-', '_', '.' and '/'");
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("empty, '.' or '..' segment");
    }
    Ok(())
}

fn sealed_key(name: &str, version: u64) -> String {
    format!("{SEALED_VERSION_PREFIX}{name}/v/{version}")
}

fn random_owner() -> Result<String> {
    Ok(format!(
        "engine-{}",
        hex::encode(SecretBytes::random(8)?.expose_secret())
    ))
}

/// Reads the stored versions of credential `name` without an engine (for a
/// pool in a process that does not rotate).
pub(crate) async fn load_staged(sr: &Strongroom, name: &str) -> Result<StagedCredentials> {
    validate_name(name)?;
    let state = read_state(sr, name).await?.1;
    staged_from(sr, name, &state).await
}

async fn read_state(sr: &Strongroom, name: &str) -> Result<(Option<Vec<u8>>, State)> {
    let key = format!("{STATE_PREFIX}{name}");
    let raw = sr.barrier().get(&key).await?;
    let state = match &raw {
        None => State {
            format: STATE_FORMAT,
            next_version: 1,
            ..State::default()
        },
        Some(bytes) => {
            let s: State =
                serde_json::from_slice(bytes).map_err(|e| RotationError::CorruptState {
                    credential: name.to_owned(),
                    reason: e.to_string(),
                })?;
            if s.format != STATE_FORMAT {
                return Err(RotationError::CorruptState {
                    credential: name.to_owned(),
                    reason: format!("unsupported state format {}", s.format),
                }
                .into());
            }
            s
        }
    };
    Ok((raw, state))
}

async fn load_version(sr: &Strongroom, name: &str, version: u64) -> Result<Option<Credential>> {
    let key = sealed_key(name, version);
    let path = format!("{STATE_PREFIX}{name}");
    let Some(plain) = sr
        .get_sealed(&key, &SealContext::new(&path, version))
        .await?
    else {
        return Ok(None);
    };
    Credential::decode(&key, version, &plain).map(Some)
}

async fn staged_from(sr: &Strongroom, name: &str, state: &State) -> Result<StagedCredentials> {
    let mut out = StagedCredentials::default();
    if let Some(v) = state.pending {
        out.pending = load_version(sr, name, v).await?;
    }
    if let Some(v) = state.current {
        out.current = load_version(sr, name, v).await?;
    }
    if let Some(v) = state.previous {
        out.previous = load_version(sr, name, v).await?;
    }
    Ok(out)
}

/// A locked, in-progress session over the state record.
struct Session {
    raw: Option<Vec<u8>>,
    state: State,
}

impl RotationEngine {
    /// An engine for credential `name` in `sr`, rotated by `rotator`. Does
    /// not act: call [`RotationEngine::resume`] after a restart.
    pub(crate) async fn open(
        sr: Strongroom,
        name: &str,
        rotator: Arc<dyn Rotator>,
        options: RotationOptions,
    ) -> Result<Self> {
        validate_name(name)?;
        let owner = match &options.owner_id {
            Some(o) => o.clone(),
            None => random_owner()?,
        };
        let (events, _) = broadcast::channel(256);
        // Fail early on a corrupt state record.
        read_state(&sr, name).await?;
        Ok(Self {
            state_key: format!("{STATE_PREFIX}{name}"),
            context_path: format!("{STATE_PREFIX}{name}"),
            name: name.to_owned(),
            sr,
            rotator,
            options,
            owner,
            events,
            local: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            last_error: std::sync::Mutex::new(None),
        })
    }

    /// The credential name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock owner id of this engine.
    pub fn owner_id(&self) -> &str {
        &self.owner
    }

    /// Events for every step (never secrets). Slow receivers miss old events.
    pub fn subscribe(&self) -> broadcast::Receiver<RotationEvent> {
        self.events.subscribe()
    }

    /// The stored versions by stage.
    pub async fn staged(&self) -> Result<StagedCredentials> {
        let state = read_state(&self.sr, &self.name).await?.1;
        staged_from(&self.sr, &self.name, &state).await
    }

    /// The non-secret state.
    pub async fn status(&self) -> Result<RotationStatus> {
        let s = read_state(&self.sr, &self.name).await?.1;
        Ok(RotationStatus {
            pending: s.pending,
            current: s.current,
            previous: s.previous,
            revoke_previous_at: s.previous.and(s.revoke_after),
            last_promoted: s.last_promoted,
            in_flight: s.op.map(|o| (o.step, o.version)),
            locked: s.lock.map(|l| (l.owner, l.expires)),
            history: s.history,
        })
    }

    /// Stores an existing credential (for example today's database password)
    /// as `current` after testing it in the target. Refused if a current
    /// version exists.
    pub async fn import_current(
        &self,
        identity: impl Into<String>,
        secret: SecretBytes,
    ) -> Result<u64> {
        let _local = self.local.lock().await;
        let mut s = self.acquire().await?;
        if s.state.current.is_some() || s.state.op.is_some() {
            self.release(&mut s).await?;
            return Err(RotationError::AlreadyInitialized {
                credential: self.name.clone(),
            }
            .into());
        }
        let version = s.state.next_version;
        let cred = Credential::new(version, identity, secret);
        let ctx = RotationContext {
            credential: &self.name,
            version,
            current: None,
            previous: None,
        };
        let tested = self
            .holding(
                &mut s,
                self.attempt(RotationStep::TestPending, version, || {
                    self.rotator.test(&ctx, &cred)
                }),
            )
            .await?;
        if let Err((attempts, e)) = tested {
            self.release(&mut s).await?;
            return Err(self.step_failed(RotationStep::TestPending, version, attempts, &e));
        }
        let now = self.now();
        let op = self.store_version_op(&cred).await?;
        s.state.next_version = version + 1;
        s.state.current = Some(version);
        s.state.last_promoted = Some(now);
        s.state.history.push(VersionInfo {
            version,
            identity: cred.identity.clone(),
            created: now,
            promoted: Some(now),
            superseded: None,
            revoked: None,
            failed: None,
        });
        self.write(&mut s, vec![op]).await?;
        // The target learns that this version is current (an API-key
        // verifier starts accepting it; database rotators have nothing to do).
        let promoted = self
            .holding(
                &mut s,
                self.attempt(RotationStep::Promote, version, || {
                    self.rotator.promote(&ctx, &cred)
                }),
            )
            .await;
        let r = match promoted {
            Ok(Ok(())) => Ok(()),
            Ok(Err((attempts, e))) => {
                Err(self.step_failed(RotationStep::Promote, version, attempts, &e))
            }
            Err(e) => Err(e),
        };
        self.finish(&mut s, r).await?;
        self.emit(RotationStep::Promote, version, StepOutcome::Completed)
            .await?;
        self.wake.notify_one();
        Ok(version)
    }

    /// Rotates now: finishes any interrupted rotation, revokes a previous
    /// version still in its grace period (its slot is about to be reused),
    /// then creates, sets, tests and promotes a new version. Creates the
    /// first version if there is none. Fails with
    /// [`RotationError::RolledBack`] if the new version did not work (the
    /// current one is untouched).
    pub async fn rotate_now(&self) -> Result<RotationReport> {
        let r = self.rotate_inner().await;
        // tell the schedule (it recomputes its next deadline)
        self.wake.notify_one();
        r
    }

    /// [`RotationEngine::rotate_now`] without waking the schedule (which
    /// calls this itself).
    async fn rotate_inner(&self) -> Result<RotationReport> {
        let _local = self.local.lock().await;
        let mut s = self.acquire().await?;
        let mut report = RotationReport::default();
        let r = self.rotate_locked(&mut s, &mut report).await;
        self.finish(&mut s, r).await?;
        match report.rolled_back {
            Some((version, step)) => Err(RotationError::RolledBack {
                credential: self.name.clone(),
                version,
                step,
                message: self.take_last_error(),
            }
            .into()),
            None => Ok(report),
        }
    }

    async fn rotate_locked(&self, s: &mut Session, report: &mut RotationReport) -> Result<()> {
        self.drive(s, report).await?;
        if report.rolled_back.is_some() {
            return Ok(());
        }
        if let Some(prev) = s.state.previous {
            s.state.op = Some(Op {
                step: RotationStep::RevokePrevious,
                version: prev,
                cause: None,
            });
            self.write(s, vec![]).await?;
            self.drive(s, report).await?;
        }
        let version = s.state.next_version;
        s.state.next_version = version + 1;
        s.state.op = Some(Op {
            step: RotationStep::CreatePending,
            version,
            cause: None,
        });
        self.write(s, vec![]).await?;
        self.drive(s, report).await
    }

    /// Continues an interrupted rotation (after a crash), and revokes the
    /// previous version if its grace period is over. Returns what was done.
    pub async fn resume(&self) -> Result<RotationReport> {
        let r = self.resume_inner().await;
        self.wake.notify_one();
        r
    }

    async fn resume_inner(&self) -> Result<RotationReport> {
        let _local = self.local.lock().await;
        let mut report = RotationReport::default();
        let (_, st) = read_state(&self.sr, &self.name).await?;
        let revoke_due = st.previous.is_some()
            && st.revoke_after.is_some_and(|t| t <= self.now())
            && st.op.is_none();
        if st.op.is_none() && !revoke_due {
            return Ok(report);
        }
        let mut s = self.acquire().await?;
        let r = async {
            self.drive(&mut s, &mut report).await?;
            self.revoke_if_due(&mut s, &mut report).await
        }
        .await;
        self.finish(&mut s, r).await?;
        Ok(report)
    }

    /// Revokes the previous version if its grace period is over. Returns
    /// whether it did.
    pub async fn revoke_due(&self) -> Result<bool> {
        Ok(self.resume().await?.revoked.is_some())
    }

    async fn revoke_if_due(&self, s: &mut Session, report: &mut RotationReport) -> Result<()> {
        let Some(prev) = s.state.previous else {
            return Ok(());
        };
        if s.state.op.is_some() || s.state.revoke_after.is_some_and(|t| t > self.now()) {
            return Ok(());
        }
        s.state.op = Some(Op {
            step: RotationStep::RevokePrevious,
            version: prev,
            cause: None,
        });
        self.write(s, vec![]).await?;
        self.drive(s, report).await
    }

    /// Releases the lock after `r`; a storage failure while releasing is
    /// reported only if `r` succeeded (the lock then expires by itself).
    async fn finish(&self, s: &mut Session, r: Result<()>) -> Result<()> {
        match r {
            Ok(()) => self.release(s).await,
            Err(e @ Error::Rotation(RotationError::LostLock { .. })) => Err(e),
            Err(e) => {
                let _ = self.release(s).await;
                Err(e)
            }
        }
    }

    fn now(&self) -> Timestamp {
        self.sr.clock().now()
    }

    fn take_last_error(&self) -> String {
        self.last_error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_default()
    }

    async fn emit(&self, step: RotationStep, version: u64, outcome: StepOutcome) -> Result<()> {
        let event = RotationEvent {
            credential: self.name.clone(),
            version,
            step,
            outcome,
            at: self.now(),
        };
        if let Some(audit) = &self.options.audit {
            audit
                .record(&event)
                .await
                .map_err(|message| RotationError::AuditRefused {
                    credential: self.name.clone(),
                    step,
                    message,
                })?;
        }
        tracing::debug!(credential = %self.name, version, %step, outcome = ?event.outcome, "rotation step");
        let _ = self.events.send(event);
        Ok(())
    }

    async fn acquire(&self) -> Result<Session> {
        let (raw, mut state) = read_state(&self.sr, &self.name).await?;
        let now = self.now();
        if let Some(lock) = &state.lock
            && lock.owner != self.owner
            && lock.expires > now
        {
            return Err(RotationError::Busy {
                credential: self.name.clone(),
                owner: lock.owner.clone(),
                until: lock.expires,
            }
            .into());
        }
        state.format = STATE_FORMAT;
        state.next_version = state.next_version.max(1);
        let mut s = Session { raw, state };
        match self.write(&mut s, vec![]).await {
            // Someone else changed it between our read and write.
            Err(Error::Rotation(RotationError::LostLock { .. })) => {
                let (_, st) = read_state(&self.sr, &self.name).await?;
                let (owner, until) = st
                    .lock
                    .map(|l| (l.owner, l.expires))
                    .unwrap_or_else(|| (String::new(), now));
                Err(RotationError::Busy {
                    credential: self.name.clone(),
                    owner,
                    until,
                }
                .into())
            }
            r => r.map(|()| s),
        }
    }

    async fn release(&self, s: &mut Session) -> Result<()> {
        if s.state.lock.is_none() {
            return Ok(());
        }
        s.state.lock = None;
        self.write_raw(s, vec![]).await
    }

    /// Writes the state (renewing the lock) with `extra` operations, only if
    /// the record is unchanged since this session last read or wrote it.
    async fn write(&self, s: &mut Session, extra: Vec<BatchOp>) -> Result<()> {
        s.state.lock = Some(Lock {
            owner: self.owner.clone(),
            expires: self.now() + self.options.lock_ttl,
        });
        self.write_raw(s, extra).await
    }

    async fn write_raw(&self, s: &mut Session, extra: Vec<BatchOp>) -> Result<()> {
        let limit = self.options.history_limit.max(4);
        if s.state.history.len() > limit {
            let drop = s.state.history.len() - limit;
            s.state.history.drain(..drop);
        }
        let bytes = serde_json::to_vec(&s.state)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode rotation state: {e}")))?;
        let mut ops = vec![
            BatchOp::expect(self.state_key.clone(), s.raw.clone()),
            BatchOp::put(self.state_key.clone(), bytes.clone()),
        ];
        ops.extend(extra);
        match self.sr.barrier().batch(ops).await {
            Ok(()) => {
                s.raw = Some(bytes);
                Ok(())
            }
            Err(Error::StorageConflict { key }) if key == self.state_key => {
                Err(RotationError::LostLock {
                    credential: self.name.clone(),
                }
                .into())
            }
            Err(e) => Err(e),
        }
    }

    async fn store_version_op(&self, cred: &Credential) -> Result<BatchOp> {
        let plain = cred.encode()?;
        self.sr
            .sealed_put(
                &sealed_key(&self.name, cred.version),
                &plain,
                &SealContext::new(&self.context_path, cred.version),
            )
            .await
    }

    async fn load(&self, version: Option<u64>) -> Result<Option<Credential>> {
        match version {
            Some(v) => load_version(&self.sr, &self.name, v).await,
            None => Ok(None),
        }
    }

    fn step_failed(
        &self,
        step: RotationStep,
        version: u64,
        attempts: u32,
        e: &TargetError,
    ) -> Error {
        RotationError::StepFailed {
            credential: self.name.clone(),
            version,
            step,
            attempts,
            message: e.message.clone(),
        }
        .into()
    }

    /// Runs `f` up to `max_attempts` times with exponential backoff on the
    /// clock, emitting events. Returns the attempts made with the last error.
    async fn attempt<T, F, Fut>(
        &self,
        step: RotationStep,
        version: u64,
        mut f: F,
    ) -> std::result::Result<T, (u32, TargetError)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, TargetError>>,
    {
        let max = self.options.max_attempts.max(1);
        let mut delay = self.options.backoff_initial;
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(t) => return Ok(t),
                Err(e) if attempt < max && e.retryable => {
                    let _ = self
                        .emit(
                            step,
                            version,
                            StepOutcome::Retrying {
                                attempt,
                                error: e.message.clone(),
                            },
                        )
                        .await;
                    self.sr.clock().sleep_until(self.now() + delay).await;
                    delay = (delay * 2).min(self.options.backoff_max);
                    attempt += 1;
                }
                Err(e) => {
                    let _ = self
                        .emit(
                            step,
                            version,
                            StepOutcome::Failed {
                                attempts: attempt,
                                error: e.message.clone(),
                            },
                        )
                        .await;
                    if let Ok(mut last) = self.last_error.lock() {
                        *last = Some(e.message.clone());
                    }
                    return Err((attempt, e));
                }
            }
        }
    }

    /// Runs `work` (a step against the target, with its retries) while
    /// renewing the session's lock every third of [`RotationOptions::lock_ttl`],
    /// so a step that outlasts the TTL keeps the lock while this process
    /// lives, and a process that dies loses it within one TTL. If the lock
    /// was lost (another engine took over) or could not be renewed before it
    /// lapsed, `work` is abandoned and this fails with
    /// [`RotationError::LostLock`]; the recorded step is then the new
    /// holder's to finish or roll back.
    async fn holding<T>(&self, s: &mut Session, work: impl Future<Output = T>) -> Result<T> {
        let ttl = self.options.lock_ttl;
        let every = (ttl / 3).max(Duration::from_millis(1));
        let mut held_until = s
            .state
            .lock
            .as_ref()
            .map_or_else(|| self.now(), |l| l.expires);
        let mut next = held_until - ttl + every;
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return Ok(out),
                () = self.sr.clock().sleep_until(next) => {
                    match self.write(s, vec![]).await {
                        Ok(()) => {
                            held_until = s.state.lock.as_ref().map_or(held_until, |l| l.expires);
                            next = self.now() + every;
                        }
                        Err(e @ Error::Rotation(RotationError::LostLock { .. })) => {
                            tracing::warn!(credential = %self.name, "rotation lock taken over while a step ran; abandoning the step");
                            return Err(e);
                        }
                        Err(e) => {
                            let now = self.now();
                            if now >= held_until {
                                tracing::warn!(credential = %self.name, error = %e, "could not renew the rotation lock before it lapsed; abandoning the step");
                                return Err(RotationError::LostLock {
                                    credential: self.name.clone(),
                                }
                                .into());
                            }
                            tracing::warn!(credential = %self.name, error = %e, "renewing the rotation lock failed; retrying");
                            next = (now + every / 4).min(held_until);
                        }
                    }
                }
            }
        }
    }

    /// Runs the recorded steps until none is left.
    async fn drive(&self, s: &mut Session, report: &mut RotationReport) -> Result<()> {
        while let Some(op) = s.state.op {
            self.emit(op.step, op.version, StepOutcome::Started).await?;
            let done = self.run_step(s, op, report).await?;
            if done {
                self.emit(op.step, op.version, StepOutcome::Completed)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs one step and records the next; returns whether the step
    /// completed (false when it failed and a roll-back was recorded).
    async fn run_step(&self, s: &mut Session, op: Op, report: &mut RotationReport) -> Result<bool> {
        let v = op.version;
        let current = self.load(s.state.current).await?;
        let previous = self.load(s.state.previous).await?;
        let ctx = RotationContext {
            credential: &self.name,
            version: v,
            current: current.as_ref(),
            previous: previous.as_ref(),
        };
        let next = |step| {
            Some(Op {
                step,
                version: v,
                cause: None,
            })
        };
        match op.step {
            RotationStep::CreatePending => {
                let created = self
                    .holding(s, self.attempt(op.step, v, || self.rotator.create(&ctx)))
                    .await?;
                let mut cred = match created {
                    Ok(c) => c,
                    // Nothing was stored or set: just drop the attempt.
                    Err((attempts, e)) => {
                        s.state.op = None;
                        self.write(s, vec![]).await?;
                        return Err(self.step_failed(op.step, v, attempts, &e));
                    }
                };
                cred.version = v;
                let put = self.store_version_op(&cred).await?;
                let now = self.now();
                s.state.history.retain(|h| h.version != v);
                s.state.history.push(VersionInfo {
                    version: v,
                    identity: cred.identity.clone(),
                    created: now,
                    promoted: None,
                    superseded: None,
                    revoked: None,
                    failed: None,
                });
                s.state.pending = Some(v);
                s.state.op = next(RotationStep::SetInTarget);
                self.write(s, vec![put]).await?;
                Ok(true)
            }
            RotationStep::SetInTarget | RotationStep::TestPending => {
                let Some(pending) = self.load(Some(v)).await? else {
                    return Err(self.corrupt("pending version missing"));
                };
                let r = if op.step == RotationStep::SetInTarget {
                    self.holding(
                        s,
                        self.attempt(op.step, v, || self.rotator.set(&ctx, &pending)),
                    )
                    .await?
                } else {
                    self.holding(
                        s,
                        self.attempt(op.step, v, || self.rotator.test(&ctx, &pending)),
                    )
                    .await?
                };
                match r {
                    Ok(()) => {
                        s.state.op = next(if op.step == RotationStep::SetInTarget {
                            RotationStep::TestPending
                        } else {
                            RotationStep::Promote
                        });
                        self.write(s, vec![]).await?;
                        Ok(true)
                    }
                    Err(_) => {
                        s.state.op = Some(Op {
                            step: RotationStep::RollBack,
                            version: v,
                            cause: Some(op.step),
                        });
                        self.write(s, vec![]).await?;
                        Ok(false)
                    }
                }
            }
            RotationStep::Promote => {
                let Some(pending) = self.load(Some(v)).await? else {
                    return Err(self.corrupt("pending version missing"));
                };
                if let Err((attempts, e)) = self
                    .holding(
                        s,
                        self.attempt(op.step, v, || self.rotator.promote(&ctx, &pending)),
                    )
                    .await?
                {
                    return Err(self.step_failed(op.step, v, attempts, &e));
                }
                let now = self.now();
                let old = s.state.current;
                if let Some(old) = old
                    && let Some(h) = s.state.info_mut(old)
                {
                    h.superseded = Some(now);
                }
                if let Some(h) = s.state.info_mut(v) {
                    h.promoted = Some(now);
                }
                s.state.previous = old;
                s.state.current = Some(v);
                s.state.pending = None;
                s.state.last_promoted = Some(now);
                s.state.revoke_after = old.map(|_| now + self.options.grace_period);
                s.state.op = None;
                self.write(s, vec![]).await?;
                report.promoted = Some(v);
                Ok(true)
            }
            RotationStep::RevokePrevious => {
                if let Some(old) = self.load(Some(v)).await?
                    && let Err((attempts, e)) = self
                        .holding(
                            s,
                            self.attempt(op.step, v, || self.rotator.revoke(&ctx, &old)),
                        )
                        .await?
                {
                    return Err(self.step_failed(op.step, v, attempts, &e));
                }
                if let Some(h) = s.state.info_mut(v) {
                    h.revoked = Some(self.now());
                }
                if s.state.previous == Some(v) {
                    s.state.previous = None;
                    s.state.revoke_after = None;
                }
                s.state.op = None;
                self.write(s, vec![BatchOp::delete(sealed_key(&self.name, v))])
                    .await?;
                report.revoked = Some(v);
                Ok(true)
            }
            RotationStep::RollBack => {
                if let Some(failed) = self.load(Some(v)).await?
                    && let Err((attempts, e)) = self
                        .holding(
                            s,
                            self.attempt(op.step, v, || self.rotator.rollback(&ctx, &failed)),
                        )
                        .await?
                {
                    return Err(self.step_failed(op.step, v, attempts, &e));
                }
                if let Some(h) = s.state.info_mut(v) {
                    h.failed = Some(self.now());
                }
                if s.state.pending == Some(v) {
                    s.state.pending = None;
                }
                s.state.op = None;
                self.write(s, vec![BatchOp::delete(sealed_key(&self.name, v))])
                    .await?;
                report.rolled_back = Some((v, op.cause.unwrap_or(RotationStep::TestPending)));
                Ok(true)
            }
        }
    }

    fn corrupt(&self, reason: &str) -> Error {
        RotationError::CorruptState {
            credential: self.name.clone(),
            reason: reason.to_owned(),
        }
        .into()
    }

    /// When the schedule should next act, if ever.
    async fn next_due(&self) -> Result<Option<Timestamp>> {
        let (_, s) = read_state(&self.sr, &self.name).await?;
        let now = self.now();
        if let Some(lock) = &s.lock
            && lock.owner != self.owner
            && lock.expires > now
        {
            return Ok(Some(lock.expires));
        }
        if s.op.is_some() {
            return Ok(Some(now));
        }
        let mut due: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| due = Some(due.map_or(t, |d| d.min(t)));
        if s.previous.is_some()
            && let Some(t) = s.revoke_after
        {
            consider(t);
        }
        if let Some(interval) = self.options.interval {
            match s.last_promoted {
                Some(t) => consider(t + interval),
                None => consider(now),
            }
        }
        Ok(due)
    }

    /// Starts the schedule: a background task that rotates every
    /// [`RotationOptions::interval`], revokes `previous` when its grace period
    /// ends and resumes interrupted rotations, waiting on the clock in
    /// between. A rotation another engine holds is taken over when its lock
    /// lapses. Errors are reported as events and retried after the backoff.
    /// Dropping the handle stops the task.
    pub fn spawn_schedule(self: &Arc<Self>) -> ScheduleHandle {
        let engine = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                let due = match engine.next_due().await {
                    Ok(d) => d,
                    Err(_) => {
                        Some(engine.now() + engine.options.backoff_max.max(Duration::from_secs(1)))
                    }
                };
                match due {
                    Some(t) => {
                        tokio::select! {
                            () = engine.sr.clock().sleep_until(t) => {}
                            () = engine.wake.notified() => continue,
                        }
                    }
                    None => {
                        engine.wake.notified().await;
                        continue;
                    }
                }
                match engine.tick().await {
                    // Busy: another engine holds the lock. Look again when
                    // it lapses (next_due), not after the failure backoff,
                    // so a dead holder is replaced within one lock TTL.
                    Ok(()) | Err(Error::Rotation(RotationError::Busy { .. })) => continue,
                    Err(_) => {}
                }
                // Failed steps were reported as events; wait before retrying.
                let retry = engine.now() + engine.options.backoff_max.max(Duration::from_secs(1));
                tokio::select! {
                    () = engine.sr.clock().sleep_until(retry) => {}
                    () = engine.wake.notified() => {}
                }
            }
        });
        ScheduleHandle { task }
    }

    /// One scheduled pass: resume/revoke, then rotate if the interval passed.
    async fn tick(&self) -> Result<()> {
        self.resume_inner().await?;
        let (_, s) = read_state(&self.sr, &self.name).await?;
        let now = self.now();
        let rotate = match (self.options.interval, s.last_promoted) {
            (Some(_), None) => true,
            (Some(i), Some(t)) => t + i <= now,
            (None, _) => false,
        };
        if rotate {
            self.rotate_inner().await?;
        }
        Ok(())
    }
}

/// The handle of a schedule task; dropping it stops the task.
#[derive(Debug)]
pub struct ScheduleHandle {
    task: tokio::task::JoinHandle<()>,
}

impl ScheduleHandle {
    /// Whether the task has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for ScheduleHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;

/// The audit log records every rotation step (principal `"rotation"`,
/// operation `rotate`, path `rot/<credential>`, the version, and a request
/// id naming the step), so `RotationOptions { audit: Some(log), .. }` puts
/// rotations in the same tamper-evident trail as reads and writes. A step
/// whose record cannot be written does not run.
#[async_trait::async_trait]
impl RotationAudit for crate::audit::AuditLog {
    async fn record(&self, event: &RotationEvent) -> std::result::Result<(), String> {
        use crate::audit::{AuditEvent, Operation, Outcome};
        let outcome = match &event.outcome {
            StepOutcome::Started | StepOutcome::Completed => Outcome::Allowed,
            StepOutcome::Retrying { .. } => Outcome::Error {
                kind: "rotation_retrying".into(),
            },
            StepOutcome::Failed { .. } => Outcome::Error {
                kind: "rotation_failed".into(),
            },
        };
        let phase = match &event.outcome {
            StepOutcome::Started => "started",
            StepOutcome::Completed => "completed",
            StepOutcome::Retrying { .. } => "retrying",
            StepOutcome::Failed { .. } => "failed",
        };
        let request_id = format!(
            "rotation:{}:v{}:{:?}:{phase}",
            event.credential, event.version, event.step
        );
        self.append(
            AuditEvent::new("rotation", Operation::Rotate, request_id)
                .with_path(format!("rot/{}", event.credential))
                .with_version(event.version)
                .with_outcome(outcome),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

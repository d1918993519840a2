//! Credential rotation (S8): the rotation engine with the generic API-key
//! rotator and its verifier, which accepts the current key and, during the
//! grace period, the previous one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strongroom::SecretBytes;
use strongroom::rotation::{
    ApiKeyVerifier as CoreVerifier, Credential as CoreCredential, Matched as CoreMatched,
    RotationEngine as CoreEngine, RotationOptions as CoreOptions, RotationReport as CoreReport,
    VersionInfo as CoreVersion,
};

use strongroom_host::apikey::{ApiKeyRotation, ApiKeySpec};

use crate::errors::{Result, invalid};
use crate::store::AuditLog;
use crate::{Secret, Strongroom};

/// How generated API keys look.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ApiKeyFormat {
    /// `prefix` and `chars` characters from 0-9, A-Z, a-z.
    Base62 {
        /// A fixed prefix ("sk_live_").
        prefix: String,
        /// Random characters after the prefix.
        chars: u32,
    },
    /// `prefix` and `bytes` random bytes as lower-case hex.
    Hex {
        /// A fixed prefix.
        prefix: String,
        /// Random bytes (two hex digits each).
        bytes: u32,
    },
}

impl ApiKeyFormat {
    /// The format, checked by the rules every binding shares
    /// (`strongroom_host::apikey`).
    fn spec(&self) -> Result<ApiKeySpec> {
        Ok(match self {
            Self::Base62 { prefix, chars } => ApiKeySpec::base62(prefix, *chars as usize)?,
            Self::Hex { prefix, bytes } => ApiKeySpec::hex(prefix, *bytes as usize)?,
        })
    }
}

/// What a presented API key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Matched {
    /// The current key.
    Current,
    /// The previous key, still valid during the grace period.
    Previous,
    /// Neither.
    NoMatch,
}

/// Checks presented API keys against the current and previous keys, in
/// constant time, holding only keyed hashes of them (never the keys).
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct ApiKeyVerifier {
    inner: Arc<CoreVerifier>,
}

impl fmt::Debug for ApiKeyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[uniffi::export]
impl ApiKeyVerifier {
    /// An empty verifier (a fresh random hashing key). Give it to
    /// `RotationEngine.apiKey`, which keeps it in step with the engine.
    #[uniffi::constructor]
    pub fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            inner: Arc::new(CoreVerifier::new()?),
        }))
    }

    /// Which stored key `presented` is, if any.
    pub fn verify(&self, presented: Vec<u8>) -> Matched {
        let presented = SecretBytes::new(presented);
        match self.inner.verify(presented.expose_secret()) {
            CoreMatched::Current => Matched::Current,
            CoreMatched::Previous => Matched::Previous,
            _ => Matched::NoMatch,
        }
    }
}

/// One version of a rotated credential. Its description is redacted; the
/// secret comes out through `secret()`, a `Secret` that can be wiped.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct Credential {
    inner: CoreCredential,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credential(version={}, identity={:?}, secret=[REDACTED; {} bytes])",
            self.inner.version(),
            self.inner.identity(),
            self.inner.secret().len()
        )
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[uniffi::export]
impl Credential {
    /// The version number.
    pub fn version(&self) -> u64 {
        self.inner.version()
    }

    /// The non-secret identity (for API keys: the format's prefix).
    pub fn identity(&self) -> String {
        self.inner.identity().to_owned()
    }

    /// The secret, as a new `Secret` (wiping it does not touch the store).
    pub fn secret(&self) -> Arc<Secret> {
        Secret::new(self.inner.secret().clone())
    }
}

fn credential(c: Option<CoreCredential>) -> Option<Arc<Credential>> {
    c.map(|inner| Arc::new(Credential { inner }))
}

/// The stored versions of a credential, by stage.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StagedCredentials {
    /// The version being introduced, if a rotation is in flight.
    pub pending: Option<Arc<Credential>>,
    /// The version clients should use.
    pub current: Option<Arc<Credential>>,
    /// The version before, valid until the grace period ends.
    pub previous: Option<Arc<Credential>>,
}

/// What happened to one version (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RotationVersion {
    /// The version number.
    pub version: u64,
    /// Its non-secret identity.
    pub identity: String,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it became current.
    pub promoted_ms: Option<u64>,
    /// When it stopped being current.
    pub superseded_ms: Option<u64>,
    /// When it was revoked in the target.
    pub revoked_ms: Option<u64>,
    /// When it was discarded after failing to set or test.
    pub failed_ms: Option<u64>,
}

impl From<CoreVersion> for RotationVersion {
    fn from(v: CoreVersion) -> Self {
        Self {
            version: v.version,
            identity: v.identity,
            created_ms: v.created.as_millis(),
            promoted_ms: v.promoted.map(|t| t.as_millis()),
            superseded_ms: v.superseded.map(|t| t.as_millis()),
            revoked_ms: v.revoked.map(|t| t.as_millis()),
            failed_ms: v.failed.map(|t| t.as_millis()),
        }
    }
}

/// The non-secret state of a rotated credential.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RotationStatus {
    /// The pending version, if any.
    pub pending: Option<u64>,
    /// The current version, if any.
    pub current: Option<u64>,
    /// The previous version, if any.
    pub previous: Option<u64>,
    /// When the previous version is due to be revoked (ms).
    pub revoke_previous_ms: Option<u64>,
    /// When the current version was promoted (ms).
    pub last_promoted_ms: Option<u64>,
    /// The recorded step in flight ("create-pending", ...), if any.
    pub in_flight_step: Option<String>,
    /// The version the step in flight works on.
    pub in_flight_version: Option<u64>,
    /// Recent versions, oldest first.
    pub history: Vec<RotationVersion>,
}

/// What one call to the engine did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RotationReport {
    /// The version promoted to current, if any.
    pub promoted: Option<u64>,
    /// The previous version revoked, if any.
    pub revoked: Option<u64>,
}

impl From<CoreReport> for RotationReport {
    fn from(r: CoreReport) -> Self {
        Self {
            promoted: r.promoted,
            revoked: r.revoked,
        }
    }
}

/// Settings of a rotation engine (defaults as in the core).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RotationOptions {
    /// How long `previous` stays valid after a promotion (ms).
    #[uniffi(default = 3600000)]
    pub grace_period_ms: u64,
    /// Attempts per step before giving up (at least 1).
    #[uniffi(default = 5)]
    pub max_attempts: u32,
    /// The first retry delay (ms); doubles per attempt.
    #[uniffi(default = 1000)]
    pub backoff_initial_ms: u64,
    /// The longest retry delay (ms).
    #[uniffi(default = 60000)]
    pub backoff_max_ms: u64,
    /// The lock owner id (nil: random per engine).
    #[uniffi(default = None)]
    pub owner_id: Option<String>,
}

impl RotationOptions {
    /// The core's options from optional host options.
    pub(crate) fn or_default(
        options: Option<Self>,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<CoreOptions> {
        match options {
            Some(o) => o.core(audit),
            None => Ok(CoreOptions {
                audit: audit.map(|a| a.log.clone() as _),
                ..CoreOptions::default()
            }),
        }
    }

    fn core(&self, audit: Option<Arc<AuditLog>>) -> Result<CoreOptions> {
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts must be at least 1"));
        }
        Ok(CoreOptions {
            grace_period: Duration::from_millis(self.grace_period_ms),
            max_attempts: self.max_attempts,
            backoff_initial: Duration::from_millis(self.backoff_initial_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            owner_id: self.owner_id.clone(),
            audit: audit.map(|a| a.log.clone() as _),
            ..CoreOptions::default()
        })
    }
}

/// Runs rotations of one credential: current / pending / previous versions,
/// write-ahead steps, a lock shared across processes.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct RotationEngine {
    inner: Arc<CoreEngine>,
    /// The API-key composite, for an API-key rotation (`importCurrent`).
    api_key: Option<ApiKeyRotation>,
}

impl RotationEngine {
    /// An engine the binding opened some other way (a PostgreSQL rotation).
    pub(crate) fn wrap(inner: Arc<CoreEngine>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            api_key: None,
        })
    }
}

impl fmt::Debug for RotationEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl RotationEngine {
    /// An engine rotating the API key `name` in `room`, generated in
    /// `format` and installed in `verifier`, which is first loaded with the
    /// versions already stored (so a second engine over the same store
    /// accepts the same keys). Does not rotate.
    #[uniffi::constructor(default(options = None, audit = None))]
    pub async fn api_key(
        room: Arc<Strongroom>,
        name: String,
        format: ApiKeyFormat,
        verifier: Arc<ApiKeyVerifier>,
        options: Option<RotationOptions>,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<Arc<Self>> {
        let options = RotationOptions::or_default(options, audit)?;
        let rotation = ApiKeyRotation::open_with(
            &room.core,
            &name,
            format.spec()?,
            options,
            verifier.inner.clone(),
        )
        .await?;
        Ok(Arc::new(Self {
            inner: rotation.engine().clone(),
            api_key: Some(rotation),
        }))
    }

    /// Imports an existing key (any format, not empty) as the current
    /// version, so a rotation can take over a key already in use; refused
    /// with `RotationAlreadyInitialized` once a current version exists.
    /// Returns its version; the verifier accepts it at once. Only for
    /// API-key rotations (`InvalidArgument` otherwise).
    pub async fn import_current(&self, key: Vec<u8>) -> Result<u64> {
        let Some(rotation) = &self.api_key else {
            return Err(invalid("importCurrent is for API-key rotations"));
        };
        Ok(rotation.import_current(SecretBytes::new(key)).await?)
    }

    /// The credential name.
    pub fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The lock owner id of this engine.
    pub fn owner_id(&self) -> String {
        self.inner.owner_id().to_owned()
    }

    /// Rotates now: finishes an interrupted rotation, revokes a previous
    /// version still in its grace period, then creates, sets, tests and
    /// promotes a new version. Fails with `RotationRolledBack` if the new
    /// version did not work (the current one is untouched).
    pub async fn rotate_now(&self) -> Result<RotationReport> {
        Ok(self.inner.rotate_now().await?.into())
    }

    /// Continues an interrupted rotation and revokes the previous version
    /// if its grace period is over.
    pub async fn resume(&self) -> Result<RotationReport> {
        Ok(self.inner.resume().await?.into())
    }

    /// Revokes the previous version if its grace period is over; returns
    /// whether it did.
    pub async fn revoke_due(&self) -> Result<bool> {
        Ok(self.inner.revoke_due().await?)
    }

    /// The stored versions by stage.
    pub async fn staged(&self) -> Result<StagedCredentials> {
        let s = self.inner.staged().await?;
        Ok(StagedCredentials {
            pending: credential(s.pending),
            current: credential(s.current),
            previous: credential(s.previous),
        })
    }

    /// The non-secret state.
    pub async fn status(&self) -> Result<RotationStatus> {
        let s = self.inner.status().await?;
        Ok(RotationStatus {
            pending: s.pending,
            current: s.current,
            previous: s.previous,
            revoke_previous_ms: s.revoke_previous_at.map(|t| t.as_millis()),
            last_promoted_ms: s.last_promoted.map(|t| t.as_millis()),
            in_flight_step: s.in_flight.map(|(step, _)| step.to_string()),
            in_flight_version: s.in_flight.map(|(_, v)| v),
            history: s.history.into_iter().map(Into::into).collect(),
        })
    }
}

//! What callers see of a rotation: stages and steps, credentials, status,
//! events and step outcomes.

use super::*;

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

impl RotationStep {
    /// The step's name in text: `create-pending`, `set-in-target`,
    /// `test-pending`, `promote`, `revoke-previous`, `roll-back`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreatePending => "create-pending",
            Self::SetInTarget => "set-in-target",
            Self::TestPending => "test-pending",
            Self::Promote => "promote",
            Self::RevokePrevious => "revoke-previous",
            Self::RollBack => "roll-back",
        }
    }
}

impl fmt::Display for RotationStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of a rotated credential: a non-secret identity (a user or
/// role name, a key id; may be empty) and the secret.
#[derive(Clone)]
pub struct Credential {
    pub(super) version: u64,
    pub(super) identity: String,
    pub(super) secret: SecretBytes,
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

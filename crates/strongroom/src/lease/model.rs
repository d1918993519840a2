//! What a lease is: its id, state and record as callers see it, what a
//! caller asks for, and the engine hook that takes a lease back.

use super::*;

/// A lease id: 128 random bits, written `lease_` and 32 lower-case hex digits.
///
/// Ids are unguessable but not secret: they may appear in logs and audit
/// records. They are never derived from secrets.
///
/// ```
/// use strongroom::lease::LeaseId;
/// let id: LeaseId = "lease_000000000000000000000000000000ff".parse()?;
/// assert_eq!(id.as_u128(), 255);
/// assert_eq!(id.to_string(), "lease_000000000000000000000000000000ff");
/// # Ok::<(), strongroom::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(u128);

impl LeaseId {
    /// A fresh id from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| Error::Random)?;
        Ok(Self(u128::from_be_bytes(b)))
    }

    /// From the numeric form.
    pub const fn from_u128(v: u128) -> Self {
        Self(v)
    }

    /// The numeric form.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ID_PREFIX}{:032x}", self.0)
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for LeaseId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || LeaseError::InvalidId {
            text: s.chars().take(80).collect(),
        };
        let hex = s.strip_prefix(ID_PREFIX).ok_or_else(bad)?;
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad().into());
        }
        u128::from_str_radix(hex, 16)
            .map(Self)
            .map_err(|_| bad().into())
    }
}

/// Where a lease is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LeaseState {
    /// Live and usable until it expires.
    Active,
    /// Expired or revoked, and the engine has failed to revoke it so far.
    Revoking {
        /// Failed attempts so far.
        attempts: u32,
        /// When the manager tries again.
        next_try: Timestamp,
    },
    /// The engine confirmed the revocation (the record is then deleted, so
    /// this state is only seen on values returned by revoke calls).
    Revoked,
    /// Revocation failed too often; needs an operator (revoke or force).
    Irrevocable {
        /// Failed attempts.
        attempts: u32,
    },
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Active => f.write_str("active"),
            Self::Revoking { attempts, next_try } => {
                write!(
                    f,
                    "being revoked ({attempts} failed attempt(s), next at {next_try})"
                )
            }
            Self::Revoked => f.write_str("revoked"),
            Self::Irrevocable { attempts } => {
                write!(f, "irrevocable after {attempts} failed attempt(s)")
            }
        }
    }
}

/// A lease: something an engine handed out, and when and how to take it back.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    pub(super) id: LeaseId,
    pub(super) path: String,
    pub(super) engine: String,
    pub(super) issued_at: Timestamp,
    pub(super) ttl: Duration,
    pub(super) max_ttl: Duration,
    pub(super) expires_at: Timestamp,
    pub(super) expiring_soon_at: Timestamp,
    pub(super) warned: bool,
    pub(super) renewable: bool,
    pub(super) state: LeaseState,
    pub(super) revocation_data: Vec<u8>,
    pub(super) claim: Option<LeaseClaim>,
}

/// A manager's hold on a lease while it revokes it: which member, until
/// when (by that member's clock), and whether the engine has already
/// confirmed the revocation (only the clean-up of the records is left).
///
/// Managers sharing a store claim a due lease in one compare-and-set before
/// calling its revoker, so only one of them calls it. A member that dies
/// holding a claim loses it to the others once `until` has passed; a
/// manager started again with the same member id takes its own claims back
/// at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClaim {
    pub(super) owner: String,
    pub(super) until: Timestamp,
    pub(super) revoked: bool,
}

impl LeaseClaim {
    /// The member id of the manager holding the claim.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// When the claim lapses unless its holder renews it.
    pub fn until(&self) -> Timestamp {
        self.until
    }
    /// Whether the engine confirmed the revocation (clean-up is pending).
    pub fn revoked(&self) -> bool {
        self.revoked
    }
}

impl fmt::Debug for Lease {
    // Revocation data is the engine's business (a role name, a serial
    // number); print only its size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("engine", &self.engine)
            .field("issued_at", &self.issued_at)
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .field("expires_at", &self.expires_at)
            .field("renewable", &self.renewable)
            .field("state", &self.state)
            .field("claim", &self.claim)
            .field(
                "revocation_data",
                &format_args!("[{} bytes]", self.revocation_data.len()),
            )
            .finish()
    }
}

impl Lease {
    /// The lease id.
    pub fn id(&self) -> LeaseId {
        self.id
    }
    /// The path that issued it, e.g. `database/creds/readonly`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The engine that revokes it.
    pub fn engine(&self) -> &str {
        &self.engine
    }
    /// When it was issued.
    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }
    /// The TTL it was issued with (at most the max TTL).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// The longest it may live, counted from issue.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }
    /// When it expires (moved by renewals).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
    /// The latest expiry any renewal can reach: issue time plus max TTL.
    pub fn max_expires_at(&self) -> Timestamp {
        self.issued_at + self.max_ttl
    }
    /// When [`LeaseEvent::ExpiringSoon`] is sent for it.
    pub fn expiring_soon_at(&self) -> Timestamp {
        self.expiring_soon_at
    }
    /// Whether it may be renewed.
    pub fn renewable(&self) -> bool {
        self.renewable
    }
    /// Where it is in its life.
    pub fn state(&self) -> &LeaseState {
        &self.state
    }
    /// The engine's data for revoking it, stored as given.
    pub fn revocation_data(&self) -> &[u8] {
        &self.revocation_data
    }

    /// When the manager next has to look at this lease, if ever.
    pub(super) fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            LeaseState::Active if !self.warned && self.expiring_soon_at < self.expires_at => {
                Some(self.expiring_soon_at)
            }
            LeaseState::Active => Some(self.expires_at),
            LeaseState::Revoking { next_try, .. } => Some(next_try),
            LeaseState::Revoked | LeaseState::Irrevocable { .. } => None,
        }
    }

    /// Failed revocation attempts so far.
    pub(super) fn failed_attempts(&self) -> u32 {
        match self.state {
            LeaseState::Revoking { attempts, .. } | LeaseState::Irrevocable { attempts } => {
                attempts
            }
            _ => 0,
        }
    }

    /// Who is revoking this lease right now, if a manager has claimed it.
    pub fn claim(&self) -> Option<&LeaseClaim> {
        self.claim.as_ref()
    }

    /// Encodes the stored record: a version byte, then postcard (see
    /// `docs/FORMAT.md`, "Lease records").
    pub fn to_record_bytes(&self) -> Result<Vec<u8>> {
        record::encode(self)
    }

    /// Decodes a stored record written by [`Lease::to_record_bytes`] (this
    /// version or the one before).
    pub fn from_record_bytes(bytes: &[u8]) -> Result<Self> {
        record::decode(bytes)
    }
}

/// One lease to issue with [`LeaseManager::issue_batch`].
#[derive(Clone)]
pub struct LeaseRequest {
    pub(super) path: String,
    pub(super) engine: String,
    pub(super) ttl: Duration,
    pub(super) max_ttl: Duration,
    pub(super) renewable: bool,
    pub(super) revocation_data: Vec<u8>,
}

impl fmt::Debug for LeaseRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseRequest")
            .field("path", &self.path)
            .field("engine", &self.engine)
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .field("renewable", &self.renewable)
            .field(
                "revocation_data",
                &format_args!("[{} bytes]", self.revocation_data.len()),
            )
            .finish()
    }
}

impl LeaseRequest {
    /// A renewable lease for `path`, revoked through `engine`'s revoker,
    /// expiring after `ttl` (cut to `max_ttl`), with no revocation data.
    pub fn new(
        path: impl Into<String>,
        engine: impl Into<String>,
        ttl: Duration,
        max_ttl: Duration,
    ) -> Self {
        Self {
            path: path.into(),
            engine: engine.into(),
            ttl,
            max_ttl,
            renewable: true,
            revocation_data: Vec::new(),
        }
    }

    /// The path the lease is for.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the lease may be renewed (default true).
    pub fn renewable(mut self, renewable: bool) -> Self {
        self.renewable = renewable;
        self
    }

    /// The engine's data for revoking it, stored as given.
    pub fn revocation_data(mut self, data: Vec<u8>) -> Self {
        self.revocation_data = data;
        self
    }
}

/// Takes back what an engine handed out. One per engine, registered with
/// [`LeaseManager::register_revoker`].
///
/// Revocation must be idempotent: the manager may call `revoke` again for a
/// lease whose earlier revocation succeeded but could not be recorded (a
/// storage fault, a crash), and must then get `Ok`. Error messages must not
/// contain secrets: they are logged and reported in events.
#[async_trait]
pub trait Revoker: Send + Sync + fmt::Debug {
    /// Revokes what `lease` stands for, using its
    /// [`revocation_data`](Lease::revocation_data).
    async fn revoke(&self, lease: &Lease) -> Result<()>;

    /// Called before a renewal is recorded, so an engine can move its own
    /// expiry (PostgreSQL's `VALID UNTIL`) to `new_expiry`. An error refuses
    /// the renewal and leaves the lease as it was. The default does nothing.
    async fn renew(&self, lease: &Lease, new_expiry: Timestamp) -> Result<()> {
        let _ = (lease, new_expiry);
        Ok(())
    }
}

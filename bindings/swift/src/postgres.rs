//! PostgreSQL: a rotated password, dynamic credentials from the store's
//! role catalog, and the credential feed a connection pool logs in with.
//! Conversion over `strongroom_host::{pg, dynamic}`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strongroom::SecretBytes;
use strongroom_host::pg::{AfterError as HostAfterError, PgLogin as HostLogin};

use crate::errors::Result;
use crate::lease::{Lease, LeaseManager};
use crate::rotation::{RotationEngine, RotationOptions};
use crate::store::AuditLog;
use crate::{Secret, Strongroom};

/// How a PostgreSQL rotation changes the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PgRotationMode {
    /// Two login roles `<role>_a` / `<role>_b` (members of `<role>_owner`,
    /// created if missing): the one not in use gets the new password, so
    /// logins never fail during a rotation.
    Alternating,
    /// `ALTER ROLE` on one existing role: between setting and promoting the
    /// old password no longer works (a feed moves to the pending version).
    SingleUser,
}

/// A login for one connection.
#[derive(uniffi::Record)]
pub struct PgLogin {
    /// The stored version it came from (give it back to `afterError`).
    pub version: u64,
    /// The role to log in as.
    pub username: String,
    /// The password.
    pub password: Arc<Secret>,
}

impl From<HostLogin> for PgLogin {
    fn from(l: HostLogin) -> Self {
        Self {
            version: l.version,
            username: l.username,
            password: Secret::new(l.password),
        }
    }
}

/// What a pool should do after an error from the server.
#[derive(uniffi::Enum)]
pub enum PgAfterError {
    /// The login was refused; connect again with this one.
    Retry {
        /// The next login to try.
        login: PgLogin,
    },
    /// The login was refused and no other stored version is left: raise
    /// the server's error.
    NoOtherCredential,
    /// Not a refused login: raise it.
    NotACredentialError,
}

/// The logins a connection pool uses: the current stored version, and after
/// a refused login (`28P01`) the next one to try, once for all the
/// connections that report the same refusal.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct CredentialFeed {
    inner: strongroom_host::pg::CredentialFeed,
}

impl fmt::Debug for CredentialFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CredentialFeed {
    /// The login for a new connection (nil: nothing stored yet).
    pub async fn login(&self) -> Result<Option<PgLogin>> {
        Ok(self.inner.login().await?.map(Into::into))
    }

    /// Reports the server's answer (SQLSTATE `code`, `message`) to a
    /// connection that logged in with `version`.
    pub async fn after_error(
        &self,
        version: u64,
        code: String,
        message: String,
    ) -> Result<PgAfterError> {
        Ok(
            match self.inner.after_error(version, &code, &message).await? {
                HostAfterError::Retry(login) => PgAfterError::Retry {
                    login: login.into(),
                },
                HostAfterError::NoOtherCredential => PgAfterError::NoOtherCredential,
                HostAfterError::NotACredentialError => PgAfterError::NotACredentialError,
            },
        )
    }

    /// How many refreshes refusals caused (one per refused version).
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes()
    }
}

/// A rotated PostgreSQL password.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct PgRotation {
    inner: strongroom_host::pg::PgRotation,
    room: Arc<Strongroom>,
    name: String,
}

impl fmt::Debug for PgRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PgRotation {
    /// The rotation of credential `name` in `room` for `role` on the server
    /// and database of `adminUrl` (a role with `CREATEROLE`), which
    /// administers it. Does not rotate. The URL never appears in errors.
    #[uniffi::constructor(default(options = None, audit = None))]
    pub async fn open(
        room: Arc<Strongroom>,
        name: String,
        admin_url: String,
        role: String,
        mode: PgRotationMode,
        options: Option<RotationOptions>,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<Arc<Self>> {
        let options = RotationOptions::or_default(options, audit)?;
        let mode = match mode {
            PgRotationMode::Alternating => strongroom_host::pg::PgRotationMode::Alternating,
            PgRotationMode::SingleUser => strongroom_host::pg::PgRotationMode::SingleUser,
        };
        let inner = strongroom_host::pg::PgRotation::open(
            &room.core, &name, &admin_url, &role, mode, options,
        )
        .await?;
        Ok(Arc::new(Self { inner, room, name }))
    }

    /// The engine: `rotateNow`, `revokeDue`, `staged`, `status`.
    pub fn engine(&self) -> Arc<RotationEngine> {
        RotationEngine::wrap(self.inner.engine().clone())
    }

    /// A feed of this credential's logins for a connection pool.
    pub fn credential_feed(&self) -> Arc<CredentialFeed> {
        Arc::new(CredentialFeed {
            inner: strongroom_host::pg::CredentialFeed::rotated(self.room.core.clone(), &self.name),
        })
    }

    /// Closes the administrative connections.
    pub async fn close(&self) {
        self.inner.close().await;
    }
}

/// Stores `toml` as the store's role catalog for dynamic credentials in
/// place of revision `expectedRevision` (nil: none may exist yet); returns
/// the new revision. The format is `strongroom creds configure`'s.
#[uniffi::export(async_runtime = "tokio")]
pub async fn configure_pg_catalog(
    room: Arc<Strongroom>,
    toml: String,
    expected_revision: Option<u64>,
) -> Result<u64> {
    Ok(
        strongroom_host::dynamic::configure(&room.core, &toml, expected_revision, crate::CALLER)
            .await?,
    )
}

/// A dynamic credential: its lease and the login.
#[derive(uniffi::Record)]
pub struct DynamicLogin {
    /// The lease (revoke or renew it through the lease manager).
    pub lease: Lease,
    /// The generated role name.
    pub username: String,
    /// The generated password.
    pub password: Arc<Secret>,
}

/// Dynamic PostgreSQL credentials from the store's role catalog, issued as
/// leases of a lease manager (which revokes them: the role is dropped).
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct DynamicPg {
    inner: strongroom_host::dynamic::DynamicPg,
}

impl fmt::Debug for DynamicPg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl DynamicPg {
    /// Loads the stored catalog, reads its connection secret, connects and
    /// registers the revoker with `leases` (of the same store).
    #[uniffi::constructor]
    pub async fn open(room: Arc<Strongroom>, leases: Arc<LeaseManager>) -> Result<Arc<Self>> {
        let inner = strongroom_host::dynamic::DynamicPg::open(
            &room.core,
            room.core.handle(),
            leases.manager.clone(),
        )
        .await?;
        Ok(Arc::new(Self { inner }))
    }

    /// The catalog's role names.
    pub fn roles(&self) -> Vec<String> {
        self.inner.roles()
    }

    /// Issues a credential of `role` for `ttlMs` (nil: the role's default).
    #[uniffi::method(default(ttl_ms = None))]
    pub async fn issue(&self, role: String, ttl_ms: Option<u64>) -> Result<DynamicLogin> {
        let l = self
            .inner
            .issue(None, &role, ttl_ms.map(Duration::from_millis))
            .await?;
        Ok(DynamicLogin {
            lease: (&l.lease).into(),
            username: l.username,
            password: Secret::new(SecretBytes::copy_from(
                l.password.expose_secret().as_bytes(),
            )),
        })
    }

    /// A feed for a connection pool: a credential of `role` now and a new
    /// one once `refreshFraction` of each lease's TTL has passed.
    #[uniffi::method(default(ttl_ms = None, refresh_fraction = 0.5))]
    pub async fn feed(
        &self,
        role: String,
        ttl_ms: Option<u64>,
        refresh_fraction: f64,
    ) -> Result<Arc<CredentialFeed>> {
        let inner = self
            .inner
            .feed(&role, ttl_ms.map(Duration::from_millis), refresh_fraction)
            .await?;
        Ok(Arc::new(CredentialFeed { inner }))
    }
}

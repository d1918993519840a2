//! PostgreSQL credentials for host-language pools.
//!
//! A host pool (asyncpg, psycopg, node-postgres) asks a [`CredentialFeed`]
//! for the login of each new connection, and tells it when the server
//! refused one. The feed reads the rotated credential's stored versions
//! (any process may have rotated them) and, after a refusal, moves to the
//! next stored version to try: pending (a single-user rotation may already
//! have set it in the server), then current, then previous. Many
//! connections refused with the same version at once cause one refresh:
//! the first caller records the refusal, the others find it recorded.
//!
//! [`PgRotation`] opens the rotation those credentials come from, through
//! an administrative connection (a role with `CREATEROLE`), with the
//! alternating-users or single-user rotator of [`strongroom_sqlx::rotate`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use strongroom::SecretBytes;
use strongroom::StorageErrorKind;
use strongroom::dangerous::Door;
use strongroom::rotation::{
    Credential, RotationEngine, RotationOptions, Rotator, StagedCredentials,
};
use strongroom_sqlx::pool::{CredentialSource, ErrorClass, RotatedSource, classify_code};
use strongroom_sqlx::rotate::{PgAlternatingRotator, PgSingleUserRotator};

/// A login for one connection: the stored version it came from, the role
/// name and its password (wiped on drop, never in `Debug`).
pub struct PgLogin {
    /// The stored version.
    pub version: u64,
    /// The role to log in as.
    pub username: String,
    /// The password.
    pub password: SecretBytes,
}

impl fmt::Debug for PgLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLogin")
            .field("version", &self.version)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl From<&Credential> for PgLogin {
    fn from(c: &Credential) -> Self {
        Self {
            version: c.version(),
            username: c.identity().to_owned(),
            password: SecretBytes::copy_from(c.secret().expose_secret()),
        }
    }
}

/// The SQLSTATE of a refused login.
pub const REFUSED: &str = "28P01";

/// How libpq-based clients (psycopg, psql) report a refused login: as text,
/// with no SQLSTATE. [`CredentialFeed::after_error`] takes an empty code
/// with this text for [`REFUSED`] (servers with English messages).
pub const LIBPQ_REFUSED: &str = "password authentication failed for user";

/// How many refused versions a feed remembers (a version refused once
/// is not offered again while it is remembered).
const MAX_REFUSALS_KEPT: usize = 64;

/// What a host pool should do after an error from the server.
#[derive(Debug)]
pub enum AfterError {
    /// The login was refused and another stored version is there to try:
    /// connect again with it.
    Retry(PgLogin),
    /// The login was refused and no other stored version is left: raise
    /// the server's error.
    NoOtherCredential,
    /// Not a refused login (a query error, `pg_hba.conf`, a network
    /// failure): raise it; the feed did nothing.
    NotACredentialError,
}

/// The credentials a host pool logs in with (see the [module docs](self)).
pub struct CredentialFeed {
    source: Arc<dyn CredentialSource>,
    /// Stored versions the server refused.
    refused: tokio::sync::Mutex<BTreeSet<u64>>,
    refreshes: AtomicU64,
    external_auth: bool,
    /// The task that waits on the source's changes (a leased source issues
    /// its next credential there); aborted when the feed is dropped.
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for CredentialFeed {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            d.abort();
        }
    }
}

impl fmt::Debug for CredentialFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialFeed")
            .field("source", &self.source.name())
            .field("refreshes", &self.refreshes())
            .finish_non_exhaustive()
    }
}

impl CredentialFeed {
    /// A feed of rotated credential `name` in `door`'s store.
    #[must_use]
    pub fn rotated(door: Door, name: &str) -> Self {
        Self::from_source(Arc::new(RotatedSource::new(door, name)))
    }

    /// A feed over any credential source (a dynamic-credentials lease).
    #[must_use]
    pub fn from_source(source: Arc<dyn CredentialSource>) -> Self {
        Self {
            source,
            refused: tokio::sync::Mutex::new(BTreeSet::new()),
            refreshes: AtomicU64::new(0),
            external_auth: false,
            driver: None,
        }
    }

    /// A feed over a source that changes its credentials only while
    /// something waits on [`CredentialSource::changed`] (a
    /// [`LeaseSource`](strongroom_sqlx::pool::LeaseSource) issues its next
    /// credential there): a task on the current tokio runtime does, until
    /// the feed is dropped. Only called from async code of this crate
    /// (outside a runtime `tokio::spawn` would panic).
    #[must_use]
    pub(crate) fn driven(source: Arc<dyn CredentialSource>) -> Self {
        let waiter = source.clone();
        let mut feed = Self::from_source(source);
        feed.driver = Some(tokio::spawn(async move {
            loop {
                waiter.changed().await;
            }
        }));
        feed
    }

    /// The server checks this role's password through an external method
    /// (LDAP, PAM, RADIUS), which reports a bad password as `28000`.
    #[must_use]
    pub fn external_auth(mut self, yes: bool) -> Self {
        self.external_auth = yes;
        self
    }

    /// How many refreshes refusals have caused (one per refused version,
    /// however many connections saw it).
    #[must_use]
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// The login for a new connection: the current version unless the
    /// server refused it, then the next stored version to try.
    ///
    /// `None` when the credential has no stored version yet (nothing was
    /// rotated or imported).
    ///
    /// # Errors
    ///
    /// Reading the store.
    pub async fn login(&self) -> strongroom::Result<Option<PgLogin>> {
        let staged = self.source.staged().await?;
        let refused = self.refused.lock().await;
        Ok(pick(&staged, &refused).map(PgLogin::from))
    }

    /// Tells the feed the server answered a connection that logged in with
    /// `version` with SQLSTATE `code` and `message` (an empty code with
    /// libpq's [`LIBPQ_REFUSED`] text counts as [`REFUSED`]). For a refused login
    /// (`28P01`) the version is recorded as refused once, however many
    /// connections report it, and the next login to try is returned.
    ///
    /// # Errors
    ///
    /// Reading the store.
    pub async fn after_error(
        &self,
        version: u64,
        code: &str,
        message: &str,
    ) -> strongroom::Result<AfterError> {
        // libpq (psycopg, psql) reports a refused login as text only.
        let code = if code.is_empty() && message.contains(LIBPQ_REFUSED) {
            REFUSED
        } else {
            code
        };
        if classify_code(code, message, self.external_auth) != ErrorClass::Credential {
            return Ok(AfterError::NotACredentialError);
        }
        let mut refused = self.refused.lock().await;
        if refused.insert(version) {
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            ::metrics::counter!(strongroom_sqlx::pool::POOL_REFRESHES).increment(1);
        }
        // Versions only grow: the oldest refusals are of versions long gone.
        while refused.len() > MAX_REFUSALS_KEPT {
            refused.pop_first();
        }
        let staged = self.source.staged().await?;
        Ok(
            match staged
                .in_try_order()
                .find(|c| !refused.contains(&c.version()))
            {
                Some(c) => AfterError::Retry(c.into()),
                None => {
                    // Every stored version was refused: a refusal may have
                    // been transient (a rotation rolled back), so start
                    // over with the current one next time.
                    refused.clear();
                    AfterError::NoOtherCredential
                }
            },
        )
    }
}

/// The version to log in with: current unless refused, else the next in try
/// order (pending, current, previous) not refused.
fn pick<'a>(staged: &'a StagedCredentials, refused: &BTreeSet<u64>) -> Option<&'a Credential> {
    staged
        .current
        .as_ref()
        .filter(|c| !refused.contains(&c.version()))
        .or_else(|| {
            staged
                .in_try_order()
                .find(|c| !refused.contains(&c.version()))
        })
        .or(staged.current.as_ref())
        .or(staged.pending.as_ref())
}

/// How a [`PgRotation`] changes the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgRotationMode {
    /// Two login roles `<base>_a` and `<base>_b`; the one not in use gets
    /// the new password, so logins never fail during a rotation.
    Alternating,
    /// `ALTER ROLE` on one role: between setting and promoting, the old
    /// password no longer works (a feed moves to the pending version).
    SingleUser,
}

/// A rotated PostgreSQL password (see the [module docs](self)).
pub struct PgRotation {
    engine: Arc<RotationEngine>,
    admin: sqlx::PgPool,
}

impl fmt::Debug for PgRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgRotation")
            .field("name", &self.engine.name())
            .finish_non_exhaustive()
    }
}

fn rejected(message: String) -> strongroom::Error {
    strongroom::Error::storage("postgres", StorageErrorKind::Rejected, message)
}

fn sql_error(what: &str, e: &sqlx::Error) -> strongroom::Error {
    // Database errors carry no secret; a URL is never part of the message.
    match e {
        sqlx::Error::Database(d) => rejected(format!(
            "{what}: {} (code {})",
            d.message(),
            d.code().unwrap_or_default()
        )),
        sqlx::Error::Configuration(_) => rejected(format!("{what}: the URL is malformed")),
        other => strongroom::Error::storage(
            "postgres",
            StorageErrorKind::Unavailable,
            format!("{what}: {other}"),
        ),
    }
}

impl PgRotation {
    /// Opens the rotation of credential `name` in `door`'s store, for role
    /// `role` (the base name of the two roles, or the one role) on the
    /// server and database of `admin_url`, administered through
    /// `admin_url`'s login. The alternating roles are created if missing.
    /// Does not rotate.
    ///
    /// # Errors
    ///
    /// A storage error of kind `Rejected` for a malformed URL, a refused
    /// login or missing privileges, `Unavailable` for an unreachable
    /// server; [`strongroom::Error::InvalidArgument`] for a bad role name;
    /// as for [`Door::rotation_engine`].
    pub async fn open(
        door: &Door,
        name: &str,
        admin_url: &str,
        role: &str,
        mode: PgRotationMode,
        options: RotationOptions,
    ) -> strongroom::Result<Self> {
        let target: PgConnectOptions = admin_url
            .parse()
            .map_err(|_| rejected("the administrative URL is malformed".to_owned()))?;
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(target.clone())
            .await
            .map_err(|e| sql_error("cannot connect to administer the role", &e))?;
        let rotator: Arc<dyn Rotator> = match mode {
            PgRotationMode::Alternating => {
                let r = PgAlternatingRotator::new(admin.clone(), target, role)?;
                r.ensure_roles()
                    .await
                    .map_err(|e| sql_error("cannot create the login roles", &e))?;
                Arc::new(r)
            }
            PgRotationMode::SingleUser => {
                Arc::new(PgSingleUserRotator::new(admin.clone(), target, role))
            }
        };
        let engine = door.rotation_engine(name, rotator, options).await?;
        Ok(Self {
            engine: Arc::new(engine),
            admin,
        })
    }

    /// The engine (rotate, status, staged, revoke).
    #[must_use]
    pub fn engine(&self) -> &Arc<RotationEngine> {
        &self.engine
    }

    /// Closes the administrative connections.
    pub async fn close(&self) {
        self.admin.close().await;
    }
}

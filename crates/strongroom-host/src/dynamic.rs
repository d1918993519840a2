//! Dynamic PostgreSQL credentials as the bindings offer them: the store's
//! role catalog (the one `strongroom creds configure` and the
//! `[dynamic.postgres]` section of the declaration files write), an engine
//! connected with the catalog's connection secret, and credentials issued
//! as leases of the caller's [`LeaseManager`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseManager};
use strongroom::{Handle, SecretString};
use strongroom_sqlx::dynamic::{PgCatalog, PgDynamicCredentials};
use strongroom_sqlx::pool::LeaseSource;

use crate::pg::CredentialFeed;

/// The smallest fraction of a lease's TTL after which a feed renews.
pub const MIN_REFRESH_FRACTION: f64 = 0.05;
/// The largest fraction of a lease's TTL after which a feed renews.
pub const MAX_REFRESH_FRACTION: f64 = 0.95;

/// A credential issued from the catalog: its lease and the login.
pub struct DynamicLogin {
    /// The lease (revoke or renew it through the lease manager).
    pub lease: Lease,
    /// The generated role name.
    pub username: String,
    /// The generated password (wiped on drop, never in `Debug`).
    pub password: SecretString,
}

impl fmt::Debug for DynamicLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicLogin")
            .field("lease", &self.lease.id())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Stores `toml` as the role catalog in place of revision
/// `expected_revision` (`None`: there must be none yet), as `written_by`;
/// returns the new revision. The same checks as `strongroom creds
/// configure`.
///
/// # Errors
///
/// [`strongroom::Error::InvalidArgument`] for a catalog that does not parse
/// or check (its message names the problem, never a value), or when the
/// stored revision is not `expected_revision`; storage errors.
pub async fn configure(
    door: &Door,
    toml: &str,
    expected_revision: Option<u64>,
    written_by: &str,
) -> strongroom::Result<u64> {
    let catalog = PgCatalog::from_toml_str(toml, "catalog")?;
    Ok(catalog.save(door, expected_revision, written_by).await?)
}

/// The engine over the stored role catalog (cheap to clone).
#[derive(Clone)]
pub struct DynamicPg {
    engine: Arc<PgDynamicCredentials>,
    catalog: Arc<PgCatalog>,
    clock: Arc<dyn strongroom::clock::Clock>,
}

impl fmt::Debug for DynamicPg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicPg")
            .field("roles", &self.roles())
            .finish_non_exhaustive()
    }
}

impl DynamicPg {
    /// Loads the stored catalog, reads its connection secret as `reader`
    /// (checked and audited like any read), connects, and registers the
    /// engine's revoker with `leases`.
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] if no catalog is stored; a
    /// policy error if `reader` may not read the connection secret; a
    /// storage error (kind `Rejected` or `Unavailable`) if the server
    /// refuses the login or cannot be reached.
    pub async fn open(
        door: &Door,
        reader: &Handle,
        leases: Arc<LeaseManager>,
    ) -> strongroom::Result<Self> {
        let stored = PgCatalog::load(door).await?.ok_or_else(|| {
            strongroom::Error::InvalidArgument(
                "no role catalog is stored: configure one first (strongroom creds configure FILE, or [dynamic.postgres] in the declaration files)"
                    .to_owned(),
            )
        })?;
        let engine = stored.catalog.connect(reader, door, leases).await?;
        Ok(Self {
            engine: Arc::new(engine),
            catalog: Arc::new(stored.catalog),
            clock: door.clock().clone(),
        })
    }

    /// The catalog's role names.
    #[must_use]
    pub fn roles(&self) -> Vec<String> {
        self.catalog.roles.keys().cloned().collect()
    }

    /// The lease path of `role`'s credentials (`<mount>/creds/<role>`).
    #[must_use]
    pub fn lease_path(&self, role: &str) -> String {
        format!("{}/creds/{role}", self.catalog.mount)
    }

    /// Issues a credential of `role` for `ttl` (`None`: the role's
    /// default), as `who` (checked for `lease` on the lease path and
    /// audited) or, with `None`, unchecked.
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] for an unknown role or a TTL
    /// above the role's maximum; a policy error; storage errors for the
    /// server.
    pub async fn issue(
        &self,
        who: Option<&Handle>,
        role: &str,
        ttl: Option<Duration>,
    ) -> strongroom::Result<DynamicLogin> {
        let definition = self.catalog.definition(role)?;
        let (lease, cred) = match who {
            Some(h) => self.engine.issue_as(h, &definition, ttl).await?,
            None => self.engine.issue(&definition, ttl).await?,
        };
        Ok(DynamicLogin {
            lease,
            username: cred.username,
            password: cred.password,
        })
    }

    /// A feed for a host pool whose logins are credentials of `role`: it
    /// issues one now and a fresh one once `refresh_fraction` (0.05 to
    /// 0.95) of each lease's TTL has passed on the store's clock, keeping
    /// the previous one until its own lease ends. Call it inside the
    /// tokio runtime: the refresh runs on a task of it.
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] for a fraction outside
    /// [`MIN_REFRESH_FRACTION`]..=[`MAX_REFRESH_FRACTION`] (NaN included);
    /// as for [`DynamicPg::issue`].
    pub async fn feed(
        &self,
        role: &str,
        ttl: Option<Duration>,
        refresh_fraction: f64,
    ) -> strongroom::Result<CredentialFeed> {
        if !(MIN_REFRESH_FRACTION..=MAX_REFRESH_FRACTION).contains(&refresh_fraction) {
            return Err(strongroom::Error::InvalidArgument(format!(
                "refresh_fraction must be between {MIN_REFRESH_FRACTION} and {MAX_REFRESH_FRACTION}, got {refresh_fraction}"
            )));
        }
        let definition = self.catalog.definition(role)?;
        let source = LeaseSource::new(
            self.engine.clone(),
            definition,
            ttl,
            self.clock.clone(),
            refresh_fraction,
        )
        .await?;
        Ok(CredentialFeed::driven(Arc::new(source)))
    }
}

//! PostgreSQL rotators for [`strongroom::rotation::RotationEngine`].
//!
//! - [`PgAlternatingRotator`]: two login roles `<base>_a` and `<base>_b`,
//!   members of one owner role `<base>_owner`. A rotation sets a fresh
//!   password on the role that is *not* current, tests it and promotes it; the
//!   current role keeps working throughout, so clients switch without a
//!   single failed login. Both login roles default to `SET ROLE <base>_owner`
//!   at login, so objects either creates belong to the owner and stay usable
//!   by both.
//! - [`PgSingleUserRotator`]: `ALTER ROLE ... PASSWORD` on one role. Between
//!   "set" and "promote" the old password no longer works while clients may
//!   still hold it: there is a window. The self-healing pool
//!   ([`crate::pool::HealingPool`]) survives it by trying the stored pending
//!   version when a login fails; other clients must do the same or accept the
//!   failure.
//!
//! Every statement is built on the server with `format('%I', ...)` and
//! `format('%L', ...)` from bound parameters (`CREATE/ALTER ROLE` take no bind
//! parameters); no caller text is pasted into SQL. Passwords never travel
//! to the server: `ALTER ROLE` receives the SCRAM-SHA-256 verifier computed
//! here ([`scram_verifier`]), so statement logs never see a password.

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};
use strongroom::SecretBytes;
use strongroom::rotation::{ApiKeyFormat, Credential, RotationContext, Rotator, TargetError};

/// Length of generated passwords (base62 characters, about 190 bits).
pub const PASSWORD_CHARS: usize = 32;

fn sql_err(what: &str, e: &sqlx::Error) -> TargetError {
    // Database errors carry no secret (the statement text is not echoed).
    let msg = match e {
        sqlx::Error::Database(d) => format!(
            "{what}: {} (SQLSTATE {})",
            d.message(),
            d.code().unwrap_or_default()
        ),
        other => format!("{what}: {other}"),
    };
    match e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("42501") => {
            TargetError::permanent(msg)
        }
        _ => TargetError::transient(msg),
    }
}

fn generate_password() -> Result<SecretBytes, TargetError> {
    ApiKeyFormat::base62("", PASSWORD_CHARS)
        .generate()
        .map_err(|_| TargetError::transient("random number generator failed"))
}

fn secret_str(c: &Credential) -> Result<&str, TargetError> {
    std::str::from_utf8(c.secret().expose_secret())
        .map_err(|_| TargetError::permanent("stored password is not UTF-8"))
}

/// Runs `template` (a `format(...)` call over `$1`, `$2`) on the server and
/// executes the statement it returns.
async fn exec_formatted(
    admin: &PgPool,
    template: &'static str,
    ident: &str,
    literal: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut conn = admin.acquire().await?;
    let mut q = sqlx::query_scalar::<_, String>(template).bind(ident);
    if let Some(l) = literal {
        q = q.bind(l);
    }
    let stmt = zeroize::Zeroizing::new(q.fetch_one(&mut *conn).await?);
    sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.as_str()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802,
/// RFC 7677), computed here so that the password itself never reaches the
/// server, its statement log or `pg_stat_activity`. The password must be
/// ASCII without control characters (SASLprep is then the identity); the
/// generated ones are base62.
pub fn scram_verifier(password: &[u8]) -> Result<zeroize::Zeroizing<String>, TargetError> {
    use base64::Engine as _;
    use ring::{digest, hmac, pbkdf2};
    if !password.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(TargetError::permanent(
            "password must be printable ASCII to compute a SCRAM verifier",
        ));
    }
    const ITERATIONS: u32 = 4096;
    let salt = SecretBytes::random(16)
        .map_err(|_| TargetError::transient("random number generator failed"))?;
    let mut salted = zeroize::Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::MIN.saturating_add(ITERATIONS - 1),
        salt.expose_secret(),
        password,
        &mut *salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &*salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(zeroize::Zeroizing::new(format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b64.encode(salt.expose_secret()),
        b64.encode(stored_key.as_ref()),
        b64.encode(server_key.as_ref())
    )))
}

async fn set_password(admin: &PgPool, role: &str, c: &Credential) -> Result<(), TargetError> {
    let verifier = scram_verifier(c.secret().expose_secret())?;
    exec_formatted(
        admin,
        "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)",
        role,
        Some(verifier.as_str()),
    )
    .await
    .map_err(|e| sql_err("alter role password", &e))
}

async fn clear_password(admin: &PgPool, role: &str) -> Result<(), TargetError> {
    exec_formatted(
        admin,
        "SELECT format('ALTER ROLE %I WITH PASSWORD NULL', $1::text)",
        role,
        None,
    )
    .await
    .map_err(|e| sql_err("clear role password", &e))
}

async fn test_login(target: &PgConnectOptions, c: &Credential) -> Result<(), TargetError> {
    let opts = target
        .clone()
        .username(c.identity())
        .password(secret_str(c)?)
        .disable_statement_logging();
    let mut conn = opts
        .connect()
        .await
        .map_err(|e| sql_err("test login", &e))?;
    let who: String = sqlx::query_scalar("SELECT session_user::text")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| sql_err("test query", &e))?;
    let _ = conn.close().await;
    if who == c.identity() {
        Ok(())
    } else {
        Err(TargetError::permanent(format!(
            "test login reached session user {who:?}, expected {:?}",
            c.identity()
        )))
    }
}

fn check_base(base: &str) -> Result<(), strongroom::Error> {
    let ok = !base.is_empty()
        && base.len() <= 50
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !base.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(strongroom::Error::InvalidArgument(format!(
            "role base name {base:?}: use 1-50 characters of a-z, 0-9, '_', not starting with a digit"
        )))
    }
}

/// The alternating-users rotator (see the module docs).
#[derive(Debug, Clone)]
pub struct PgAlternatingRotator {
    admin: PgPool,
    target: PgConnectOptions,
    base: String,
}

impl PgAlternatingRotator {
    /// A rotator for roles `<base>_a`/`<base>_b` (owner `<base>_owner`),
    /// administered through `admin` (a role with `CREATEROLE` that is a
    /// member of the owner role with admin option, or a superuser). `target`
    /// says where test logins go (host, port, database; its user and
    /// password are ignored).
    pub fn new(
        admin: PgPool,
        target: PgConnectOptions,
        base: &str,
    ) -> Result<Self, strongroom::Error> {
        check_base(base)?;
        Ok(Self {
            admin,
            target,
            base: base.to_owned(),
        })
    }

    /// The login role names (`<base>_a`, `<base>_b`).
    pub fn roles(&self) -> (String, String) {
        (format!("{}_a", self.base), format!("{}_b", self.base))
    }

    /// The owner role name (`<base>_owner`).
    pub fn owner_role(&self) -> String {
        format!("{}_owner", self.base)
    }

    /// Creates the owner role and both login roles if missing (login roles
    /// without a password until the first rotation sets one), grants the
    /// owner role to both, makes them `SET ROLE` to it at login, and grants
    /// the owner `CONNECT` and `CREATE` on the target database's `public`
    /// schema. Idempotent.
    pub async fn ensure_roles(&self) -> Result<(), sqlx::Error> {
        let owner = self.owner_role();
        let (a, b) = self.roles();
        let mut tx = self.admin.begin().await?;
        // serialise concurrent callers (role creation is not IF NOT EXISTS)
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&owner)
            .execute(&mut *tx)
            .await?;
        for (role, login) in [(&owner, false), (&a, true), (&b, true)] {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(role)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                let tpl = if login {
                    "SELECT format('CREATE ROLE %I LOGIN INHERIT', $1::text)"
                } else {
                    "SELECT format('CREATE ROLE %I NOLOGIN', $1::text)"
                };
                let stmt: String = sqlx::query_scalar(tpl)
                    .bind(role)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for role in [&a, &b] {
            for tpl in [
                "SELECT format('GRANT %I TO %I', $1::text, $2::text)",
                "SELECT format('ALTER ROLE %I SET role = %L', $2::text, $1::text)",
            ] {
                let stmt: String = sqlx::query_scalar(tpl)
                    .bind(&owner)
                    .bind(role)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let db: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut *tx)
            .await?;
        for tpl in [
            "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', $1::text, $2::text)",
            "SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', $2::text, $1::text)",
        ] {
            let stmt: String = sqlx::query_scalar(tpl)
                .bind(&db)
                .bind(&owner)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    fn is_ours(&self, role: &str) -> bool {
        let (a, b) = self.roles();
        role == a || role == b
    }
}

#[async_trait]
impl Rotator for PgAlternatingRotator {
    fn kind(&self) -> &'static str {
        "postgres-alternating"
    }

    async fn create(&self, ctx: &RotationContext<'_>) -> Result<Credential, TargetError> {
        let (a, b) = self.roles();
        let role = match ctx.current {
            Some(c) if c.identity() == a => b,
            _ => a,
        };
        Ok(Credential::new(ctx.version, role, generate_password()?))
    }

    async fn set(
        &self,
        ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> Result<(), TargetError> {
        if !self.is_ours(pending.identity()) {
            return Err(TargetError::permanent(
                "pending role is not one of the pair",
            ));
        }
        if ctx
            .current
            .is_some_and(|c| c.identity() == pending.identity())
        {
            return Err(TargetError::permanent(
                "pending role is the current role; refusing to break it",
            ));
        }
        set_password(&self.admin, pending.identity(), pending).await
    }

    async fn test(
        &self,
        _ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> Result<(), TargetError> {
        test_login(&self.target, pending).await
    }

    async fn rollback(
        &self,
        ctx: &RotationContext<'_>,
        failed: &Credential,
    ) -> Result<(), TargetError> {
        // The failed role is not the current one (checked in `set`), so
        // disabling its password cannot break current.
        if ctx
            .current
            .is_some_and(|c| c.identity() == failed.identity())
        {
            return Ok(());
        }
        clear_password(&self.admin, failed.identity()).await
    }

    async fn revoke(&self, ctx: &RotationContext<'_>, old: &Credential) -> Result<(), TargetError> {
        if ctx.current.is_some_and(|c| c.identity() == old.identity())
            || !self.is_ours(old.identity())
        {
            return Ok(());
        }
        clear_password(&self.admin, old.identity()).await
    }
}

/// The single-user rotator: `ALTER ROLE <role> PASSWORD` on one existing
/// login role. See the module docs for the window it leaves.
#[derive(Debug, Clone)]
pub struct PgSingleUserRotator {
    admin: PgPool,
    target: PgConnectOptions,
    role: String,
}

impl PgSingleUserRotator {
    /// A rotator for login role `role`, administered through `admin`; test
    /// logins go to `target` (its user and password are ignored).
    pub fn new(admin: PgPool, target: PgConnectOptions, role: &str) -> Self {
        Self {
            admin,
            target,
            role: role.to_owned(),
        }
    }
}

#[async_trait]
impl Rotator for PgSingleUserRotator {
    fn kind(&self) -> &'static str {
        "postgres-single-user"
    }

    async fn create(&self, ctx: &RotationContext<'_>) -> Result<Credential, TargetError> {
        Ok(Credential::new(
            ctx.version,
            self.role.clone(),
            generate_password()?,
        ))
    }

    async fn set(
        &self,
        _ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> Result<(), TargetError> {
        set_password(&self.admin, &self.role, pending).await
    }

    async fn test(
        &self,
        _ctx: &RotationContext<'_>,
        pending: &Credential,
    ) -> Result<(), TargetError> {
        test_login(&self.target, pending).await
    }

    async fn rollback(
        &self,
        ctx: &RotationContext<'_>,
        _failed: &Credential,
    ) -> Result<(), TargetError> {
        // One password slot: put the current password back.
        match ctx.current {
            Some(cur) => set_password(&self.admin, &self.role, cur).await,
            None => clear_password(&self.admin, &self.role).await,
        }
    }

    async fn revoke(
        &self,
        _ctx: &RotationContext<'_>,
        _old: &Credential,
    ) -> Result<(), TargetError> {
        // The old password was replaced when the new one was set.
        Ok(())
    }
}

//! PostgreSQL: a rotated password, dynamic credentials from the store's
//! role catalog, and the credential feed a connection pool (node-postgres,
//! `pg.js`) logs in with. Conversion over [`strongroom_host::pg`] and
//! [`strongroom_host::dynamic`].

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, Env, Object, PromiseRaw};
use napi_derive::napi;
use strongroom::SecretBytes;
use strongroom::dangerous::Door;
use strongroom::rotation::{RotationEngine, RotationOptions};
use strongroom_host::dynamic::DynamicPg;
use strongroom_host::pg::{AfterError, CredentialFeed, PgLogin, PgRotation, PgRotationMode};

use crate::rotation::{
    NativeRotationReport, NativeRotationStatus, report_out, staged_object, status_out,
};
use crate::{
    NativeLease, NativeLeaseManager, NativeStrongroom, context_version, duration_ms, invalid, to_js,
};

/// A login for one connection.
#[napi(object)]
pub struct NativePgLogin {
    /// The stored version it came from (give it back to `afterError`).
    pub version: f64,
    /// The role to log in as.
    pub username: String,
    /// The password (the only copy: the Rust one is wiped).
    pub password: Buffer,
}

fn password_buffer(p: &SecretBytes) -> Buffer {
    Buffer::from(p.expose_secret().to_vec())
}

impl From<PgLogin> for NativePgLogin {
    fn from(l: PgLogin) -> Self {
        Self {
            version: l.version as f64,
            username: l.username,
            password: password_buffer(&l.password),
        }
    }
}

/// What a pool should do after an error from the server.
#[napi(object)]
pub struct NativePgAfterError {
    /// "retry" (connect again with `login`), "no_other_credential" (raise
    /// the server's error) or "not_a_credential_error" (raise it; the feed
    /// did nothing).
    pub action: String,
    /// The next login to try, for "retry".
    pub login: Option<NativePgLogin>,
}

/// The logins a connection pool uses: the current stored version, and
/// after a refused login (`28P01`) the next one to try, once for all the
/// connections that report the same refusal.
#[napi]
pub struct NativeCredentialFeed {
    inner: Arc<CredentialFeed>,
}

#[napi]
impl NativeCredentialFeed {
    /// The login for a new connection (none while nothing is stored).
    #[napi]
    pub fn login<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<NativePgLogin>>> {
        let feed = self.inner.clone();
        env.spawn_future(async move { Ok(feed.login().await.map_err(to_js)?.map(Into::into)) })
    }

    /// Reports the server's answer (SQLSTATE `code`, `message`) to a
    /// connection that logged in with `version`.
    #[napi]
    pub fn after_error<'env>(
        &self,
        env: &'env Env,
        version: f64,
        code: String,
        message: String,
    ) -> napi::Result<PromiseRaw<'env, NativePgAfterError>> {
        let version = context_version(&Either::A(version))?;
        let feed = self.inner.clone();
        env.spawn_future(async move {
            Ok(
                match feed
                    .after_error(version, &code, &message)
                    .await
                    .map_err(to_js)?
                {
                    AfterError::Retry(login) => NativePgAfterError {
                        action: "retry".into(),
                        login: Some(login.into()),
                    },
                    AfterError::NoOtherCredential => NativePgAfterError {
                        action: "no_other_credential".into(),
                        login: None,
                    },
                    // NotACredentialError, and any action a newer host adds.
                    _ => NativePgAfterError {
                        action: "not_a_credential_error".into(),
                        login: None,
                    },
                },
            )
        })
    }

    /// How many refreshes refusals caused (one per refused version).
    #[napi(getter)]
    pub fn refreshes(&self) -> f64 {
        self.inner.refreshes() as f64
    }
}

/// A rotated PostgreSQL password.
#[napi]
pub struct NativePgRotation {
    inner: Arc<PgRotation>,
    engine: Arc<RotationEngine>,
    door: Door,
}

#[napi]
impl NativeStrongroom {
    /// The rotation of credential `name` for `role` on the server and
    /// database of `admin_url` (a role with `CREATEROLE`, which administers
    /// it); `mode` "alternating" (roles `<role>_a`/`<role>_b`, created if
    /// missing) or "single" (`ALTER ROLE` on one existing role). Does not
    /// rotate. The URL never appears in errors.
    #[napi]
    #[allow(clippy::too_many_arguments)] // one per JavaScript argument
    pub fn pg_rotation<'env>(
        &self,
        env: &'env Env,
        name: String,
        admin_url: String,
        role: String,
        mode: String,
        grace_period_ms: f64,
        max_attempts: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, NativePgRotation>> {
        let door = self.handle()?;
        let mode = match mode.as_str() {
            "alternating" => PgRotationMode::Alternating,
            "single" => PgRotationMode::SingleUser,
            other => {
                return Err(invalid(format!(
                    "mode must be \"alternating\" or \"single\", not {other:?}"
                )));
            }
        };
        let options = RotationOptions {
            grace_period: duration_ms("gracePeriodMs", grace_period_ms)?,
            max_attempts: max_attempts.unwrap_or(5).max(1),
            ..RotationOptions::default()
        };
        env.spawn_future(async move {
            let inner = PgRotation::open(&door, &name, &admin_url, &role, mode, options)
                .await
                .map_err(to_js)?;
            Ok(NativePgRotation {
                engine: inner.engine().clone(),
                inner: Arc::new(inner),
                door,
            })
        })
    }
}

#[napi]
impl NativePgRotation {
    /// The credential name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.engine.name().to_owned()
    }

    /// Rotates now.
    #[napi]
    pub fn rotate_now<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, NativeRotationReport>> {
        let e = self.engine.clone();
        env.spawn_future(async move { e.rotate_now().await.map(report_out).map_err(to_js) })
    }

    /// Continues an interrupted rotation, and revokes the previous version
    /// if its grace period is over.
    #[napi]
    pub fn resume<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, NativeRotationReport>> {
        let e = self.engine.clone();
        env.spawn_future(async move { e.resume().await.map(report_out).map_err(to_js) })
    }

    /// Revokes the previous version if its grace period is over (on the
    /// store's clock); whether it did.
    #[napi]
    pub fn revoke_due<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let e = self.engine.clone();
        env.spawn_future(async move { e.revoke_due().await.map_err(to_js) })
    }

    /// The non-secret state.
    #[napi]
    pub fn status<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, NativeRotationStatus>> {
        let e = self.engine.clone();
        env.spawn_future(async move { e.status().await.map(status_out).map_err(to_js) })
    }

    /// The stored versions with their secrets.
    #[napi(ts_return_type = "Promise<NativeStaged>")]
    pub fn staged<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let e = self.engine.clone();
        env.spawn_future_with_callback(
            async move { e.staged().await.map_err(to_js) },
            staged_object,
        )
    }

    /// A feed of this credential's logins for a connection pool.
    #[napi]
    pub fn credential_feed(&self) -> NativeCredentialFeed {
        NativeCredentialFeed {
            inner: Arc::new(CredentialFeed::rotated(
                self.door.clone(),
                self.engine.name(),
            )),
        }
    }

    /// Closes the administrative connections.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            inner.close().await;
            Ok(())
        })
    }
}

/// A dynamic credential: its lease and the login.
#[napi(object)]
pub struct NativeDynamicLogin {
    /// The lease (revoke or renew it through the lease manager).
    pub lease: NativeLease,
    /// The generated role name.
    pub username: String,
    /// The generated password.
    pub password: Buffer,
}

/// Dynamic PostgreSQL credentials from the store's role catalog, issued as
/// leases of a lease manager (which revokes them: the role is dropped).
#[napi]
pub struct NativeDynamicPg {
    inner: DynamicPg,
}

#[napi]
impl NativeStrongroom {
    /// Stores `toml` as the role catalog for dynamic credentials in place
    /// of revision `expected_revision` (none: there must be none yet);
    /// resolves to the new revision. The format is `strongroom creds
    /// configure`'s.
    #[napi]
    pub fn configure_pg_catalog<'env>(
        &self,
        env: &'env Env,
        toml: String,
        expected_revision: Option<f64>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let door = self.handle()?;
        let expected = expected_revision
            .map(|v| context_version(&Either::A(v)))
            .transpose()?;
        env.spawn_future(async move {
            strongroom_host::dynamic::configure(&door, &toml, expected, crate::CALLER)
                .await
                .map(|r| r as f64)
                .map_err(to_js)
        })
    }

    /// Loads the stored catalog, reads its connection secret, connects and
    /// registers the revoker with `leases` (of this store).
    #[napi]
    pub fn dynamic_pg<'env>(
        &self,
        env: &'env Env,
        leases: &NativeLeaseManager,
    ) -> napi::Result<PromiseRaw<'env, NativeDynamicPg>> {
        let door = self.handle()?;
        let manager = leases.manager()?;
        env.spawn_future(async move {
            let inner = DynamicPg::open(&door, door.handle(), manager)
                .await
                .map_err(to_js)?;
            Ok(NativeDynamicPg { inner })
        })
    }
}

#[napi]
impl NativeDynamicPg {
    /// The catalog's role names.
    #[napi]
    pub fn roles(&self) -> Vec<String> {
        self.inner.roles()
    }

    /// Issues a credential of `role` for `ttl_ms` (none: the role's default).
    #[napi]
    pub fn issue<'env>(
        &self,
        env: &'env Env,
        role: String,
        ttl_ms: Option<f64>,
    ) -> napi::Result<PromiseRaw<'env, NativeDynamicLogin>> {
        let ttl = ttl_ms.map(|v| duration_ms("ttlMs", v)).transpose()?;
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let l = inner.issue(None, &role, ttl).await.map_err(to_js)?;
            let password = Buffer::from(l.password.expose_secret().as_bytes().to_vec());
            Ok(NativeDynamicLogin {
                lease: l.lease.into(),
                username: l.username,
                password,
            })
        })
    }

    /// A feed for a connection pool: a credential of `role` now and a new
    /// one once `refresh_fraction` (default 0.5, clamped to 0.05..=0.95)
    /// of each lease's TTL has passed on the store's clock.
    #[napi]
    pub fn feed<'env>(
        &self,
        env: &'env Env,
        role: String,
        ttl_ms: Option<f64>,
        refresh_fraction: Option<f64>,
    ) -> napi::Result<PromiseRaw<'env, NativeCredentialFeed>> {
        let ttl = ttl_ms.map(|v| duration_ms("ttlMs", v)).transpose()?;
        let fraction = refresh_fraction.unwrap_or(0.5);
        if !fraction.is_finite() {
            // the host clamps finite values to 0.05..=0.95
            return Err(invalid(format!(
                "refreshFraction must be a number between 0.05 and 0.95, got {fraction}"
            )));
        }
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let feed = inner.feed(&role, ttl, fraction).await.map_err(to_js)?;
            Ok(NativeCredentialFeed {
                inner: Arc::new(feed),
            })
        })
    }
}

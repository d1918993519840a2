//! API-key rotation: conversion over [`strongroom_host::apikey`] (one set
//! of key-format rules for every binding), and the rotation report, status
//! and staged versions every rotated credential shares.

use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, Either, Env, Null, Object, PromiseRaw};
use napi_derive::napi;
use strongroom::rotation::{
    Credential, Matched, RotationEngine, RotationOptions, RotationReport, RotationStatus,
    StagedCredentials,
};
use strongroom_host::apikey::{ApiKeyRotation, ApiKeySpec};

use strongroom::SecretBytes;

use crate::{NativeStrongroom, duration_ms, invalid, ms, plain_bytes, to_js};

/// What one rotation call did.
#[napi(object)]
pub struct NativeRotationReport {
    /// The version promoted to current, if any.
    pub promoted: Option<f64>,
    /// The previous version revoked, if any.
    pub revoked: Option<f64>,
}

/// One version's history (no secret).
#[napi(object)]
pub struct NativeRotationVersion {
    /// The version number.
    pub version: f64,
    /// Its non-secret identity (for API keys, the prefix).
    pub identity: String,
    /// When it was created (ms).
    pub created_ms: f64,
    /// When it became current (ms).
    pub promoted_ms: Option<f64>,
    /// When it stopped being current (ms).
    pub superseded_ms: Option<f64>,
    /// When it was revoked (ms).
    pub revoked_ms: Option<f64>,
    /// When it was discarded after failing (ms).
    pub failed_ms: Option<f64>,
}

/// The non-secret state of a rotated credential.
#[napi(object)]
pub struct NativeRotationStatus {
    /// The pending version.
    pub pending: Option<f64>,
    /// The current version.
    pub current: Option<f64>,
    /// The previous version.
    pub previous: Option<f64>,
    /// When the previous version is due to be revoked (ms).
    pub revoke_previous_ms: Option<f64>,
    /// When the current version was promoted (ms).
    pub last_promoted_ms: Option<f64>,
    /// The step of an interrupted or running rotation ("create-pending", ...).
    pub in_flight_step: Option<String>,
    /// The version that step works on.
    pub in_flight_version: Option<f64>,
    /// Recent versions, oldest first.
    pub history: Vec<NativeRotationVersion>,
}

/// An API key rotated by a [`RotationEngine`], and the verifier that
/// accepts the current and (during the grace period) the previous key.
#[napi]
pub struct NativeApiKeyRotation {
    inner: ApiKeyRotation,
    engine: Arc<RotationEngine>,
}

#[napi]
impl NativeStrongroom {
    /// An API-key rotation of credential `name`: keys are `prefix` followed
    /// by `length` base62 characters (`encoding` "base62") or `length`
    /// random bytes in hex ("hex"). The previous key stays valid for
    /// `grace_period_ms` after a promotion. The verifier starts with the
    /// stored versions.
    #[napi]
    #[allow(clippy::too_many_arguments)] // one per JavaScript argument
    pub fn api_key_rotation<'env>(
        &self,
        env: &'env Env,
        name: String,
        prefix: String,
        encoding: String,
        length: u32,
        grace_period_ms: f64,
        max_attempts: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, NativeApiKeyRotation>> {
        let sr = self.handle()?;
        let spec = match encoding.as_str() {
            "base62" => ApiKeySpec::base62(&prefix, length as usize),
            "hex" => ApiKeySpec::hex(&prefix, length as usize),
            other => {
                return Err(invalid(format!(
                    "encoding must be \"base62\" or \"hex\", not {other:?}"
                )));
            }
        }
        .map_err(to_js)?;
        let options = RotationOptions {
            grace_period: duration_ms("gracePeriodMs", grace_period_ms)?,
            max_attempts: max_attempts.unwrap_or(5).max(1),
            ..RotationOptions::default()
        };
        env.spawn_future(async move {
            let inner = ApiKeyRotation::open(&sr, &name, spec, options)
                .await
                .map_err(to_js)?;
            Ok(NativeApiKeyRotation {
                engine: inner.engine().clone(),
                inner,
            })
        })
    }
}

/// A rotation report as JavaScript sees it.
pub(crate) fn report_out(r: RotationReport) -> NativeRotationReport {
    NativeRotationReport {
        promoted: r.promoted.map(|v| v as f64),
        revoked: r.revoked.map(|v| v as f64),
    }
}

/// A rotation status as JavaScript sees it.
pub(crate) fn status_out(s: RotationStatus) -> NativeRotationStatus {
    let v = |n: u64| n as f64;
    NativeRotationStatus {
        pending: s.pending.map(v),
        current: s.current.map(v),
        previous: s.previous.map(v),
        revoke_previous_ms: s.revoke_previous_at.map(ms),
        last_promoted_ms: s.last_promoted.map(ms),
        in_flight_step: s.in_flight.map(|(step, _)| step.to_string()),
        in_flight_version: s.in_flight.map(|(_, n)| v(n)),
        history: s
            .history
            .into_iter()
            .map(|h| NativeRotationVersion {
                version: v(h.version),
                identity: h.identity,
                created_ms: ms(h.created),
                promoted_ms: h.promoted.map(ms),
                superseded_ms: h.superseded.map(ms),
                revoked_ms: h.revoked.map(ms),
                failed_ms: h.failed.map(ms),
            })
            .collect(),
    }
}

/// The staged versions as a JavaScript object `{ pending, current,
/// previous }`, each `null` or `{ version, identity, secret: Buffer }` (a
/// copy; the Rust one is zeroized when `staged` drops).
pub(crate) fn staged_object(env: &Env, staged: StagedCredentials) -> napi::Result<Object<'_>> {
    let mut out = Object::new(env)?;
    for (stage, c) in [
        ("pending", &staged.pending),
        ("current", &staged.current),
        ("previous", &staged.previous),
    ] {
        match c {
            Some(c) => out.set(stage, credential_object(env, c)?)?,
            None => out.set(stage, Null)?,
        }
    }
    Ok(out)
}

fn credential_object<'env>(env: &'env Env, c: &Credential) -> napi::Result<Object<'env>> {
    let mut o = Object::new(env)?;
    o.set("version", c.version() as f64)?;
    o.set("identity", c.identity())?;
    o.set(
        "secret",
        BufferSlice::copy_from(env, c.secret().expose_secret())?,
    )?;
    Ok(o)
}

#[napi]
impl NativeApiKeyRotation {
    /// The credential name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.engine.name().to_owned()
    }

    /// Rotates now (finishing an interrupted rotation and revoking a
    /// previous version still in its grace period first).
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

    /// Revokes the previous version if its grace period is over; whether it did.
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

    /// Stores an existing key (one clients already use; it may predate the
    /// format, but not be empty) as the current version; refused once a
    /// current version exists. Resolves to its version number.
    #[napi]
    pub fn import_current<'env>(
        &self,
        env: &'env Env,
        key: Either<BufferSlice<'_>, String>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let r = self.inner.clone();
        let key = SecretBytes::copy_from(plain_bytes(&key));
        env.spawn_future(
            async move { r.import_current(key).await.map(|v| v as f64).map_err(to_js) },
        )
    }

    /// Reloads the verifier from the stored versions (after another
    /// process rotated).
    #[napi]
    pub fn sync<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let r = self.inner.clone();
        env.spawn_future(async move { r.refresh().await.map_err(to_js) })
    }

    /// Checks a presented key in constant time: "current", "previous" or
    /// "no_match".
    #[napi]
    pub fn verify(&self, presented: Either<BufferSlice<'_>, String>) -> &'static str {
        match self.inner.verify(plain_bytes(&presented)) {
            Matched::Current => "current",
            Matched::Previous => "previous",
            _ => "no_match",
        }
    }
}

//! Versioned secrets, principals' handles, policies and the audit log.

use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::{BigInt, BufferSlice, Either, Env, Object, PromiseRaw};
use napi_derive::napi;
use strongroom::SecretBytes;
use strongroom::dangerous::Door;

use crate::{
    Lifetime, NativeStrongroom, alerts, closed_error, context_version, ms, plain_bytes,
    secret_buffer, to_js,
};

/// Facts about one version of a secret (never its value).
#[napi(object)]
pub struct NativeVersionInfo {
    /// The version number.
    pub version: f64,
    /// When it was written (ms since the epoch).
    pub created_ms: f64,
    /// When it was soft-deleted, if it is.
    pub deleted_ms: Option<f64>,
    /// When it was destroyed, if it was.
    pub destroyed_ms: Option<f64>,
}

impl From<&strongroom::secrets::VersionInfo> for NativeVersionInfo {
    fn from(v: &strongroom::secrets::VersionInfo) -> Self {
        Self {
            version: v.version as f64,
            created_ms: ms(v.created_at),
            deleted_ms: v.deleted_at.map(ms),
            destroyed_ms: v.destroyed_at.map(ms),
        }
    }
}

/// A secret's metadata (no values).
#[napi(object)]
pub struct NativeSecretMetadata {
    /// The canonical path.
    pub path: String,
    /// The newest version.
    pub current_version: f64,
    /// The oldest version still kept.
    pub oldest_version: f64,
    /// The secret's own version limit, if set.
    pub max_versions: Option<u32>,
    /// The version limit in force.
    pub effective_max_versions: u32,
    /// When version 1 was written (ms).
    pub created_ms: f64,
    /// When the secret last changed (ms).
    pub updated_ms: f64,
    /// When a version last replaced an earlier one (ms).
    pub last_rotated_ms: Option<f64>,
    /// The owner.
    pub owner: Option<String>,
    /// The environment.
    pub environment: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom key-values.
    pub custom: std::collections::HashMap<String, String>,
    /// Rotation interval in milliseconds.
    pub rotation_interval_ms: Option<f64>,
    /// Every kept version, oldest first.
    pub versions: Vec<NativeVersionInfo>,
}

impl From<strongroom::secrets::SecretMetadata> for NativeSecretMetadata {
    fn from(m: strongroom::secrets::SecretMetadata) -> Self {
        Self {
            path: m.path.as_str().to_owned(),
            current_version: m.current_version as f64,
            oldest_version: m.oldest_version as f64,
            max_versions: m.max_versions,
            effective_max_versions: m.effective_max_versions,
            created_ms: ms(m.created_at),
            updated_ms: ms(m.updated_at),
            last_rotated_ms: m.last_rotated_at.map(ms),
            owner: m.owner,
            environment: m.environment,
            tags: m.tags.into_iter().collect(),
            custom: m.custom.into_iter().collect(),
            rotation_interval_ms: m.rotation_interval.map(|d| d.as_millis() as f64),
            versions: m.versions.iter().map(Into::into).collect(),
        }
    }
}

/// Whom the secrets calls go to: the store itself (no policy, no audit;
/// follows the store through seal/unseal) or a principal's handle.
#[derive(Clone)]
pub(crate) enum Target {
    Store(Arc<RwLock<Door>>),
    Handle(strongroom::Handle),
}

/// The versioned secrets store, directly or through a principal's handle.
#[napi]
pub struct NativeSecrets {
    pub(crate) target: Target,
    /// The store's lifetime: calls fail once it is closed.
    pub(crate) life: Arc<Lifetime>,
}

impl NativeSecrets {
    pub(crate) fn target(&self) -> napi::Result<Target> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        Ok(self.target.clone())
    }
}

pub(crate) fn versions_arg(versions: Option<Vec<Either<f64, BigInt>>>) -> napi::Result<Vec<u64>> {
    versions
        .unwrap_or_default()
        .iter()
        .map(context_version)
        .collect()
}

pub(crate) fn versions_out(v: Vec<u64>) -> Vec<f64> {
    v.into_iter().map(|n| n as f64).collect()
}

/// Runs `$store_op` on the store or `$handle_op` on the handle, with the
/// same arguments; evaluates to the core's `Result`.
macro_rules! on_target {
    ($t:expr, $store_op:ident, $handle_op:ident ( $($arg:expr),* )) => {
        match &$t {
            Target::Store(s) => {
                let store = s
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .secrets();
                store.$store_op($($arg),*).await
            }
            Target::Handle(h) => h.$handle_op($($arg),*).await,
        }
    };
}

#[napi]
impl NativeSecrets {
    /// The principal's name, or `null` for the store itself.
    #[napi(getter)]
    pub fn principal(&self) -> Option<String> {
        match &self.target {
            Target::Handle(h) => Some(h.principal().name().to_owned()),
            Target::Store(_) => None,
        }
    }

    /// Writes a new version; `cas` is the expected current version (0: the
    /// secret must not exist).
    #[napi]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        path: String,
        value: Either<BufferSlice<'_>, String>,
        cas: Option<Either<f64, BigInt>>,
    ) -> napi::Result<PromiseRaw<'env, NativeVersionInfo>> {
        let t = self.target()?;
        let cas = cas.as_ref().map(context_version).transpose()?;
        let value = SecretBytes::copy_from(plain_bytes(&value));
        env.spawn_future(async move {
            let v = on_target!(t, put, put(&path, value.expose_secret(), cas)).map_err(to_js)?;
            Ok((&v).into())
        })
    }

    /// Reads the newest version (or `version`): resolves to
    /// `{ info, value }` with `value` a Buffer holding the only JavaScript
    /// copy of the plaintext.
    #[napi(ts_return_type = "Promise<{ info: NativeVersionInfo, value: Buffer }>")]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        path: String,
        version: Option<Either<f64, BigInt>>,
    ) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let t = self.target()?;
        let version = version.as_ref().map(context_version).transpose()?;
        env.spawn_future_with_callback(
            async move {
                match version {
                    Some(v) => on_target!(t, get_version, read_version(&path, v)),
                    None => on_target!(t, get, read(&path)),
                }
                .map_err(to_js)
            },
            |env, found| {
                let mut obj = Object::new(env)?;
                obj.set("info", NativeVersionInfo::from(&found.version))?;
                obj.set("value", secret_buffer(env, found.value)?)?;
                Ok(obj)
            },
        )
    }

    /// Names directly under `prefix`; sub-folders end with "/".
    #[napi]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        prefix: String,
    ) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let t = self.target()?;
        env.spawn_future(async move { on_target!(t, list, list(&prefix)).map_err(to_js) })
    }

    /// Soft-deletes versions (the current one if empty); returns those changed.
    #[napi]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        path: String,
        versions: Option<Vec<Either<f64, BigInt>>>,
    ) -> napi::Result<PromiseRaw<'env, Vec<f64>>> {
        let t = self.target()?;
        let versions = versions_arg(versions)?;
        env.spawn_future(async move {
            on_target!(t, delete, delete(&path, &versions))
                .map(versions_out)
                .map_err(to_js)
        })
    }

    /// Restores soft-deleted versions; returns those changed.
    #[napi]
    pub fn undelete<'env>(
        &self,
        env: &'env Env,
        path: String,
        versions: Option<Vec<Either<f64, BigInt>>>,
    ) -> napi::Result<PromiseRaw<'env, Vec<f64>>> {
        let t = self.target()?;
        let versions = versions_arg(versions)?;
        env.spawn_future(async move {
            on_target!(t, undelete, undelete(&path, &versions))
                .map(versions_out)
                .map_err(to_js)
        })
    }

    /// Destroys versions (the current one if empty) for good; returns those changed.
    #[napi]
    pub fn destroy<'env>(
        &self,
        env: &'env Env,
        path: String,
        versions: Option<Vec<Either<f64, BigInt>>>,
    ) -> napi::Result<PromiseRaw<'env, Vec<f64>>> {
        let t = self.target()?;
        let versions = versions_arg(versions)?;
        env.spawn_future(async move {
            on_target!(t, destroy, destroy(&path, &versions))
                .map(versions_out)
                .map_err(to_js)
        })
    }

    /// The secret's metadata.
    #[napi]
    pub fn metadata<'env>(
        &self,
        env: &'env Env,
        path: String,
    ) -> napi::Result<PromiseRaw<'env, NativeSecretMetadata>> {
        let t = self.target()?;
        env.spawn_future(async move {
            on_target!(t, metadata, metadata(&path))
                .map(Into::into)
                .map_err(to_js)
        })
    }
}

/// A policy parsed from TOML.
#[napi]
pub struct NativePolicy {
    pub(crate) policy: strongroom::policy::Policy,
}

#[napi]
impl NativePolicy {
    /// Parses a policy from TOML text.
    #[napi(factory)]
    pub fn from_toml(text: String) -> napi::Result<Self> {
        strongroom::policy::Policy::from_toml_str(&text)
            .map(|policy| Self { policy })
            .map_err(|e| to_js(e.into()))
    }

    /// The policy's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.policy.name.clone()
    }
}

/// The head of an audit chain.
#[napi(object)]
pub struct NativeCheckpoint {
    /// The last record's sequence number (0 before any record).
    pub seq: f64,
    /// The last record's MAC (hex).
    pub mac: String,
}

impl From<strongroom::audit::Checkpoint> for NativeCheckpoint {
    fn from(c: strongroom::audit::Checkpoint) -> Self {
        Self {
            seq: c.seq as f64,
            mac: c.mac,
        }
    }
}

/// An audit log of a store, writing to a JSON-lines file and/or memory.
#[napi]
pub struct NativeAuditLog {
    pub(crate) log: Arc<strongroom::audit::AuditLog>,
    pub(crate) memory: Option<Arc<strongroom::audit::MemorySink>>,
}

#[napi]
impl NativeAuditLog {
    /// The chain head after the last record.
    #[napi]
    pub fn head<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, NativeCheckpoint>> {
        let log = self.log.clone();
        env.spawn_future(async move { Ok(log.head().await.into()) })
    }

    /// The JSON lines the memory sink holds (empty without one).
    #[napi]
    pub fn memory_lines(&self) -> Vec<String> {
        self.memory.as_ref().map(|m| m.lines()).unwrap_or_default()
    }
}

/// What verifying an audit file saw.
#[napi(object)]
pub struct NativeVerifyReport {
    /// Records verified.
    pub records: f64,
    /// The head after the last record.
    pub head: NativeCheckpoint,
}

#[napi]
impl NativeStrongroom {
    /// The versioned secrets store (no policy checks, no audit).
    #[napi]
    pub fn secrets(&self) -> NativeSecrets {
        NativeSecrets {
            target: Target::Store(self.current.clone()),
            life: self.life.clone(),
        }
    }

    /// Opens an audit log keyed by this store, continuing its saved chain:
    /// to the JSON-lines file `file` (created if missing, then verified up
    /// to the store's saved head; fsync after every record unless `fsync`
    /// is false) and/or to memory; `alerts` (an alert engine) observes
    /// every record it writes.
    #[napi]
    pub fn open_audit_log<'env>(
        &self,
        env: &'env Env,
        file: Option<String>,
        memory: bool,
        fsync: Option<bool>,
        alerts: Option<&alerts::NativeAlertEngine>,
    ) -> napi::Result<PromiseRaw<'env, NativeAuditLog>> {
        use strongroom::audit::{AuditSink, FsyncPolicy, JsonlFileSink, MemorySink};
        let sr = self.handle()?;
        let alerts = alerts.map(|a| a.inner.clone());
        env.spawn_future(async move {
            let mut sinks: Vec<Arc<dyn AuditSink>> = Vec::new();
            if let Some(f) = &file {
                let policy = if fsync.unwrap_or(true) {
                    FsyncPolicy::EveryRecord
                } else {
                    FsyncPolicy::OsBuffered
                };
                sinks.push(Arc::new(
                    JsonlFileSink::open(f, policy).map_err(|e| to_js(e.into()))?,
                ));
            }
            let mem = memory.then(|| Arc::new(MemorySink::new()));
            if let Some(m) = &mem {
                sinks.push(m.clone());
            }
            // The core verifies the file (from its first record up to the
            // store's saved head) before continuing its chain.
            let previous = file.as_deref().map(std::path::Path::new);
            let log = sr.open_audit_log(sinks, previous).await.map_err(to_js)?;
            // With an alert engine, it observes every record the log writes.
            let log = match alerts {
                Some(engine) => engine.attach(log),
                None => log,
            };
            Ok(NativeAuditLog {
                log: Arc::new(log),
                memory: mem,
            })
        })
    }

    /// A handle through which `principal`, holding `policies`, uses the
    /// secrets store: every call checked and audited to `audit`.
    #[napi]
    pub fn as_principal(
        &self,
        principal: String,
        policies: Vec<&NativePolicy>,
        audit: &NativeAuditLog,
    ) -> napi::Result<NativeSecrets> {
        let p = strongroom::policy::Principal::new(principal, policies.iter().map(|p| &p.policy));
        Ok(NativeSecrets {
            target: Target::Handle(self.handle()?.as_principal(p, audit.log.clone())),
            life: self.life.clone(),
        })
    }

    /// Verifies the JSON-lines audit file at `path` with this store's audit
    /// key, from its first record up to (at least) the store's saved head.
    #[napi]
    pub fn verify_audit_file<'env>(
        &self,
        env: &'env Env,
        path: String,
    ) -> napi::Result<PromiseRaw<'env, NativeVerifyReport>> {
        let sr = self.handle()?;
        env.spawn_future(async move {
            let report = sr
                .verify_audit_file(&path, &strongroom::audit::AuditFileCheck::new())
                .await
                .map_err(to_js)?;
            Ok(NativeVerifyReport {
                records: report.records as f64,
                head: report.head.into(),
            })
        })
    }
}

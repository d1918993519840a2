//! The versioned secrets store, policies, principal handles and the audit
//! trail: the same surface as the Python and Node bindings
//! (`put_secret` / `get_secret` / ... on the store, `as_principal` for a
//! checked and audited handle, `open_audit_log`, `verify_audit_file`).

use std::fmt;
use std::sync::Arc;

use strongroom::SecretBytes;
use strongroom::audit::{AuditSink, FsyncPolicy, JsonlFileSink};
use strongroom::secrets::{
    SecretMetadata as CoreMetadata, SecretVersion as CoreVersion, VersionInfo as CoreInfo,
};

use crate::errors::Result;
use crate::{Core, Secret, Strongroom};

/// Facts about one version of a secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VersionInfo {
    /// The version number (1 for the first write).
    pub version: u64,
    /// When it was written (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it was soft-deleted, if it is.
    pub deleted_ms: Option<u64>,
    /// When it was destroyed, if it was.
    pub destroyed_ms: Option<u64>,
}

impl From<&CoreInfo> for VersionInfo {
    fn from(v: &CoreInfo) -> Self {
        Self {
            version: v.version,
            created_ms: v.created_at.as_millis(),
            deleted_ms: v.deleted_at.map(|t| t.as_millis()),
            destroyed_ms: v.destroyed_at.map(|t| t.as_millis()),
        }
    }
}

/// One version read: its facts and its value (a redacted, wipeable `Secret`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SecretRead {
    /// Facts about the version read.
    pub info: VersionInfo,
    /// The value.
    pub secret: Arc<Secret>,
}

impl From<CoreVersion> for SecretRead {
    fn from(v: CoreVersion) -> Self {
        Self {
            info: VersionInfo::from(&v.version),
            secret: Secret::new(v.value),
        }
    }
}

/// A secret's metadata (no values).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SecretMetadata {
    /// The canonical path.
    pub path: String,
    /// The newest version.
    pub current_version: u64,
    /// The oldest version still kept.
    pub oldest_version: u64,
    /// The secret's own version limit, if set.
    pub max_versions: Option<u32>,
    /// The version limit in force.
    pub effective_max_versions: u32,
    /// When version 1 was written (ms since the epoch).
    pub created_ms: u64,
    /// When the secret last changed (ms since the epoch).
    pub updated_ms: u64,
    /// The owner, if set.
    pub owner: Option<String>,
    /// The environment, if set.
    pub environment: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Custom key-values (not sealed: never secrets).
    pub custom: std::collections::HashMap<String, String>,
    /// How often the secret should be rotated (ms), if set.
    pub rotation_interval_ms: Option<u64>,
    /// When a version last replaced an earlier one (ms since the epoch).
    pub last_rotated_ms: Option<u64>,
    /// When the next rotation is due (ms since the epoch), with an interval.
    pub rotation_due_ms: Option<u64>,
    /// Every kept version, oldest first.
    pub versions: Vec<VersionInfo>,
}

impl From<CoreMetadata> for SecretMetadata {
    fn from(m: CoreMetadata) -> Self {
        let rotation_due_ms = m.rotation_due_at().map(|t| t.as_millis());
        Self {
            path: m.path.as_str().to_owned(),
            current_version: m.current_version,
            oldest_version: m.oldest_version,
            max_versions: m.max_versions,
            effective_max_versions: m.effective_max_versions,
            created_ms: m.created_at.as_millis(),
            updated_ms: m.updated_at.as_millis(),
            owner: m.owner,
            environment: m.environment,
            rotation_due_ms,
            tags: m.tags.into_iter().collect(),
            custom: m.custom.into_iter().collect(),
            rotation_interval_ms: m.rotation_interval.map(strongroom_host::time::duration_ms),
            last_rotated_ms: m.last_rotated_at.map(|t| t.as_millis()),
            versions: m.versions.iter().map(VersionInfo::from).collect(),
        }
    }
}

/// A policy parsed from TOML.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Policy {
    inner: strongroom::policy::Policy,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Policy({:?})", self.inner.name)
    }
}

#[uniffi::export]
impl Policy {
    /// Parses a policy from TOML text (fails with `Policy`, naming the line
    /// and column of a mistake).
    #[uniffi::constructor]
    pub fn from_toml(text: String) -> Result<Arc<Self>> {
        let inner =
            strongroom::policy::Policy::from_toml_str(&text).map_err(strongroom::Error::from)?;
        Ok(Arc::new(Self { inner }))
    }

    /// The policy's name.
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }
}

/// An audit log of a store, writing a JSON-lines file. From
/// `Strongroom.openAuditLog(path:fsync:)`; give it to `asPrincipal`.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct AuditLog {
    pub(crate) log: Arc<strongroom::audit::AuditLog>,
    path: String,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditLog({:?})", self.path)
    }
}

#[uniffi::export]
impl AuditLog {
    /// The JSON-lines file the log writes.
    pub fn path(&self) -> String {
        self.path.clone()
    }
}

/// What verifying an audit file saw.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditReport {
    /// Records verified.
    pub records: u64,
    /// The last record's sequence number (0 for an empty file).
    pub head_seq: u64,
    /// The last record's MAC (hex).
    pub head_mac: String,
}

/// Verifies the JSON-lines audit file at `path` with `room`'s audit key,
/// from its first record up to (at least) the store's saved head. Fails
/// with `AuditChainBroken` (carrying `seq`) at the first bad record.
#[uniffi::export(async_runtime = "tokio")]
pub async fn verify_audit_file(path: String, room: Arc<Strongroom>) -> Result<AuditReport> {
    // The core reads and hashes the file off the async threads.
    let r = room
        .core
        .verify_audit_file(&path, &strongroom::audit::AuditFileCheck::new())
        .await?;
    Ok(AuditReport {
        records: r.records,
        head_seq: r.head.seq,
        head_mac: r.head.mac,
    })
}

/// A principal's handle to the secrets store: every call is checked
/// against its policies (default deny, deny wins) and audited. From
/// `Strongroom.asPrincipal(name:policies:audit:)`.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Handle {
    pub(crate) inner: strongroom::Handle,
    /// The store it came from.
    pub(crate) store: crate::StoreId,
    /// The store's signing-keys engine, for `signing()`.
    pub(crate) signing: Arc<strongroom::signing::SigningKeys>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({:?})", self.inner.principal().name())
    }
}

fn secret_value(value: Vec<u8>) -> SecretBytes {
    // The Vec came from the host language; from here on it is wiped on drop.
    SecretBytes::new(value)
}

#[uniffi::export(async_runtime = "tokio")]
impl Handle {
    /// The principal's name.
    pub fn principal(&self) -> String {
        self.inner.principal().name().to_owned()
    }

    /// Reads the newest version, or `version` (needs `read`).
    #[uniffi::method(default(version = None))]
    pub async fn read(&self, path: String, version: Option<u64>) -> Result<SecretRead> {
        let v = match version {
            Some(v) => self.inner.read_version(&path, v).await?,
            None => self.inner.read(&path).await?,
        };
        Ok(v.into())
    }

    /// Writes a new version (needs `create`, or `update` if the secret
    /// exists); `cas` is the expected current version (0: must not exist).
    #[uniffi::method(default(cas = None))]
    pub async fn put(&self, path: String, value: Vec<u8>, cas: Option<u64>) -> Result<VersionInfo> {
        let value = secret_value(value);
        let v = self.inner.put(&path, value.expose_secret(), cas).await?;
        Ok(VersionInfo::from(&v))
    }

    /// Names directly under `prefix` (needs `list` on the prefix);
    /// sub-folders end with "/".
    pub async fn list(&self, prefix: String) -> Result<Vec<String>> {
        Ok(self.inner.list(&prefix).await?)
    }

    /// The secret's metadata (needs `read`).
    pub async fn metadata(&self, path: String) -> Result<SecretMetadata> {
        Ok(self.inner.metadata(&path).await?.into())
    }

    /// Soft-deletes `versions` (the current one if nil or empty; needs `delete`).
    #[uniffi::method(default(versions = None))]
    pub async fn delete(&self, path: String, versions: Option<Vec<u64>>) -> Result<Vec<u64>> {
        let versions = versions.unwrap_or_default();
        Ok(self.inner.delete(&path, &versions).await?)
    }

    /// Restores soft-deleted `versions` (needs `delete`).
    #[uniffi::method(default(versions = None))]
    pub async fn undelete(&self, path: String, versions: Option<Vec<u64>>) -> Result<Vec<u64>> {
        let versions = versions.unwrap_or_default();
        Ok(self.inner.undelete(&path, &versions).await?)
    }

    /// Destroys `versions` for good (the current one if nil or empty; needs `delete`).
    #[uniffi::method(default(versions = None))]
    pub async fn destroy(&self, path: String, versions: Option<Vec<u64>>) -> Result<Vec<u64>> {
        let versions = versions.unwrap_or_default();
        Ok(self.inner.destroy(&path, &versions).await?)
    }
}

/// Opens an audit log to the JSON-lines file `path`, observed by `alerts`.
async fn open_audit_log(
    core: Core,
    path: String,
    fsync: bool,
    alerts: Option<Arc<crate::AlertEngine>>,
) -> Result<AuditLog> {
    let policy = if fsync {
        FsyncPolicy::EveryRecord
    } else {
        FsyncPolicy::OsBuffered
    };
    let sink: Arc<dyn AuditSink> =
        Arc::new(JsonlFileSink::open(&path, policy).map_err(strongroom::Error::from)?);
    let log = core
        .open_audit_log(vec![sink], Some(std::path::Path::new(&path)))
        .await?;
    let log = match alerts {
        Some(engine) => engine.inner.attach(log),
        None => log,
    };
    Ok(AuditLog {
        log: Arc::new(log),
        path,
    })
}

// The versioned secrets store itself: no policy, no audit (use a handle for
// that). Names as in the Python binding.
#[uniffi::export(async_runtime = "tokio")]
impl Strongroom {
    /// Writes a new version of the secret at `path`; `cas` is the expected
    /// current version (0: must not exist yet).
    #[uniffi::method(default(cas = None))]
    pub async fn put_secret(
        &self,
        path: String,
        value: Vec<u8>,
        cas: Option<u64>,
    ) -> Result<VersionInfo> {
        let value = secret_value(value);
        let v = self
            .core
            .secrets()
            .put(&path, value.expose_secret(), cas)
            .await?;
        Ok(VersionInfo::from(&v))
    }

    /// Reads the newest version, or `version`.
    #[uniffi::method(default(version = None))]
    pub async fn get_secret(&self, path: String, version: Option<u64>) -> Result<SecretRead> {
        let s = self.core.secrets();
        let v = match version {
            Some(v) => s.get_version(&path, v).await?,
            None => s.get(&path).await?,
        };
        Ok(v.into())
    }

    /// Names directly under `prefix`; sub-folders end with "/".
    pub async fn list_secrets(&self, prefix: String) -> Result<Vec<String>> {
        Ok(self.core.secrets().list(&prefix).await?)
    }

    /// Soft-deletes `versions` (the current one if nil or empty); returns those changed.
    #[uniffi::method(default(versions = None))]
    pub async fn delete_secret(
        &self,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> Result<Vec<u64>> {
        let versions = versions.unwrap_or_default();
        Ok(self.core.secrets().delete(&path, &versions).await?)
    }

    /// Restores soft-deleted `versions`; returns those changed.
    #[uniffi::method(default(versions = None))]
    pub async fn undelete_secret(
        &self,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> Result<Vec<u64>> {
        let versions = versions.unwrap_or_default();
        Ok(self.core.secrets().undelete(&path, &versions).await?)
    }

    /// Destroys `versions` (the current one if nil or empty) for good; returns
    /// those changed.
    #[uniffi::method(default(versions = None))]
    pub async fn destroy_secret(
        &self,
        path: String,
        versions: Option<Vec<u64>>,
    ) -> Result<Vec<u64>> {
        let versions = versions.unwrap_or_default();
        Ok(self.core.secrets().destroy(&path, &versions).await?)
    }

    /// The secret's metadata.
    pub async fn secret_metadata(&self, path: String) -> Result<SecretMetadata> {
        Ok(self.core.secrets().metadata(&path).await?.into())
    }

    /// Opens an audit log writing to the JSON-lines file `path` (created if
    /// missing; an existing file is first verified up to the store's saved
    /// head, and the chain continues from it). `fsync`: sync every record.
    #[uniffi::method(default(fsync = true))]
    pub async fn open_audit_log(&self, path: String, fsync: bool) -> Result<Arc<AuditLog>> {
        Ok(Arc::new(
            open_audit_log(self.core.clone(), path, fsync, None).await?,
        ))
    }

    /// `open_audit_log` with `alerts` observing it: the engine sees every
    /// record the log writes (so every handle given this log feeds it).
    #[uniffi::method(default(fsync = true))]
    pub async fn open_audit_log_with_alerts(
        &self,
        path: String,
        alerts: Arc<crate::AlertEngine>,
        fsync: bool,
    ) -> Result<Arc<AuditLog>> {
        Ok(Arc::new(
            open_audit_log(self.core.clone(), path, fsync, Some(alerts)).await?,
        ))
    }

    /// A handle through which `name`, holding `policies`, uses the secrets
    /// store: every call checked and audited to `audit`.
    pub fn as_principal(
        &self,
        name: String,
        policies: Vec<Arc<Policy>>,
        audit: Arc<AuditLog>,
    ) -> Arc<Handle> {
        let p = strongroom::policy::Principal::new(name, policies.iter().map(|p| &p.inner));
        Arc::new(Handle {
            inner: self.core.as_principal(p, audit.log.clone()),
            store: self.id.clone(),
            signing: self.signing_keys(),
        })
    }
}

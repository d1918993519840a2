//! The principal-bound handle: every secrets-store operation, checked against
//! the caller's policies and written to the audit trail.
//!
//! A [`Handle`] binds a [`Principal`] (a service identity with its compiled
//! policies) to the [`SecretsStore`] and an [`AuditLog`]. Obtain one with
//! [`Strongroom::as_principal`]. Each call runs, in this order:
//!
//! 1. **Canonicalise the path** ([`SecretPath::parse`]). An invalid path
//!    (`prod/../admin`, `Prod/x`, `%2e%2e`, a trailing space, a Unicode
//!    look-alike) is audited with outcome `error` / kind `invalid_path`
//!    (the path recorded as given) and fails with [`Error::InvalidPath`].
//! 2. **Check the policy.** A denial is audited with outcome `denied` and
//!    fails with [`Error::Policy`]`(`[`PolicyError::Denied`]`)`. A principal
//!    with no matching rule gets nothing.
//!    Then, for the calls an approval gate can hold ([`read`](Handle::read),
//!    [`read_version`](Handle::read_version), [`destroy`](Handle::destroy),
//!    [`delete_metadata`](Handle::delete_metadata)), **check the gates**
//!    ([`crate::approvals`], one barrier read): a held call without an
//!    approved request ([`Handle::with_approval`]) is audited with outcome
//!    `error` and fails; with one, the request is used up first.
//! 3. **Run the operation** on the store.
//! 4. **Audit the outcome before anything leaves the library**: the value,
//!    the version, or the error (as [`Error::kind`]). If the audit append
//!    fails (no sink accepted the record, every sink timed out), the call
//!    returns that audit error and a value read is dropped (and zeroized)
//!    unseen: the handle fails closed.
//!
//! # Capabilities per operation
//!
//! | method                         | capability                       | audit operation  |
//! |--------------------------------|----------------------------------|------------------|
//! | [`read`](Handle::read), [`read_version`](Handle::read_version) | `read` | `read`  |
//! | [`metadata`](Handle::metadata) | `read`                           | `read_metadata`  |
//! | [`list`](Handle::list)         | `list` on the prefix itself      | `list`           |
//! | [`put`](Handle::put)           | `create` if the secret does not exist, `update` if it does | `write` |
//! | [`update_metadata`](Handle::update_metadata) | `update`           | `write_metadata` |
//! | [`delete`](Handle::delete)     | `delete`                         | `delete`         |
//! | [`undelete`](Handle::undelete) | `delete`                         | `undelete`       |
//! | [`destroy`](Handle::destroy)   | `delete`                         | `destroy`        |
//! | [`delete_metadata`](Handle::delete_metadata) | `delete`           | `destroy` (no version) |
//!
//! As in Vault, destroying versions and deleting a secret's metadata need
//! `delete` on the path (not `sudo`): whoever may delete a secret may also
//! make the deletion permanent. Keep `delete` away from principals that
//! must not lose data. `lease`, `rotate` and `sudo` are checked by the
//! handles in [`crate::authorized`] ([`Handle::leases`],
//! [`Handle::rotation`], [`Handle::key_admin`], [`Handle::audit_trail`]),
//! which audit through the same log.
//!
//! For [`put`](Handle::put) the create-or-update decision is made by
//! [`SecretsStore::put_with`] on the same read its atomic write is
//! conditioned on, so it cannot be raced: a principal allowed only to
//! `create` cannot overwrite a secret that appeared in between.
//!
//! `list` is checked against the prefix path itself: grant it with an
//! exact rule (`prod/app` = list) or a glob that covers the prefix
//! (`prod/app*`); `prod/app/*` does not match `prod/app`. The top level
//! (an empty prefix) cannot be listed through a handle.
//!
//! # What the audit trail holds
//!
//! Every call gets a fresh random request id. Reads produce one record,
//! after the store answered and before the value is returned, carrying the
//! version read. Changes (put, delete, undelete, destroy, metadata update
//! or delete) produce two records with the same request id, write-ahead:
//!
//! - an **intent** record (outcome `allowed`, no version for `put`) appended
//!   *before* the store is touched: if it cannot be appended, nothing is
//!   changed and the call fails closed;
//! - a **result** record after the change: `allowed` with the version
//!   written or changed (one record per changed version for delete,
//!   undelete and destroy), `denied` if a concurrent writer turned an
//!   allowed create into a forbidden update, or `error` with the error kind.
//!
//! If the result record cannot be appended, the change **has happened** but
//! the call returns the audit error. The intent record shows an auditor
//! that the change may have happened; a request id with an intent and no
//! result means exactly that (also after a crash). Callers must treat an
//! audit error from a change as "outcome unknown" and re-read.
//!
//! Values written or read appear in records only as the field `value_hmac`,
//! `hmac-sha256:` of the value under a key derived from the store's audit
//! key (`Strongroom::audit_key`), so an auditor holding a known value can
//! find where it was written or read ([`AuditLog::hmac`]). Error kinds, not
//! messages, are recorded.
//!
//! # Restarts
//!
//! After every append the handle saves the chain head ([`Checkpoint`]) in
//! the store's own storage at [`AUDIT_HEAD_RECORD`] (only ever forward).
//! [`Strongroom::open_audit_log`] resumes the chain from it, so a restarted
//! process continues the same chain and one verification covers both runs.
//! The saved head also detects truncation of the log files. Given the
//! JSON-lines file the previous process wrote, `open_audit_log` verifies it
//! against the saved head first and resumes from the file's last record,
//! which covers a crash between a record reaching the file and the head
//! being saved. Use one [`AuditLog`] per store at a time.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use strongroom::audit::{verify, MemorySink};
//! use strongroom::policy::{Policy, Principal};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Error, Options, SecretBytes, Strongroom};
//!
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//!
//! let policy = Policy::from_toml_str(r#"
//!     name = "payment-svc"
//!     [[path]]
//!     pattern = "prod/payment-svc/*"
//!     capabilities = ["create", "read"]
//! "#)?;
//! let sink = Arc::new(MemorySink::new());
//! let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await?);
//! let svc = sr.as_principal(Principal::new("payment-svc", [&policy]), audit.clone());
//!
//! svc.put("prod/payment-svc/postgres", b"pw-1", Some(0)).await?;
//! let v = svc.read("prod/payment-svc/postgres").await?;
//! assert_eq!(v.value.expose_secret(), b"pw-1");
//! // no `update`: a second write is denied, and audited as such
//! let err = svc.put("prod/payment-svc/postgres", b"pw-2", None).await.unwrap_err();
//! assert_eq!(err.kind(), "policy_denied");
//! // outside its policy: denied
//! assert!(matches!(svc.read("prod/billing/db").await, Err(Error::Policy(_))));
//!
//! // the audit key lets its holder forge records: it is behind the door
//! let key = sr.dangerous_traced("auditor").await?.audit_key()?;
//! let report = verify(sink.lines(), &key, None, Some(&audit.head().await))?;
//! assert_eq!(report.records, 5); // write intent + result, read, two denials
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::approvals::GatedOperation;
use crate::audit::{
    AuditEvent, AuditLog, AuditRecord, AuditSink, Checkpoint, Operation, Outcome, new_request_id,
    verify_jsonl_file,
};
use crate::authorized::{AuditTrail, KeyAdmin, LeaseHandle, RotationHandle};
use crate::path::SecretPath;
use crate::policy::{Capability, PolicyError, Principal};
use crate::secrets::{
    MetadataPatch, SecretError, SecretMetadata, SecretVersion, SecretsStore, VersionInfo, WriteKind,
};
use crate::storage::BatchOp;
use crate::{Error, Result, Strongroom};

/// Storage key of the saved audit chain head.
pub const AUDIT_HEAD_RECORD: &str = "sys/audit-head";

/// The audit field holding the HMAC of a value written or read.
pub const VALUE_HMAC_FIELD: &str = "value_hmac";

/// Format version of the saved audit head record.
const HEAD_FORMAT: u8 = 1;
/// Attempts to move the saved head forward against concurrent savers.
const HEAD_SAVE_ATTEMPTS: usize = 32;

/// The record at [`AUDIT_HEAD_RECORD`] (JSON).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadRecord {
    format: u8,
    seq: u64,
    mac: String,
}

/// Coalesces a store's audit-head saves ([`Strongroom::save_audit_head`]).
#[derive(Debug, Default)]
pub(crate) struct HeadSaver {
    /// One save at a time.
    turn: tokio::sync::Mutex<()>,
    /// The newest head asked for and not yet taken by a save.
    asked: std::sync::Mutex<Option<Checkpoint>>,
    /// The highest sequence number this process saved.
    saved: std::sync::atomic::AtomicU64,
}

impl HeadSaver {
    fn covers(&self, seq: u64) -> bool {
        self.saved.load(std::sync::atomic::Ordering::Acquire) >= seq
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, Option<Checkpoint>> {
        // An Option cannot be left half-written.
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ask(&self, head: &Checkpoint) {
        let mut asked = self.asked();
        if asked.as_ref().is_none_or(|a| a.seq < head.seq) {
            *asked = Some(head.clone());
        }
    }

    fn take(&self) -> Option<Checkpoint> {
        self.asked().take()
    }

    fn saved(&self, seq: u64) {
        self.saved
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Strongroom {
    /// A handle through which `principal` uses the secrets store (default
    /// options), every operation checked against its policies and audited
    /// to `audit` (which should come from [`Strongroom::open_audit_log`]).
    pub fn as_principal(&self, principal: Principal, audit: Arc<AuditLog>) -> Handle {
        Handle::new(self.secrets(), principal, audit)
    }

    /// Whether the store's storage was opened read-only
    /// ([`Storage::is_read_only`](crate::storage::Storage::is_read_only)):
    /// every write is refused, and audit logs are chains of their own (see
    /// [`Strongroom::open_audit_log`]).
    pub fn is_read_only(&self) -> bool {
        self.storage().is_read_only()
    }

    /// The audit chain head saved by handles, if any record was written.
    pub async fn saved_audit_head(&self) -> Result<Option<Checkpoint>> {
        Ok(self.read_head().await?.map(|(cp, _)| cp))
    }

    async fn read_head(&self) -> Result<Option<(Checkpoint, Vec<u8>)>> {
        let Some(raw) = self.barrier().get(AUDIT_HEAD_RECORD).await? else {
            return Ok(None);
        };
        let rec: HeadRecord = serde_json::from_slice(&raw).map_err(|e| {
            Error::corrupt(AUDIT_HEAD_RECORD, format!("audit head is not valid: {e}"))
        })?;
        if rec.format != HEAD_FORMAT {
            return Err(Error::corrupt(
                AUDIT_HEAD_RECORD,
                format!("unsupported audit head format {}", rec.format),
            ));
        }
        Ok(Some((
            Checkpoint {
                seq: rec.seq,
                mac: rec.mac,
            },
            raw,
        )))
    }

    /// Saves `head` as the audit chain head unless the saved one is already
    /// at or past its sequence number (the saved head only moves forward).
    ///
    /// Returns only once a head at or past `head` is durably saved, but
    /// concurrent callers share the writes: one save runs at a time, and it
    /// saves the newest head asked for so far, so callers whose head it
    /// covers return without a write of their own (a burst of N audited
    /// operations costs about two durable writes, not N).
    ///
    /// A read-only store ([`Storage::is_read_only`](crate::storage::Storage::is_read_only))
    /// holds no head of this process's log: nothing is saved.
    pub(crate) async fn save_audit_head(&self, head: &Checkpoint) -> Result<()> {
        if self.storage().is_read_only() {
            return Ok(());
        }
        let saver = self.head_saver();
        if saver.covers(head.seq) {
            return Ok(());
        }
        saver.ask(head);
        let _turn = saver.turn.lock().await;
        if saver.covers(head.seq) {
            return Ok(());
        }
        // The newest head asked for, never older than ours (a failed save
        // before us may have taken ours and lost it).
        let newest = match saver.take() {
            Some(asked) if asked.seq > head.seq => asked,
            _ => head.clone(),
        };
        self.store_audit_head(&newest).await?;
        saver.saved(newest.seq);
        Ok(())
    }

    /// Writes `head` unless the stored one is at or past it.
    async fn store_audit_head(&self, head: &Checkpoint) -> Result<()> {
        let encoded = serde_json::to_vec(&HeadRecord {
            format: HEAD_FORMAT,
            seq: head.seq,
            mac: head.mac.clone(),
        })
        .map_err(|e| Error::InvalidArgument(format!("audit head does not encode: {e}")))?;
        for _ in 0..HEAD_SAVE_ATTEMPTS {
            let current = self.read_head().await?;
            if current.as_ref().is_some_and(|(cp, _)| cp.seq >= head.seq) {
                return Ok(());
            }
            let ops = vec![
                BatchOp::expect(AUDIT_HEAD_RECORD, current.map(|(_, raw)| raw)),
                BatchOp::put(AUDIT_HEAD_RECORD, encoded.clone()),
            ];
            match self.barrier().batch(ops).await {
                Ok(()) => return Ok(()),
                Err(Error::StorageConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::StorageConflict {
            key: AUDIT_HEAD_RECORD.to_owned(),
        })
    }

    /// An audit log over `sinks`, keyed with this store's audit key, timed
    /// by its clock, continuing the chain where the saved head
    /// ([`Strongroom::saved_audit_head`]) left it (a new chain if none).
    ///
    /// With `previous_jsonl`, the JSON-lines file an earlier log of this
    /// store wrote: the file is verified from its first record and must
    /// reach the saved head (else [`AuditError::ChainBroken`](crate::audit::AuditError::ChainBroken),
    /// e.g. the file was truncated or edited); the chain then continues after
    /// the file's last record. A missing file counts as empty.
    ///
    /// On a read-only store ([`Storage::is_read_only`](crate::storage::Storage::is_read_only))
    /// the log cannot be anchored in the store: it is a chain of its own,
    /// starting at genesis or continuing `previous_jsonl` (verified from its
    /// first record), and no head is saved as it grows. Only checkpoints
    /// kept elsewhere detect a truncation of such a file (verify it with
    /// [`AuditFileCheck::without_saved_head`](crate::audit::AuditFileCheck::without_saved_head)).
    pub async fn open_audit_log(
        &self,
        sinks: Vec<Arc<dyn AuditSink>>,
        previous_jsonl: Option<&Path>,
    ) -> Result<AuditLog> {
        let key = self.audit_key()?;
        if self.storage().is_read_only() {
            let head = match previous_jsonl {
                Some(file) if file.exists() => verify_jsonl_file(file, &key, None, None)?.head,
                _ => Checkpoint::genesis(),
            };
            return Ok(AuditLog::resume(key, sinks, self.clock().clone(), head)?);
        }
        let saved = self.saved_audit_head().await?;
        let head = match previous_jsonl {
            Some(file) if file.exists() => {
                verify_jsonl_file(file, &key, None, saved.as_ref())?.head
            }
            Some(_) if saved.is_some() => {
                return Err(crate::audit::AuditError::Io {
                    path: previous_jsonl
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    message: "the audit file is missing but the store has a saved head".into(),
                }
                .into());
            }
            _ => saved.unwrap_or_else(Checkpoint::genesis),
        };
        Ok(AuditLog::resume(key, sinks, self.clock().clone(), head)?)
    }
}

/// A principal's view of the secrets store: every call checked against its
/// policies and audited (see the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    store: SecretsStore,
    principal: Principal,
    audit: Arc<AuditLog>,
    /// The approval request gated calls use ([`Handle::with_approval`]).
    approval: Option<Arc<str>>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("principal", &self.principal.name())
            .field("policies", &self.principal.policies())
            .finish_non_exhaustive()
    }
}

fn error_outcome(e: &Error) -> Outcome {
    Outcome::Error {
        kind: e.kind().to_owned(),
    }
}

impl Handle {
    /// A handle over `store` (use this for a store with non-default
    /// options; [`Strongroom::as_principal`] otherwise).
    pub fn new(store: SecretsStore, principal: Principal, audit: Arc<AuditLog>) -> Self {
        Self {
            store,
            principal,
            audit,
            approval: None,
        }
    }

    /// This handle, giving approval request `id` to the calls an approval
    /// gate holds ([`crate::approvals`]): such a call uses the request up
    /// (it runs once) if it is this principal's approved request for
    /// exactly that operation and path. Calls no gate holds ignore it.
    pub fn with_approval(&self, id: &str) -> Handle {
        Handle {
            approval: Some(Arc::from(id)),
            ..self.clone()
        }
    }

    /// The approval request given with [`Handle::with_approval`].
    pub fn approval_id(&self) -> Option<&str> {
        self.approval.as_deref()
    }

    /// The approval gate check of a gated call on `path`: a refusal is
    /// audited under `event` (outcome error by kind) and returned.
    async fn gate(&self, event: &AuditEvent, op: GatedOperation, path: &SecretPath) -> Result<()> {
        if let Err(e) = crate::approvals::require_secret(self, op, path).await {
            self.record(event.clone().with_outcome(error_outcome(&e)))
                .await?;
            return Err(e);
        }
        Ok(())
    }

    /// The principal this handle acts as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The audit log this handle writes to.
    pub fn audit_log(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Appends `event`, an operation's outcome, then saves the new head.
    /// Any failure is returned (the caller must then not hand anything
    /// out). Once both succeed, the operation is counted in the metrics.
    async fn record(&self, event: AuditEvent) -> Result<AuditRecord> {
        let rec = self.record_intent(event).await?;
        crate::metrics::operation_finished(&rec.event);
        Ok(rec)
    }

    /// As [`Handle::record`], for an intent written before the operation
    /// runs (not counted: its outcome is).
    async fn record_intent(&self, event: AuditEvent) -> Result<AuditRecord> {
        let rec = self.audit.append(event).await?;
        self.store
            .strongroom()
            .save_audit_head(&rec.checkpoint())
            .await?;
        Ok(rec)
    }

    /// A new event for this principal with a fresh request id.
    fn event(&self, op: Operation, raw_path: &str) -> Result<AuditEvent> {
        let event = AuditEvent::new(self.principal.name(), op, new_request_id()?);
        crate::metrics::trace_request(&event);
        Ok(event.with_path(raw_path))
    }

    /// Steps 1 and 2: canonical path and policy check, each failure audited.
    async fn admit(&self, event: &AuditEvent, raw: &str, cap: Capability) -> Result<SecretPath> {
        let path = self.canonical(event, raw).await?;
        if let Err(denied) = self.principal.authorize(cap, &path) {
            self.record(event.clone().with_outcome(Outcome::Denied))
                .await?;
            return Err(denied.into());
        }
        Ok(path)
    }

    async fn canonical(&self, event: &AuditEvent, raw: &str) -> Result<SecretPath> {
        match SecretPath::parse(raw) {
            Ok(p) => Ok(p),
            Err(e) => {
                self.record(event.clone().with_outcome(error_outcome(&e)))
                    .await?;
                Err(e)
            }
        }
    }

    /// Audits the end of an operation that returns no secret.
    async fn finish<T>(
        &self,
        event: AuditEvent,
        result: Result<T>,
        version: impl Fn(&T) -> Option<u64>,
    ) -> Result<T> {
        match result {
            Ok(out) => {
                let ev = match version(&out) {
                    Some(v) => event.with_version(v),
                    None => event,
                };
                self.record(ev).await?;
                Ok(out)
            }
            Err(e) => {
                self.record(event.with_outcome(error_outcome(&e))).await?;
                Err(e)
            }
        }
    }

    /// Audits a read and hands the value out only once the record is
    /// accepted; otherwise the value is dropped (zeroized).
    async fn finish_read(
        &self,
        event: AuditEvent,
        result: Result<SecretVersion>,
    ) -> Result<SecretVersion> {
        match result {
            Ok(v) => {
                let ev = event
                    .with_version(v.version.version)
                    .with_field(VALUE_HMAC_FIELD, self.audit.hmac(v.value.expose_secret()));
                self.record(ev).await?;
                Ok(v)
            }
            Err(e) => {
                let ev = match &e {
                    Error::Secret(
                        SecretError::VersionDeleted { version, .. }
                        | SecretError::VersionDestroyed { version, .. }
                        | SecretError::VersionPruned { version, .. },
                    ) => event.with_version(*version),
                    _ => event,
                };
                self.record(ev.with_outcome(error_outcome(&e))).await?;
                Err(e)
            }
        }
    }

    /// Reads the current version of the secret at `path` (capability
    /// `read`).
    #[tracing::instrument(name = "Handle::read", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn read(&self, path: &str) -> Result<SecretVersion> {
        let event = self.event(Operation::Read, path)?;
        let p = self.admit(&event, path, Capability::Read).await?;
        self.gate(&event, GatedOperation::SensitiveRead, &p).await?;
        let result = self.store.get(p.as_str()).await;
        self.finish_read(event, result).await
    }

    /// Reads `version` of the secret at `path` (capability `read`).
    #[tracing::instrument(name = "Handle::read_version", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn read_version(&self, path: &str, version: u64) -> Result<SecretVersion> {
        let event = self.event(Operation::Read, path)?.with_version(version);
        let p = self.admit(&event, path, Capability::Read).await?;
        self.gate(&event, GatedOperation::SensitiveRead, &p).await?;
        let result = self.store.get_version(p.as_str(), version).await;
        self.finish_read(event, result).await
    }

    /// The metadata of the secret at `path` (capability `read`).
    #[tracing::instrument(name = "Handle::metadata", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn metadata(&self, path: &str) -> Result<SecretMetadata> {
        let event = self.event(Operation::ReadMetadata, path)?;
        let p = self.admit(&event, path, Capability::Read).await?;
        let result = self.store.metadata(p.as_str()).await;
        self.finish(event, result, |m| Some(m.current_version))
            .await
    }

    /// Lists one level below `prefix` (capability `list` on the prefix
    /// path itself; see [`SecretsStore::list`] for the result's shape).
    ///
    /// Only what this principal may see is listed: a secret's name if its
    /// policies grant some capability on it, a folder (`name/`) if they do
    /// on at least one secret under it. So nothing under a denied subtree,
    /// or equal to its root, appears. This reads the names (not the
    /// values) of every secret under `prefix`, where [`SecretsStore::list`]
    /// skips over folders.
    #[tracing::instrument(name = "Handle::list", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let event = self.event(Operation::List, prefix)?;
        let p = self.admit(&event, prefix, Capability::List).await?;
        let result = self.visible_entries(&p).await;
        self.finish(event, result, |_| None).await
    }

    /// The entries one level below `prefix` that stand for at least one
    /// secret this principal holds some capability on.
    async fn visible_entries(&self, prefix: &SecretPath) -> Result<Vec<String>> {
        let policies = self.principal.policy_set();
        let mut out = Vec::new();
        for path in self.store.list_all(prefix.as_str()).await? {
            // `list_all` includes the prefix itself; it is not an entry.
            let Some(rest) = path
                .as_str()
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            if policies.capabilities(&path).is_empty() {
                continue;
            }
            out.push(match rest.split_once('/') {
                Some((folder, _)) => format!("{folder}/"),
                None => rest.to_owned(),
            });
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Watches the secrets under `prefix` for changes made by any process
    /// (capability `list` on the prefix path, as for [`Handle::list`]: a
    /// watch reveals which paths change, never their values, and, like
    /// `list`, only paths the principal has some capability on). Audited
    /// once, as a list of the prefix, when the watch starts.
    #[tracing::instrument(name = "Handle::watch", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn watch(&self, prefix: &str) -> Result<crate::secrets::SecretWatch> {
        let event = self.event(Operation::List, prefix)?;
        let p = self.admit(&event, prefix, Capability::List).await?;
        // Like `list`: only paths the principal has some capability on.
        let principal = self.principal.clone();
        let result = self.store.watch(&format!("{}/", p.as_str())).map(|w| {
            w.filtered(Box::new(move |path| {
                !principal.policy_set().capabilities(path).is_empty()
            }))
        });
        self.finish(event, result, |_| None).await
    }

    /// Writes a new version of the secret at `path` with check-and-set as
    /// in [`SecretsStore::put`]. Needs `create` if no secret exists there,
    /// `update` if one does (decided race-free on the write's own read).
    /// Audited as an intent before the write and a result after it; see
    /// the [module docs](self) for what an audit error here means.
    #[tracing::instrument(name = "Handle::put", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn put(&self, path: &str, value: &[u8], cas: Option<u64>) -> Result<VersionInfo> {
        let event = self
            .event(Operation::Write, path)?
            .with_field(VALUE_HMAC_FIELD, self.audit.hmac(value));
        let p = self.canonical(&event, path).await?;
        // The applied naming rules, before anything else is decided.
        if let Err(e) = crate::declarative::check_naming(self.store.strongroom(), p.as_str()).await
        {
            self.record(event.with_outcome(error_outcome(&e))).await?;
            return Err(e);
        }
        let caps = self.principal.policy_set().capabilities(&p);
        let (may_create, may_update) = (
            caps.contains(Capability::Create),
            caps.contains(Capability::Update),
        );
        // Refuse early (no intent record) when the principal certainly may
        // not write; the definitive check runs inside the write.
        let needed = if may_create && may_update {
            None
        } else if !may_create && !may_update {
            Some(if cas == Some(0) {
                Capability::Create
            } else {
                Capability::Update
            })
        } else {
            let exists = match self.store.metadata(p.as_str()).await {
                Ok(_) => true,
                Err(Error::Secret(SecretError::NotFound { .. })) => false,
                Err(e) => {
                    self.record(event.with_outcome(error_outcome(&e))).await?;
                    return Err(e);
                }
            };
            match (exists, may_update, may_create) {
                (true, false, _) => Some(Capability::Update),
                (false, _, false) => Some(Capability::Create),
                _ => None,
            }
        };
        if let Some(cap) = needed {
            let denied =
                self.principal
                    .authorize(cap, &p)
                    .err()
                    .unwrap_or_else(|| PolicyError::Denied {
                        principal: self.principal.name().to_owned(),
                        capability: cap,
                        path: p.as_str().to_owned(),
                    });
            self.record(event.with_outcome(Outcome::Denied)).await?;
            return Err(denied.into());
        }

        // Write-ahead: the intent must be on record before the store changes.
        self.record_intent(event.clone()).await?;
        let principal = &self.principal;
        let p_ref = &p;
        let result = self
            .store
            .put_with(p.as_str(), value, cas, |kind| {
                let cap = match kind {
                    WriteKind::Create => Capability::Create,
                    WriteKind::Update => Capability::Update,
                };
                principal.authorize(cap, p_ref).map_err(Error::from)
            })
            .await;
        match result {
            Ok(info) => {
                self.record(event.with_version(info.version)).await?;
                Ok(info)
            }
            Err(e @ Error::Policy(PolicyError::Denied { .. })) => {
                self.record(event.with_outcome(Outcome::Denied)).await?;
                Err(e)
            }
            Err(e) => {
                let ev = match &e {
                    Error::Secret(SecretError::CasMismatch { current, .. }) => {
                        event.with_version(*current)
                    }
                    _ => event,
                };
                self.record(ev.with_outcome(error_outcome(&e))).await?;
                Err(e)
            }
        }
    }

    /// Changes the metadata of the secret at `path` (capability `update`).
    #[tracing::instrument(name = "Handle::update_metadata", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn update_metadata(
        &self,
        path: &str,
        patch: MetadataPatch,
    ) -> Result<SecretMetadata> {
        let event = self.event(Operation::WriteMetadata, path)?;
        let p = self.admit(&event, path, Capability::Update).await?;
        self.record_intent(event.clone()).await?;
        let result = self.store.update_metadata(p.as_str(), patch).await;
        self.finish(event, result, |m| Some(m.current_version))
            .await
    }

    /// Removes the secret at `path` with all its versions (capability
    /// `delete`; audited as `destroy` without a version).
    #[tracing::instrument(name = "Handle::delete_metadata", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn delete_metadata(&self, path: &str) -> Result<()> {
        let event = self.event(Operation::Destroy, path)?;
        let p = self.admit(&event, path, Capability::Delete).await?;
        self.gate(&event, GatedOperation::Destroy, &p).await?;
        self.record_intent(event.clone()).await?;
        let result = self.store.delete_metadata(p.as_str()).await;
        self.finish(event, result, |_| None).await
    }

    /// Soft-deletes `versions` (the current one if empty; capability
    /// `delete`). Returns the versions that changed.
    #[tracing::instrument(name = "Handle::delete", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn delete(&self, path: &str, versions: &[u64]) -> Result<Vec<u64>> {
        self.change_versions(Operation::Delete, path, versions)
            .await
    }

    /// Restores soft-deleted `versions` (capability `delete`).
    #[tracing::instrument(name = "Handle::undelete", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn undelete(&self, path: &str, versions: &[u64]) -> Result<Vec<u64>> {
        self.change_versions(Operation::Undelete, path, versions)
            .await
    }

    /// Destroys `versions` for good (the current one if empty; capability
    /// `delete`, as in Vault).
    #[tracing::instrument(name = "Handle::destroy", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn destroy(&self, path: &str, versions: &[u64]) -> Result<Vec<u64>> {
        self.change_versions(Operation::Destroy, path, versions)
            .await
    }

    async fn change_versions(
        &self,
        op: Operation,
        path: &str,
        versions: &[u64],
    ) -> Result<Vec<u64>> {
        let mut event = self.event(op, path)?;
        if let [one] = versions {
            event = event.with_version(*one);
        }
        let p = self.admit(&event, path, Capability::Delete).await?;
        if op == Operation::Destroy {
            self.gate(&event, GatedOperation::Destroy, &p).await?;
        }
        self.record_intent(event.clone()).await?;
        let result = match op {
            Operation::Delete => self.store.delete(p.as_str(), versions).await,
            Operation::Undelete => self.store.undelete(p.as_str(), versions).await,
            _ => self.store.destroy(p.as_str(), versions).await,
        };
        match result {
            Ok(changed) if changed.is_empty() => {
                self.record(event).await?;
                Ok(changed)
            }
            Ok(changed) => {
                for v in &changed {
                    self.record(event.clone().with_version(*v)).await?;
                }
                Ok(changed)
            }
            Err(e) => {
                self.record(event.with_outcome(error_outcome(&e))).await?;
                Err(e)
            }
        }
    }

    // ----- the authorised facade beyond secrets (crate::authorized) -----

    /// Leases through `manager` as this principal: checked against its
    /// `lease` (and for forced and prefix revocation `sudo`) capabilities
    /// and audited to this handle's log (see [`crate::authorized`]).
    pub fn leases(&self, manager: &Arc<crate::lease::LeaseManager>) -> LeaseHandle {
        LeaseHandle::new(self.clone(), Arc::clone(manager))
    }

    /// Rotation of `engine`'s credential as this principal: `rotate` on
    /// the credential's name, `read` for its staged secrets and status (see
    /// [`crate::authorized`]).
    pub fn rotation(&self, engine: &Arc<crate::rotation::RotationEngine>) -> RotationHandle {
        RotationHandle::new(self.clone(), Arc::clone(engine))
    }

    /// Signing keys through `keys` as this principal: `sign` on the key's
    /// name to sign, `create`, `rotate` and `update` to manage keys, `read`
    /// to verify and read public keys (see [`crate::signing`]).
    pub fn signing(
        &self,
        keys: &Arc<crate::signing::SigningKeys>,
    ) -> crate::authorized::SigningHandle {
        crate::authorized::SigningHandle::new(self.clone(), Arc::clone(keys))
    }

    /// Key administration of this handle's store as this principal: `sudo`
    /// on the reserved path `sys/keyring` (see [`crate::authorized`]).
    pub fn key_admin(&self) -> KeyAdmin {
        KeyAdmin::new(self.clone())
    }

    /// Reading and verifying the audit trail as this principal: `read` on
    /// the reserved path `sys/audit` (see [`crate::authorized`]).
    pub fn audit_trail(&self) -> AuditTrail {
        AuditTrail::new(self.clone())
    }

    /// The store this handle acts on, for the authorised handles.
    pub(crate) fn strongroom(&self) -> &Strongroom {
        self.store.strongroom()
    }

    /// Appends `event` and saves the head, as every handle call does; for
    /// the authorised handles.
    pub(crate) async fn audit_record(&self, event: AuditEvent) -> Result<AuditRecord> {
        self.record(event).await
    }

    /// An intent record (written before the operation runs), for the
    /// authorised handles.
    pub(crate) async fn audit_record_intent(&self, event: AuditEvent) -> Result<AuditRecord> {
        self.record_intent(event).await
    }
}

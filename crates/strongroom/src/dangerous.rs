//! Unchecked access, for embedding code that does its own authorisation.
//!
//! Everything a [`Handle`] does is checked against a principal's policies
//! and audited. Code that authorises requests itself (a service with its own
//! access model, a migration job, the CLI acting for an operator) may need
//! the store without a policy: the raw secrets store, the storage under the
//! barrier, sealed records, a [`LeaseManager`] or [`RotationEngine`] of its
//! own. That access exists only through this module's [`Door`], which
//! [`Strongroom::dangerous`] opens:
//!
//! - **Opening the door is audited, fail closed.** `dangerous` appends one
//!   record (operation `dangerous_open`, principal `dangerous:<caller>`,
//!   outcome `allowed`) to the audit log it is given and returns the
//!   door only once a sink accepted it.
//! - **Audited use with every capability**: [`Door::handle`] is a
//!   [`Handle`] for the principal `dangerous:<caller>` holding every
//!   capability on every path, reserved ones included, and
//!   [`Door::key_admin`] its [`KeyAdmin`]: each call is audited exactly like
//!   a principal's (intent before the effect, then the outcome).
//! - **Everything else through the door is unchecked and not audited per
//!   call**: [`Door::secrets`], [`Door::storage`], [`Door::barrier`],
//!   [`Door::commit`], the sealed records, the key administration methods
//!   on the door itself ([`Door::rotate`] and the rest), and the engines it
//!   builds. That is the point of the door; the embedding code answers for
//!   those calls.
//!
//! The door's record is appended to the chain but does not save the audit
//! head on its own (the next record a handle writes saves a head past it):
//! a door opened with a log of its own (e.g. tracing only) never moves the
//! store's saved head.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use strongroom::audit::{MemorySink, Operation};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Options, SecretBytes, Strongroom};
//!
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//! let sink = Arc::new(MemorySink::new());
//! let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await?);
//!
//! let door = sr.dangerous("migration", &audit).await?;
//! door.secrets().put("app/db", b"hunter2", None).await?;     // unchecked, unaudited
//! door.key_admin().rotate().await?;                          // audited
//!
//! let ops: Vec<_> = sink.records()?.iter().map(|r| r.event.operation).collect();
//! assert_eq!(ops[0], Operation::DangerousOpen);
//! assert!(ops.contains(&Operation::KeyringRotate));
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```
//!
//! Without the door, none of the unchecked API can be reached from a
//! `Strongroom` (each of these fails to compile):
//!
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom) {
//! let _ = sr.secrets();
//! # }
//! ```
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom) {
//! let _ = sr.storage();
//! # }
//! ```
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom) {
//! let _ = sr.rotate().await;
//! # }
//! ```
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom) {
//! let _ = sr.audit_key();
//! # }
//! ```
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom) {
//! let ctx = strongroom::seal::SealContext::new("a", 1);
//! let _ = sr.get_sealed("s/a", &ctx).await;
//! # }
//! ```
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom, clock: std::sync::Arc<dyn strongroom::clock::Clock>) {
//! let _ = strongroom::lease::LeaseManager::new(&sr, clock, Default::default());
//! # }
//! ```
//! ```compile_fail
//! # async fn f(sr: strongroom::Strongroom) {
//! let _ = strongroom::secrets::SecretsStore::new(sr, Default::default());
//! # }
//! ```

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::audit::{AuditEvent, AuditLog, Checkpoint, Operation, TracingSink, new_request_id};
use crate::authorized::KeyAdmin;
use crate::clock::Clock;
use crate::keyring::{KeyInfo, Keyring};
use crate::lease::{LeaseConfig, LeaseManager};
use crate::policy::{Capability, Policy, Principal, Rule};
use crate::protector::KeyProtector;
use crate::rotation::{RotationEngine, RotationOptions, Rotator, StagedCredentials};
use crate::seal::SealContext;
use crate::secrets::{SecretsOptions, SecretsStore};
use crate::storage::{BatchOp, DynStorage};
use crate::{Error, Handle, Result, RewrapReport, SecretBytes, Strongroom};

/// The principal name prefix of everything done through a door.
pub const PRINCIPAL_PREFIX: &str = "dangerous:";

/// The longest caller name [`Strongroom::dangerous`] accepts.
pub const MAX_CALLER_LEN: usize = 128;

/// Unchecked access to one store, opened (and audited) by
/// [`Strongroom::dangerous`]. See the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Door {
    sr: Strongroom,
    handle: Handle,
}

impl fmt::Debug for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Door")
            .field("principal", &self.handle.principal().name())
            .field("store", &self.sr)
            .finish_non_exhaustive()
    }
}

/// A policy granting every capability everywhere, reserved paths included.
fn everything() -> Result<Policy> {
    let rule = |pattern| Rule::allow(pattern, Capability::ALL).map_err(Error::from);
    Ok(Policy::new("dangerous", vec![rule("*")?, rule("sys/*")?]))
}

impl Strongroom {
    /// Opens the [`Door`] to unchecked access for `caller` (1 to 128
    /// bytes, no control characters), after appending its
    /// `dangerous_open` record to `audit`; if no sink accepts the record, no
    /// door is opened (fail closed). See [`dangerous`](crate::dangerous).
    pub async fn dangerous(&self, caller: &str, audit: &Arc<AuditLog>) -> Result<Door> {
        if caller.is_empty()
            || caller.len() > MAX_CALLER_LEN
            || caller.chars().any(char::is_control)
        {
            return Err(Error::InvalidArgument(format!(
                "a dangerous caller name is 1 to {MAX_CALLER_LEN} bytes without control characters"
            )));
        }
        let name = format!("{PRINCIPAL_PREFIX}{caller}");
        audit
            .append(AuditEvent::new(
                &name,
                Operation::DangerousOpen,
                new_request_id()?,
            ))
            .await?;
        let policy = everything()?;
        let principal = Principal::new(name, [&policy]);
        Ok(Door {
            sr: self.clone(),
            handle: self.as_principal(principal, audit.clone()),
        })
    }

    /// [`Strongroom::dangerous`] with the `dangerous_open` record written
    /// to a log of its own whose only sink is [`TracingSink`] (target
    /// `strongroom::audit`): for language bindings and tools that have no
    /// audit log of the store's own.
    pub async fn dangerous_traced(&self, caller: &str) -> Result<Door> {
        let log = self
            .open_audit_log(vec![Arc::new(TracingSink)], None)
            .await?;
        self.dangerous(caller, &Arc::new(log)).await
    }
}

/// A door is also its store: every checked method of [`Strongroom`]
/// (sealing values, listing keys, opening audit logs, principals' handles)
/// is reachable through it.
impl Deref for Door {
    type Target = Strongroom;

    fn deref(&self) -> &Strongroom {
        &self.sr
    }
}

impl Door {
    /// The store this door opens.
    pub fn strongroom(&self) -> &Strongroom {
        &self.sr
    }

    /// A [`Handle`] for `dangerous:<caller>` with every capability: checked
    /// (always allowed) and audited per call.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Key administration, audited per call (see the [module docs](self)).
    pub fn key_admin(&self) -> KeyAdmin {
        self.handle.key_admin()
    }

    /// Adds a key version and makes it primary: unchecked and not audited
    /// ([`KeyAdmin::rotate`] through [`Door::key_admin`] is audited).
    pub async fn rotate(&self) -> Result<KeyInfo> {
        self.sr.rotate().await
    }

    /// Makes an active key version primary again: unchecked, not audited.
    pub async fn promote(&self, version: u32) -> Result<()> {
        self.sr.promote(version).await
    }

    /// Retires every key version below `min`: unchecked, not audited.
    pub async fn set_min_decryption_version(&self, min: u32) -> Result<()> {
        self.sr.set_min_decryption_version(min).await
    }

    /// Erases a retired key version: unchecked, not audited.
    pub async fn destroy_key(&self, version: u32) -> Result<()> {
        self.sr.destroy_key(version).await
    }

    /// Re-seals stored records under the primary key: unchecked, not
    /// audited.
    pub async fn rewrap(&self, batch_size: usize) -> Result<RewrapReport> {
        self.sr.rewrap(batch_size).await
    }

    /// Replaces the root key with one from `protector`: unchecked, not
    /// audited.
    pub async fn rotate_root_key(&self, protector: &dyn KeyProtector) -> Result<()> {
        self.sr.rotate_root_key(protector).await
    }

    /// The versioned secrets store with default options: unchecked.
    pub fn secrets(&self) -> SecretsStore {
        self.sr.secrets()
    }

    /// The versioned secrets store with `options`: unchecked.
    pub fn secrets_with(&self, options: SecretsOptions) -> SecretsStore {
        SecretsStore::new(self.sr.clone(), options)
    }

    /// The storage the store was opened on: raw bytes, nothing sealed or
    /// checked on the way.
    pub fn storage(&self) -> &DynStorage {
        self.sr.storage()
    }

    /// The storage behind the barrier (see `Strongroom::barrier`).
    pub fn barrier(&self) -> DynStorage {
        self.sr.barrier()
    }

    /// The unsealed keyring.
    pub fn keyring(&self) -> Result<Arc<Keyring>> {
        self.sr.keyring()
    }

    /// The audit HMAC key (lets its holder forge audit records).
    pub fn audit_key(&self) -> Result<SecretBytes> {
        self.sr.audit_key()
    }

    /// Saves `head` as the audit chain head (see
    /// [`Strongroom::saved_audit_head`]); it only moves forward.
    pub async fn save_audit_head(&self, head: &Checkpoint) -> Result<()> {
        self.sr.save_audit_head(head).await
    }

    /// Commits `ops` to storage, held to the keyring generation like every
    /// sealed write (see `Strongroom::commit`): unchecked.
    pub async fn commit(&self, ops: Vec<BatchOp>) -> Result<()> {
        self.sr.commit(ops).await
    }

    /// A batch operation storing `plaintext` sealed at `key` for `context`
    /// (see [`Door::put_sealed`]).
    pub async fn sealed_put(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<BatchOp> {
        self.sr.sealed_put(key, plaintext, context).await
    }

    /// Stores `plaintext` sealed at `key` (under
    /// [`SEALED_PREFIX`](crate::SEALED_PREFIX)), bound to `context`.
    pub async fn put_sealed(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &SealContext<'_>,
    ) -> Result<()> {
        self.sr.put_sealed(key, plaintext, context).await
    }

    /// Reads and opens the sealed record at `key` for `context`.
    pub async fn get_sealed(
        &self,
        key: &str,
        context: &SealContext<'_>,
    ) -> Result<Option<SecretBytes>> {
        self.sr.get_sealed(key, context).await
    }

    /// Opens a sealed record's bytes as read from `key`.
    pub async fn open_record(
        &self,
        key: &str,
        bytes: Vec<u8>,
        context: &SealContext<'_>,
    ) -> Result<SecretBytes> {
        self.sr.open_record(key, bytes, context).await
    }

    /// A [`LeaseManager`] over this store (its direct methods are unchecked;
    /// wrap it with [`Handle::leases`] for a principal).
    pub fn lease_manager(
        &self,
        clock: Arc<dyn Clock>,
        config: LeaseConfig,
    ) -> Result<LeaseManager> {
        LeaseManager::new(&self.sr, clock, config)
    }

    /// A [`RotationEngine`] for credential `name` (its direct methods are
    /// unchecked; wrap it with [`Handle::rotation`] for a principal).
    pub async fn rotation_engine(
        &self,
        name: &str,
        rotator: Arc<dyn Rotator>,
        options: RotationOptions,
    ) -> Result<RotationEngine> {
        RotationEngine::open(self.sr.clone(), name, rotator, options).await
    }

    /// The [`SigningKeys`](crate::signing::SigningKeys) of this store
    /// (their direct methods are unchecked and unaudited; wrap them with
    /// [`Handle::signing`] for a principal). Rate limits are timed by the
    /// store's clock ([`Options::clock`](crate::Options)).
    pub fn signing_keys(&self) -> crate::signing::SigningKeys {
        crate::signing::SigningKeys::new(self.sr.clone())
    }

    /// The staged credentials of rotation `name`, read directly (see
    /// [`RotationHandle::staged`](crate::authorized::RotationHandle::staged)
    /// for the checked read).
    pub async fn load_staged(&self, name: &str) -> Result<StagedCredentials> {
        crate::rotation::load_staged(&self.sr, name).await
    }
}

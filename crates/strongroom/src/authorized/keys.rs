//! Key administration as a principal: [`KeyAdmin`].

use std::fmt;

use super::gate::{self, admit_system, change, conclude};
use crate::approvals::GatedOperation;
use crate::audit::{AuditEvent, Operation};
use crate::keyring::KeyInfo;
use crate::policy::{Capability, SystemPath};
use crate::protector::KeyProtector;
use crate::{Handle, Result, RewrapObserver, RewrapReport};

/// A principal's access to the store's keyring: every call checked against
/// its policies on the reserved path `sys/keyring` ([`SystemPath::Keyring`])
/// and audited (see the [module docs](super)). Obtain one with
/// [`Handle::key_admin`]. Cheap to clone.
///
/// | method | capability on `sys/keyring` | audit operation (version recorded) |
/// | --- | --- | --- |
/// | [`rotate`](Self::rotate) | `sudo` | `keyring_rotate` (the new version) |
/// | [`promote`](Self::promote) | `sudo` | `key_promote` (the version) |
/// | [`retire`](Self::retire) | `sudo` | `key_retire` (the new minimum) |
/// | [`destroy`](Self::destroy) | `sudo` | `key_destroy` (the version) |
/// | [`rewrap`](Self::rewrap) | `sudo` | `rewrap` (the target version) |
/// | [`rotate_root_key`](Self::rotate_root_key) | `sudo` | `root_key_rotate` |
/// | [`keys`](Self::keys) (no key material) | `read` | `read_metadata` |
///
/// [`destroy`](Self::destroy) and [`rotate_root_key`](Self::rotate_root_key)
/// are held by the approval gates of `key_destroy` and `root_key_rotate`
/// ([`crate::approvals`]); give the approved request with
/// [`Handle::with_approval`] before [`Handle::key_admin`].
///
/// A policy grants this with a rule that names the path literally, e.g.
/// `sys/keyring` = `["sudo", "read"]`; no wildcard rule such as `*` reaches
/// it (see "Reserved paths" in [`policy`](crate::policy)). Every change is
/// audited write-ahead: if the intent record is refused, the keyring is
/// not touched.
#[derive(Clone)]
pub struct KeyAdmin {
    handle: Handle,
}

impl fmt::Debug for KeyAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAdmin")
            .field("principal", &self.handle.principal().name())
            .finish_non_exhaustive()
    }
}

impl KeyAdmin {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// The principal's handle this one acts through.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// A new event of `op` on `sys/keyring`, checked for `cap`.
    async fn admit(&self, op: Operation, cap: Capability) -> Result<AuditEvent> {
        let event = gate::event(&self.handle, op)?.with_path(SystemPath::Keyring.as_str());
        admit_system(&self.handle, &event, SystemPath::Keyring, cap).await?;
        Ok(event)
    }

    /// The approval gate check of `op` ([`crate::approvals::require`]): a
    /// refusal is audited under `event` and returned.
    async fn approved(&self, event: &AuditEvent, op: GatedOperation) -> Result<()> {
        if let Err(e) = crate::approvals::require(&self.handle, op, "").await {
            let outcome = gate::error_outcome(&e);
            gate::record(&self.handle, event.clone().with_outcome(outcome)).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Adds a key version and makes it primary (`Strongroom::rotate`).
    #[tracing::instrument(name = "KeyAdmin::rotate", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn rotate(&self) -> Result<KeyInfo> {
        let event = self
            .admit(Operation::KeyringRotate, Capability::Sudo)
            .await?;
        let sr = self.handle.strongroom();
        change(&self.handle, event, sr.rotate(), |k| {
            Some(u64::from(k.version))
        })
        .await
    }

    /// Makes active key `version` primary again
    /// (`Strongroom::promote`).
    #[tracing::instrument(name = "KeyAdmin::promote", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn promote(&self, version: u32) -> Result<()> {
        let event = self
            .admit(Operation::KeyPromote, Capability::Sudo)
            .await?
            .with_version(u64::from(version));
        let sr = self.handle.strongroom();
        change(&self.handle, event, sr.promote(version), |_| None).await
    }

    /// Retires the key versions below `min`
    /// (`Strongroom::set_min_decryption_version`).
    #[tracing::instrument(name = "KeyAdmin::retire", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn retire(&self, min: u32) -> Result<()> {
        let event = self
            .admit(Operation::KeyRetire, Capability::Sudo)
            .await?
            .with_version(u64::from(min));
        let sr = self.handle.strongroom();
        change(
            &self.handle,
            event,
            sr.set_min_decryption_version(min),
            |_| None,
        )
        .await
    }

    /// Erases retired key `version`
    /// (`Strongroom::destroy_key`).
    #[tracing::instrument(name = "KeyAdmin::destroy", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn destroy(&self, version: u32) -> Result<()> {
        let event = self
            .admit(Operation::KeyDestroy, Capability::Sudo)
            .await?
            .with_version(u64::from(version));
        self.approved(&event, GatedOperation::KeyDestroy).await?;
        let sr = self.handle.strongroom();
        change(&self.handle, event, sr.destroy_key(version), |_| None).await
    }

    /// Re-seals stored records under the primary key
    /// (`Strongroom::rewrap`). Values never
    /// leave the library.
    #[tracing::instrument(name = "KeyAdmin::rewrap", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn rewrap(&self, batch_size: usize) -> Result<RewrapReport> {
        let event = self.admit(Operation::Rewrap, Capability::Sudo).await?;
        let sr = self.handle.strongroom();
        change(&self.handle, event, sr.rewrap(batch_size), |r| {
            Some(u64::from(r.target_version))
        })
        .await
    }

    /// [`KeyAdmin::rewrap`], telling `observer` how far it got: once per pass
    /// after counting what the pass must re-seal (one more scan of record
    /// headers), then after each committed batch. Audited the same way.
    #[tracing::instrument(name = "KeyAdmin::rewrap_with_progress", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn rewrap_with_progress(
        &self,
        batch_size: usize,
        observer: RewrapObserver<'_>,
    ) -> Result<RewrapReport> {
        let event = self.admit(Operation::Rewrap, Capability::Sudo).await?;
        let sr = self.handle.strongroom();
        let run = sr.rewrap_observed(batch_size, Some(observer));
        change(&self.handle, event, run, |r| {
            Some(u64::from(r.target_version))
        })
        .await
    }

    /// Replaces the root key with one wrapped by `protector`
    /// (`Strongroom::rotate_root_key`).
    #[tracing::instrument(name = "KeyAdmin::rotate_root_key", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn rotate_root_key(&self, protector: &dyn KeyProtector) -> Result<()> {
        let event = self
            .admit(Operation::RootKeyRotate, Capability::Sudo)
            .await?;
        self.approved(&event, GatedOperation::RootKeyRotate).await?;
        let sr = self.handle.strongroom();
        change(&self.handle, event, sr.rotate_root_key(protector), |_| None).await
    }

    /// The key versions and their states, no key material
    /// ([`Strongroom::keys`](crate::Strongroom::keys); capability `read`).
    #[tracing::instrument(name = "KeyAdmin::keys", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn keys(&self) -> Result<Vec<KeyInfo>> {
        let event = self
            .admit(Operation::ReadMetadata, Capability::Read)
            .await?;
        let result = self.handle.strongroom().keys();
        conclude(&self.handle, event, result, |ev, keys| {
            match keys.iter().map(|k| k.version).max() {
                Some(v) => ev.with_version(u64::from(v)),
                None => ev,
            }
        })
        .await
    }
}

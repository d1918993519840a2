//! Credential rotation as a principal: [`RotationHandle`].

use std::fmt;
use std::sync::Arc;

use super::gate::{self, admit, change, conclude, record};
use crate::audit::{AuditEvent, Operation};
use crate::handle::VALUE_HMAC_FIELD;
use crate::policy::Capability;
use crate::rotation::{
    RotationEngine, RotationReport, RotationStatus, ScheduleHandle, StagedCredentials,
};
use crate::{Handle, Result, SecretBytes};

/// The audit fields holding the HMACs of the staged secrets read through
/// [`RotationHandle::staged`].
pub const STAGED_HMAC_FIELDS: [&str; 3] = ["pending_hmac", "current_hmac", "previous_hmac"];

/// A principal's view of one [`RotationEngine`] (one credential): every
/// call checked against its policies on the credential's name as a path,
/// and audited (see the [module docs](super)). Obtain one with
/// [`Handle::rotation`]. Cheap to clone.
///
/// | method | capability | audit operation |
/// | --- | --- | --- |
/// | [`rotate_now`](Self::rotate_now), [`resume`](Self::resume), [`revoke_due`](Self::revoke_due), [`import_current`](Self::import_current), [`spawn_schedule`](Self::spawn_schedule) | `rotate` | `rotate` |
/// | [`staged`](Self::staged) (the secrets) | `read` | `read` |
/// | [`status`](Self::status) (no secrets) | `read` | `read_metadata` |
///
/// The path checked and recorded is the credential name
/// ([`RotationEngine::name`]), e.g. `prod/payments/api-key`. Changes are
/// audited write-ahead (an intent before the engine is called, the result
/// after, with the version promoted or imported); the engine's own step
/// records ([`RotationOptions::audit`](crate::rotation::RotationOptions::audit))
/// come in between if it has them.
#[derive(Clone)]
pub struct RotationHandle {
    handle: Handle,
    engine: Arc<RotationEngine>,
}

impl fmt::Debug for RotationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationHandle")
            .field("principal", &self.handle.principal().name())
            .field("credential", &self.engine.name())
            .finish_non_exhaustive()
    }
}

impl RotationHandle {
    pub(crate) fn new(handle: Handle, engine: Arc<RotationEngine>) -> Self {
        Self { handle, engine }
    }

    /// The principal's handle this one acts through.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The credential name.
    pub fn name(&self) -> &str {
        self.engine.name()
    }

    /// A new event of `op` on the credential, checked for `cap`.
    async fn admit(&self, op: Operation, cap: Capability) -> Result<AuditEvent> {
        let event = gate::event(&self.handle, op)?.with_path(self.engine.name());
        admit(&self.handle, &event, self.engine.name(), &[cap]).await?;
        Ok(event)
    }

    /// Rotates now ([`RotationEngine::rotate_now`]; capability `rotate`).
    /// The result record carries the version promoted.
    #[tracing::instrument(name = "RotationHandle::rotate_now", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn rotate_now(&self) -> Result<RotationReport> {
        let event = self.admit(Operation::Rotate, Capability::Rotate).await?;
        change(&self.handle, event, self.engine.rotate_now(), |r| {
            r.promoted
        })
        .await
    }

    /// Continues an interrupted rotation and revokes a previous version
    /// whose grace period is over ([`RotationEngine::resume`]; capability
    /// `rotate`).
    #[tracing::instrument(name = "RotationHandle::resume", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn resume(&self) -> Result<RotationReport> {
        let event = self.admit(Operation::Rotate, Capability::Rotate).await?;
        change(&self.handle, event, self.engine.resume(), |r| r.promoted).await
    }

    /// Revokes the previous version if its grace period is over
    /// ([`RotationEngine::revoke_due`]; capability `rotate`).
    #[tracing::instrument(name = "RotationHandle::revoke_due", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn revoke_due(&self) -> Result<bool> {
        let event = self.admit(Operation::Rotate, Capability::Rotate).await?;
        change(&self.handle, event, self.engine.revoke_due(), |_| None).await
    }

    /// Stores an existing credential as `current`
    /// ([`RotationEngine::import_current`]; capability `rotate`). The
    /// records carry the secret's HMAC (field `value_hmac`), the result
    /// also the version.
    #[tracing::instrument(name = "RotationHandle::import_current", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn import_current(
        &self,
        identity: impl Into<String>,
        secret: SecretBytes,
    ) -> Result<u64> {
        let event = self.admit(Operation::Rotate, Capability::Rotate).await?;
        let hmac = self.handle.audit_log().hmac(secret.expose_secret());
        let event = event.with_field(VALUE_HMAC_FIELD, hmac);
        let run = self.engine.import_current(identity, secret);
        change(&self.handle, event, run, |v| Some(*v)).await
    }

    /// Starts the engine's schedule ([`RotationEngine::spawn_schedule`];
    /// capability `rotate`). Audited once, when it starts; the rotations it
    /// runs later are the engine's (audit them with
    /// [`RotationOptions::audit`](crate::rotation::RotationOptions::audit)).
    #[tracing::instrument(name = "RotationHandle::spawn_schedule", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn spawn_schedule(&self) -> Result<ScheduleHandle> {
        let event = self.admit(Operation::Rotate, Capability::Rotate).await?;
        record(&self.handle, event).await?;
        Ok(self.engine.spawn_schedule())
    }

    /// The stored versions by stage, secrets included
    /// ([`RotationEngine::staged`]; capability `read`). Audited after the
    /// read and before anything is returned, with the current version and
    /// the HMAC of each stage's secret ([`STAGED_HMAC_FIELDS`]); if the
    /// record is refused, the secrets are dropped unseen.
    #[tracing::instrument(name = "RotationHandle::staged", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn staged(&self) -> Result<StagedCredentials> {
        let event = self.admit(Operation::Read, Capability::Read).await?;
        let result = self.engine.staged().await;
        let log = self.handle.audit_log().clone();
        conclude(&self.handle, event, result, |mut ev, staged| {
            let stages = [&staged.pending, &staged.current, &staged.previous];
            for (name, cred) in STAGED_HMAC_FIELDS.into_iter().zip(stages) {
                if let Some(c) = cred {
                    ev = ev.with_field(name, log.hmac(c.secret().expose_secret()));
                }
            }
            match &staged.current {
                Some(c) => ev.with_version(c.version()),
                None => ev,
            }
        })
        .await
    }

    /// The non-secret state ([`RotationEngine::status`]; capability
    /// `read`).
    #[tracing::instrument(name = "RotationHandle::status", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn status(&self) -> Result<RotationStatus> {
        let event = self
            .admit(Operation::ReadMetadata, Capability::Read)
            .await?;
        let result = self.engine.status().await;
        conclude(&self.handle, event, result, |ev, s| match s.current {
            Some(v) => ev.with_version(v),
            None => ev,
        })
        .await
    }
}

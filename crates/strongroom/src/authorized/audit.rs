//! Reading the audit trail as a principal: [`AuditTrail`].

use std::fmt;
use std::path::Path;

use super::gate::{self, admit_system, conclude};
use crate::audit::{AuditEvent, AuditFileCheck, Checkpoint, Operation, VerifyReport};
use crate::policy::{Capability, SystemPath};
use crate::{Handle, Result};

/// A principal's access to the store's audit trail: every call checked for
/// `read` on the reserved path `sys/audit` ([`SystemPath::Audit`]) and
/// audited as `audit_read` (see the [module docs](super)). Obtain one with
/// [`Handle::audit_trail`]. Cheap to clone.
///
/// The request is recorded before the trail is read (so the record itself
/// is part of what a verification of the same log covers), and the
/// outcome after; a verification that finds the chain broken is recorded
/// as an error of kind `audit_chain_broken` and returned.
#[derive(Clone)]
pub struct AuditTrail {
    handle: Handle,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail")
            .field("principal", &self.handle.principal().name())
            .finish_non_exhaustive()
    }
}

impl AuditTrail {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// The principal's handle this one acts through.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    async fn admit(&self) -> Result<AuditEvent> {
        let event =
            gate::event(&self.handle, Operation::AuditRead)?.with_path(SystemPath::Audit.as_str());
        admit_system(&self.handle, &event, SystemPath::Audit, Capability::Read).await?;
        gate::record_intent(&self.handle, event.clone()).await?;
        Ok(event)
    }

    /// Verifies the JSON-lines audit file at `path` against the store's
    /// saved head ([`Strongroom::verify_audit_file`](crate::Strongroom::verify_audit_file)).
    #[tracing::instrument(name = "AuditTrail::verify_file", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn verify_file(
        &self,
        path: impl AsRef<Path>,
        check: &AuditFileCheck,
    ) -> Result<VerifyReport> {
        let event = self.admit().await?;
        let result = self
            .handle
            .strongroom()
            .verify_audit_file(path, check)
            .await;
        conclude(&self.handle, event, result, |ev, _| ev).await
    }

    /// The audit chain head saved in the store
    /// ([`Strongroom::saved_audit_head`](crate::Strongroom::saved_audit_head)).
    #[tracing::instrument(name = "AuditTrail::saved_head", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn saved_head(&self) -> Result<Option<Checkpoint>> {
        let event = self.admit().await?;
        let result = self.handle.strongroom().saved_audit_head().await;
        conclude(&self.handle, event, result, |ev, _| ev).await
    }
}

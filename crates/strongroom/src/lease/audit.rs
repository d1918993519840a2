//! The manager's own audit records, appended synchronously on each
//! operation's path before its effect (see "Auditing" in the module docs
//! of [`lease`](super)).

use std::sync::Arc;

use super::{LeaseId, LeaseManager};
use crate::Result;
use crate::audit::{AuditEvent, AuditLog, Operation, Outcome, new_request_id};

/// The principal named in the records a [`LeaseManager`] writes itself.
pub const LEASE_MANAGER_PRINCIPAL: &str = "lease-manager";

/// The request id shared by the records of one manager operation; `None`
/// when no audit log is attached.
pub(super) type AuditRequest = Option<String>;

impl LeaseManager {
    /// Attaches `audit`: from now on every issue, renewal, revocation and
    /// expiry is appended to it before it takes effect, and refused if no
    /// sink accepts the record (see "Auditing" in the [module docs](super)).
    /// The same as setting [`LeaseConfig::audit`](super::LeaseConfig::audit).
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<AuditLog>) -> Self {
        self.config.audit = Some(audit);
        self
    }

    /// A fresh request id if an audit log is attached.
    pub(super) fn audit_request(&self) -> Result<AuditRequest> {
        match self.config.audit {
            Some(_) => new_request_id().map(Some),
            None => Ok(None),
        }
    }

    /// Appends the write-ahead record of `op` on lease `id` at `path`.
    /// Fails (with the audit error) if no sink accepted it; the caller must
    /// then not go on.
    pub(super) async fn audit_intent(
        &self,
        request: &AuditRequest,
        op: Operation,
        id: LeaseId,
        path: &str,
    ) -> Result<()> {
        self.audit_append(request, op, id, path, Outcome::Allowed)
            .await
    }

    /// Appends an error outcome (`kind` is an [`Error::kind`](crate::Error::kind)
    /// code) of `op` on lease `id`.
    pub(super) async fn audit_failure(
        &self,
        request: &AuditRequest,
        op: Operation,
        id: LeaseId,
        path: &str,
        kind: &str,
    ) -> Result<()> {
        let outcome = Outcome::Error {
            kind: kind.to_owned(),
        };
        self.audit_append(request, op, id, path, outcome).await
    }

    /// [`LeaseManager::audit_failure`] after an operation that already
    /// failed: the caller returns that error, so a refused record is only
    /// logged (the write-ahead record already shows the attempt).
    pub(super) async fn audit_failure_or_log(
        &self,
        request: &AuditRequest,
        op: Operation,
        id: LeaseId,
        path: &str,
        error: &crate::Error,
    ) {
        if let Err(e) = self
            .audit_failure(request, op, id, path, error.kind())
            .await
        {
            tracing::error!(lease = %id, error = %e, "the outcome of a failed lease operation could not be audited");
        }
    }

    async fn audit_append(
        &self,
        request: &AuditRequest,
        op: Operation,
        id: LeaseId,
        path: &str,
        outcome: Outcome,
    ) -> Result<()> {
        let Some(log) = &self.config.audit else {
            return Ok(());
        };
        let request_id = match request {
            Some(r) => r.clone(),
            None => new_request_id()?,
        };
        let event = AuditEvent::new(LEASE_MANAGER_PRINCIPAL, op, request_id)
            .with_path(path)
            .with_lease_id(id.to_string())
            .with_outcome(outcome);
        log.append(event).await?;
        Ok(())
    }
}

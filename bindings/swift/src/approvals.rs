//! Approval gates (`strongroom::approvals`) as a principal:
//! `Handle.approvals()` gives an `Approvals` (ask, approve, refuse, read
//! requests and the gates), `Handle.withApproval(id:)` a handle whose gated
//! calls use that request up, and `Strongroom.setGates(toml:expectedRevision:operatorHandle:)`
//! replaces the gates through the binding's door. Converters only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strongroom::approvals::{
    self, ApprovalRequest as CoreRequest, Decision, GatedOperation, Gates, StoredGates,
};

use crate::errors::Result;
use crate::{Handle, Strongroom};

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApprovalDecision {
    /// The approver.
    pub principal: String,
    /// When (ms since the Unix epoch, the store's clock).
    pub at_ms: u64,
}

/// An approval request as read (no secret).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApprovalRequest {
    /// The request id (32 lower-case hex digits).
    pub id: String,
    /// `destroy`, `sensitive_read`, `root_key_rotate`, `key_destroy` or
    /// `apply_config`.
    pub operation: String,
    /// The canonical path (the system path for store-wide operations).
    pub path: String,
    /// Who asked (and alone may use it).
    pub requester: String,
    /// Why, as the requester wrote it.
    pub reason: String,
    /// `pending`, `approved`, `refused`, `used` or `expired`.
    pub state: String,
    /// The approvals, in order.
    pub approvals: Vec<ApprovalDecision>,
    /// The refusals.
    pub refusals: Vec<ApprovalDecision>,
    /// When it was made (ms since the epoch).
    pub created_ms: u64,
    /// When it expires unless used (ms since the epoch).
    pub expires_ms: u64,
    /// Who used it, once used.
    pub used_by: Option<String>,
}

fn decisions(d: &[Decision]) -> Vec<ApprovalDecision> {
    d.iter()
        .map(|d| ApprovalDecision {
            principal: d.principal.clone(),
            at_ms: d.at.as_millis(),
        })
        .collect()
}

impl From<CoreRequest> for ApprovalRequest {
    fn from(r: CoreRequest) -> Self {
        Self {
            approvals: decisions(&r.approvals),
            refusals: decisions(&r.refusals),
            id: r.id,
            operation: r.operation.as_str().to_owned(),
            path: r.path,
            requester: r.requester,
            reason: r.reason,
            state: r.state.as_str().to_owned(),
            created_ms: r.created.as_millis(),
            expires_ms: r.expires.as_millis(),
            used_by: r.used_by,
        }
    }
}

/// One gate: `operation` on paths `pattern` matches runs once `required`
/// of `approvers` approved.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApprovalGate {
    /// The operation held.
    pub operation: String,
    /// The path pattern (nil for the store-wide operations).
    pub pattern: Option<String>,
    /// Approvals needed (N).
    pub required: u32,
    /// Who may approve or refuse (M).
    pub approvers: Vec<String>,
}

/// The store's gates and their revision (0 and none if never set).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApprovalGates {
    /// 0 if never set, then one more per change: give it to `setGates`.
    pub revision: u64,
    /// The gates.
    pub gates: Vec<ApprovalGate>,
    /// The gates as a gates file (TOML).
    pub toml: String,
}

impl From<StoredGates> for ApprovalGates {
    fn from(g: StoredGates) -> Self {
        Self {
            revision: g.revision,
            gates: g
                .gates
                .gates()
                .iter()
                .map(|gate| ApprovalGate {
                    operation: gate.operation().as_str().to_owned(),
                    pattern: gate.pattern().map(|p| p.as_str().to_owned()),
                    required: gate.required(),
                    approvers: gate.approvers().to_vec(),
                })
                .collect(),
            toml: g.gates.to_toml(),
        }
    }
}

/// A principal's approval requests: ask, approve, refuse, read. From
/// `Handle.approvals()`; every change is audited under the principal.
#[derive(uniffi::Object)]
#[uniffi::export(Debug)]
pub struct Approvals {
    inner: approvals::Approvals,
}

impl fmt::Debug for Approvals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Approvals({:?})", self.inner.handle().principal().name())
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Approvals {
    /// Asks for `operation` (`destroy`, `sensitive_read`,
    /// `root_key_rotate`, `key_destroy`, `apply_config`) on `path` (empty
    /// for the store-wide operations) to run once within `ttl_secs`, for
    /// `reason`. Fails with `.ApprovalNoGate` if no gate holds it.
    pub async fn request(
        &self,
        operation: String,
        path: String,
        reason: String,
        ttl_secs: u64,
    ) -> Result<ApprovalRequest> {
        let op = operation
            .parse::<GatedOperation>()
            .map_err(strongroom::Error::from)?;
        let ttl = Duration::from_secs(ttl_secs);
        Ok(self.inner.request(op, &path, &reason, ttl).await?.into())
    }

    /// Approves request `id` (as an approver a gate names, not the
    /// requester); the request as it now stands.
    pub async fn approve(&self, id: String) -> Result<ApprovalRequest> {
        Ok(self.inner.approve(&id).await?.into())
    }

    /// Refuses request `id`: it can never run.
    pub async fn refuse(&self, id: String) -> Result<ApprovalRequest> {
        Ok(self.inner.refuse(&id).await?.into())
    }

    /// Request `id` (`.ApprovalNotFound` if none).
    pub async fn get(&self, id: String) -> Result<ApprovalRequest> {
        Ok(self.inner.get(&id).await?.into())
    }

    /// Every stored request, oldest first.
    pub async fn list(&self) -> Result<Vec<ApprovalRequest>> {
        Ok(self
            .inner
            .list()
            .await?
            .into_iter()
            .map(ApprovalRequest::from)
            .collect())
    }

    /// The store's gates and their revision.
    pub async fn gates(&self) -> Result<ApprovalGates> {
        Ok(self.inner.gates().await?.into())
    }
}

#[uniffi::export]
impl Handle {
    /// This principal's approval requests.
    pub fn approvals(&self) -> Arc<Approvals> {
        Arc::new(Approvals {
            inner: self.inner.approvals(),
        })
    }

    /// This handle with approval request `id`: its next gated call (a
    /// destroy, a sensitive read) uses the approved request up.
    pub fn with_approval(&self, id: String) -> Arc<Handle> {
        Arc::new(Handle {
            inner: self.inner.with_approval(&id),
            store: self.store.clone(),
            signing: self.signing.clone(),
        })
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Strongroom {
    /// Replaces the store's approval gates with those of the gates file
    /// text `toml` if their revision is still `expected_revision` (0 when
    /// never set), through the binding's door to unchecked access; returns
    /// the new revision (`.ApprovalConflict` if they changed meanwhile).
    /// Audited under `operator_handle`'s principal, or the door's
    /// `dangerous:swift` when nil.
    #[uniffi::method(default(operator_handle = None))]
    pub async fn set_gates(
        &self,
        toml: String,
        expected_revision: u64,
        operator_handle: Option<Arc<Handle>>,
    ) -> Result<u64> {
        let gates = Gates::from_toml_str(&toml).map_err(strongroom::Error::from)?;
        let operator = match &operator_handle {
            Some(h) => &h.inner,
            None => self.core.handle(),
        };
        Ok(approvals::set_gates(&self.core, operator, &gates, expected_revision).await?)
    }
}

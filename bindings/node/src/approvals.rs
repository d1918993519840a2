//! Approval gates ([`strongroom::approvals`]) as a principal:
//! `handle.approvals()` gives a [`NativeApprovals`] (ask, approve, refuse,
//! read requests and the gates); `handle.withApproval(id)` a handle whose
//! gated calls use that request up; `store.setGates(...)` replaces the
//! gates through the binding's door. Converters only: every rule is the
//! core's, and every error is the core's `approval.*` one.

use std::sync::Arc;

use napi::bindgen_prelude::{BigInt, Either, Env, PromiseRaw};
use napi_derive::napi;
use strongroom::approvals::{
    self, ApprovalRequest, Approvals, Decision, GatedOperation, Gates, StoredGates,
};

use crate::{
    Lifetime, NativeSecrets, NativeStrongroom, Target, closed_error, context_version, duration_ms,
    invalid, ms, to_js,
};

/// One approval or refusal of a request.
#[napi(object)]
pub struct NativeDecision {
    /// Who decided.
    pub principal: String,
    /// When (ms since the Unix epoch, the store's clock).
    pub at_ms: f64,
}

fn decisions(d: &[Decision]) -> Vec<NativeDecision> {
    d.iter()
        .map(|d| NativeDecision {
            principal: d.principal.clone(),
            at_ms: ms(d.at),
        })
        .collect()
}

/// One approval request, as read (plain data, no secret).
#[napi(object)]
pub struct NativeApprovalRequest {
    /// The request id (32 lower-case hex digits).
    pub id: String,
    /// "destroy", "sensitive_read", "root_key_rotate", "key_destroy" or
    /// "apply_config".
    pub operation: String,
    /// The canonical path (the system path for store-wide operations).
    pub path: String,
    /// Who asked (and alone may use it).
    pub requester: String,
    /// Why, as the requester wrote it.
    pub reason: String,
    /// "pending", "approved", "refused", "used" or "expired".
    pub state: String,
    /// The approvals, in order.
    pub approvals: Vec<NativeDecision>,
    /// The refusals.
    pub refusals: Vec<NativeDecision>,
    /// When it was made (ms).
    pub created_ms: f64,
    /// When it expires unless used (ms).
    pub expires_ms: f64,
    /// Who used it, once used.
    pub used_by: Option<String>,
}

impl From<ApprovalRequest> for NativeApprovalRequest {
    fn from(r: ApprovalRequest) -> Self {
        Self {
            approvals: decisions(&r.approvals),
            refusals: decisions(&r.refusals),
            id: r.id,
            operation: r.operation.as_str().to_owned(),
            path: r.path,
            requester: r.requester,
            reason: r.reason,
            state: r.state.as_str().to_owned(),
            created_ms: ms(r.created),
            expires_ms: ms(r.expires),
            used_by: r.used_by,
        }
    }
}

/// One gate: `operation` on the paths `pattern` matches runs once
/// `required` of `approvers` approved.
#[napi(object)]
pub struct NativeGate {
    /// The operation held.
    pub operation: String,
    /// The path pattern (`null` for the store-wide operations).
    pub pattern: Option<String>,
    /// Approvals needed (N).
    pub required: u32,
    /// Who may approve or refuse (M).
    pub approvers: Vec<String>,
}

/// The store's gates and their revision (0 and no gates if never set).
#[napi(object)]
pub struct NativeApprovalGates {
    /// 0 if never set, then one more per change: pass it to `setGates`.
    pub revision: f64,
    /// The gates.
    pub gates: Vec<NativeGate>,
    /// The gates as a gates file (TOML).
    pub toml: String,
}

impl From<StoredGates> for NativeApprovalGates {
    fn from(g: StoredGates) -> Self {
        Self {
            revision: g.revision as f64,
            toml: g.gates.to_toml(),
            gates: g
                .gates
                .gates()
                .iter()
                .map(|gate| NativeGate {
                    operation: gate.operation().as_str().to_owned(),
                    pattern: gate.pattern().map(|p| p.as_str().to_owned()),
                    required: gate.required(),
                    approvers: gate.approvers().to_vec(),
                })
                .collect(),
        }
    }
}

/// A principal's approval requests: ask, approve, refuse, read. Every
/// change is audited under the principal.
#[napi]
pub struct NativeApprovals {
    inner: Approvals,
    /// The store's lifetime: calls fail once it is closed.
    life: Arc<Lifetime>,
}

impl NativeApprovals {
    fn approvals(&self) -> napi::Result<Approvals> {
        if self.life.is_closed() {
            return Err(closed_error("store"));
        }
        Ok(self.inner.clone())
    }
}

#[napi]
impl NativeApprovals {
    /// The principal acting.
    #[napi(getter)]
    pub fn principal(&self) -> String {
        self.inner.handle().principal().name().to_owned()
    }

    /// Asks for `operation` on `path` ("" for the store-wide operations) to
    /// run once within `ttl_ms`, for `reason`.
    #[napi]
    pub fn request<'env>(
        &self,
        env: &'env Env,
        operation: String,
        path: String,
        reason: String,
        ttl_ms: f64,
    ) -> napi::Result<PromiseRaw<'env, NativeApprovalRequest>> {
        let a = self.approvals()?;
        let op = operation
            .parse::<GatedOperation>()
            .map_err(|e| to_js(e.into()))?;
        let ttl = duration_ms("ttlMs", ttl_ms)?;
        env.spawn_future(async move {
            a.request(op, &path, &reason, ttl)
                .await
                .map(Into::into)
                .map_err(to_js)
        })
    }

    /// Approves request `id` as this principal; resolves to the request as
    /// it now stands.
    #[napi]
    pub fn approve<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, NativeApprovalRequest>> {
        let a = self.approvals()?;
        env.spawn_future(async move { a.approve(&id).await.map(Into::into).map_err(to_js) })
    }

    /// Refuses request `id` as this principal: it can never run.
    #[napi]
    pub fn refuse<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, NativeApprovalRequest>> {
        let a = self.approvals()?;
        env.spawn_future(async move { a.refuse(&id).await.map(Into::into).map_err(to_js) })
    }

    /// Request `id`.
    #[napi]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, NativeApprovalRequest>> {
        let a = self.approvals()?;
        env.spawn_future(async move { a.get(&id).await.map(Into::into).map_err(to_js) })
    }

    /// Every stored request, oldest first.
    #[napi]
    pub fn list<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Vec<NativeApprovalRequest>>> {
        let a = self.approvals()?;
        env.spawn_future(async move {
            a.list()
                .await
                .map(|v| v.into_iter().map(Into::into).collect())
                .map_err(to_js)
        })
    }

    /// The store's gates and their revision.
    #[napi]
    pub fn gates<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, NativeApprovalGates>> {
        let a = self.approvals()?;
        env.spawn_future(async move { a.gates().await.map(Into::into).map_err(to_js) })
    }
}

/// The principal's handle behind `s`, or why there is none.
fn principal_handle(s: &NativeSecrets, what: &str) -> napi::Result<strongroom::Handle> {
    match s.target()? {
        Target::Handle(h) => Ok(h),
        Target::Store(_) => Err(invalid(format!(
            "{what} needs a principal's handle (store.asPrincipal())"
        ))),
    }
}

#[napi]
impl NativeSecrets {
    /// This principal's approval requests.
    #[napi]
    pub fn approvals(&self) -> napi::Result<NativeApprovals> {
        Ok(NativeApprovals {
            inner: principal_handle(self, "approvals")?.approvals(),
            life: self.life.clone(),
        })
    }

    /// This handle with approval request `id`: its gated calls (destroy, a
    /// sensitive read) use the approved request up.
    #[napi]
    pub fn with_approval(&self, id: String) -> napi::Result<NativeSecrets> {
        Ok(NativeSecrets {
            target: Target::Handle(principal_handle(self, "withApproval")?.with_approval(&id)),
            life: self.life.clone(),
        })
    }
}

#[napi]
impl NativeStrongroom {
    /// Replaces the store's gates with those of the gates file `toml` if
    /// their revision is still `expected_revision`, through the binding's
    /// door; audited under `operator` (a principal's handle of this store)
    /// or the door's own `dangerous:node` handle. Resolves to the new
    /// revision.
    #[napi]
    pub fn set_gates<'env>(
        &self,
        env: &'env Env,
        toml: String,
        expected_revision: Either<f64, BigInt>,
        operator: Option<&NativeSecrets>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let door = self.handle()?;
        let expected = context_version(&expected_revision).map_err(|_| {
            invalid("expectedRevision must be a non-negative integer (a number or a bigint)")
        })?;
        let operator = match operator {
            Some(o) if !Arc::ptr_eq(&o.life, &self.life) => {
                return Err(invalid("the operator is a principal of another store"));
            }
            Some(o) => principal_handle(o, "an operator")?,
            None => door.handle().clone(),
        };
        let gates = Gates::from_toml_str(&toml).map_err(|e| to_js(e.into()))?;
        env.spawn_future(async move {
            approvals::set_gates(&door, &operator, &gates, expected)
                .await
                .map(|r| r as f64)
                .map_err(to_js)
        })
    }
}

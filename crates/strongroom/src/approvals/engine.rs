//! Requests, decisions and their use: [`Approvals`] (a principal's view),
//! [`set_gates`] (through the door), and the check the gated operations
//! run ([`require`]).

use std::fmt;
use std::time::Duration;

use super::record::{
    self, RequestRecord, StoredGates, read_gates, read_request, request_ids, swap_request,
};
use super::{ApprovalError, ApprovalRequest, Decision, GatedOperation, Gates, RequestState};
use crate::audit::{AuditEvent, Operation, Outcome, new_request_id};
use crate::dangerous::Door;
use crate::path::SecretPath;
use crate::{Error, Handle, Result};

/// The longest reason a request takes, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// The longest time to live a request takes (30 days).
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Attempts of one change against concurrent writers of the same record.
const ATTEMPTS: usize = 32;

/// A principal's access to approval requests: ask, approve, refuse, read.
/// Obtain one with [`Handle::approvals`]. Cheap to clone.
///
/// No capability is checked here: anyone may ask (the gated operation
/// itself is checked against the policies when it runs), only the
/// approvers a gate names may approve or refuse, and every call that
/// changes a request is audited under the acting principal with the
/// request's path and, as the record's request id, the approval
/// request's id (an intent before the change, the outcome after it).
#[derive(Clone)]
pub struct Approvals {
    handle: Handle,
}

impl fmt::Debug for Approvals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approvals")
            .field("principal", &self.handle.principal().name())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// Approval requests as this principal (see [`crate::approvals`]).
    pub fn approvals(&self) -> Approvals {
        Approvals {
            handle: self.clone(),
        }
    }
}

/// An error's audit outcome: refusals of who may decide are `denied`,
/// everything else an error by kind.
fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::Approval(ApprovalError::NotApprover { .. } | ApprovalError::SelfApproval { .. }) => {
            Outcome::Denied
        }
        e => Outcome::Error {
            kind: e.kind().to_owned(),
        },
    }
}

/// Audits `run` as a change: the intent before it, the outcome after it.
async fn audited<T>(
    h: &Handle,
    event: AuditEvent,
    run: impl Future<Output = Result<T>>,
) -> Result<T> {
    h.audit_record_intent(event.clone()).await?;
    match run.await {
        Ok(out) => {
            h.audit_record(event).await?;
            Ok(out)
        }
        Err(e) => {
            h.audit_record(event.with_outcome(outcome_of(&e))).await?;
            Err(e)
        }
    }
}

fn event(h: &Handle, op: Operation, id: &str, path: &str) -> AuditEvent {
    let event = AuditEvent::new(h.principal().name(), op, id).with_path(path);
    crate::metrics::trace_request(&event);
    event
}

/// The canonical path of `operation` for a request: the system target for
/// the store-wide operations (`path` empty or equal to it), the canonical
/// secret path otherwise.
fn target(operation: GatedOperation, path: &str) -> Result<String> {
    match operation.system_target() {
        Some(t) if path.is_empty() || path == t => Ok(t.to_owned()),
        Some(t) => Err(ApprovalError::InvalidRequest {
            reason: format!("{operation} acts on the whole store: give no path or {t}"),
        }
        .into()),
        None => Ok(SecretPath::parse(path)?.as_str().to_owned()),
    }
}

fn check_reason(reason: &str) -> Result<()> {
    let bad = |r: &str| {
        Err(ApprovalError::InvalidRequest {
            reason: r.to_owned(),
        }
        .into())
    };
    if reason.trim().is_empty() {
        return bad("give a reason");
    }
    if reason.len() > MAX_REASON_LEN {
        return bad("the reason is longer than 1024 bytes");
    }
    if reason.chars().any(char::is_control) {
        return bad("the reason contains a control character");
    }
    Ok(())
}

/// The stored gates, or none.
async fn current_gates(h: &Handle) -> Result<Gates> {
    Ok(read_gates(h.strongroom())
        .await?
        .map(|(g, _)| g.gates)
        .unwrap_or_default())
}

impl Approvals {
    /// The principal's handle this one acts through.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The store's gates and their revision (revision 0 and no gates if
    /// none were ever set). One barrier read; not audited (gates hold no
    /// secret).
    pub async fn gates(&self) -> Result<StoredGates> {
        Ok(read_gates(self.handle.strongroom())
            .await?
            .map(|(g, _)| g)
            .unwrap_or_default())
    }

    /// Asks for `operation` on `path` to run once, within `ttl` of now
    /// (the store's clock), for `reason` (operator text kept in the request
    /// record, never in the audit trail). `path` is a secret path for
    /// `destroy` and `sensitive_read`; empty (or the system target) for the
    /// store-wide operations. Fails with [`ApprovalError::NoGate`] if no
    /// gate holds the operation there. Audited as `approval_request`.
    pub async fn request(
        &self,
        operation: GatedOperation,
        path: &str,
        reason: &str,
        ttl: Duration,
    ) -> Result<ApprovalRequest> {
        let h = &self.handle;
        let id = new_request_id()?;
        let ev = event(h, Operation::ApprovalRequest, &id, path);
        audited(h, ev, async {
            let path = target(operation, path)?;
            check_reason(reason)?;
            if ttl.is_zero() || ttl > MAX_TTL {
                return Err(ApprovalError::InvalidRequest {
                    reason: "the time to live must be more than 0 and at most 30 days".into(),
                }
                .into());
            }
            let gates = current_gates(h).await?;
            if gates.covering(operation, &path).next().is_none() {
                return Err(ApprovalError::NoGate {
                    operation: operation.as_str(),
                    path,
                }
                .into());
            }
            let sr = h.strongroom();
            let now = sr.clock().now();
            let rec = RequestRecord {
                format: record::APPROVALS_FORMAT,
                id: id.clone(),
                operation,
                path,
                requester: h.principal().name().to_owned(),
                reason: reason.to_owned(),
                created: now,
                expires: now + ttl,
                state: RequestState::Pending,
                approvals: Vec::new(),
                refusals: Vec::new(),
                used_by: None,
            };
            if !swap_request(sr, None, &rec).await? {
                return Err(ApprovalError::Conflict { what: id.clone() }.into());
            }
            Ok(rec.view(now))
        })
        .await
    }

    /// Approves request `id` as this principal, who must be an approver
    /// of a gate holding the request's operation and path (the gates as
    /// stored now), not its requester, and not have approved it already.
    /// Once every such gate has its required approvals the request is
    /// `approved`. A concurrent decision by another process is re-read and
    /// kept (compare-and-set). Audited as `approval_approve`.
    pub async fn approve(&self, id: &str) -> Result<ApprovalRequest> {
        self.decide(id, true).await
    }

    /// Refuses request `id` as one of its approvers: it can never run.
    /// Audited as `approval_refuse`.
    pub async fn refuse(&self, id: &str) -> Result<ApprovalRequest> {
        self.decide(id, false).await
    }

    async fn decide(&self, id: &str, approve: bool) -> Result<ApprovalRequest> {
        let h = &self.handle;
        let op = if approve {
            Operation::ApprovalApprove
        } else {
            Operation::ApprovalRefuse
        };
        // The path is the request's; an unknown id is audited without one.
        let (first, _) = match read_request(h.strongroom(), id).await {
            Ok(r) => r,
            Err(e) => {
                let ev = AuditEvent::new(h.principal().name(), op, sanitized(id));
                h.audit_record(ev.with_outcome(outcome_of(&e))).await?;
                return Err(e);
            }
        };
        let ev = event(h, op, id, &first.path);
        audited(h, ev, self.decide_unaudited(id, approve)).await
    }

    async fn decide_unaudited(&self, id: &str, approve: bool) -> Result<ApprovalRequest> {
        let h = &self.handle;
        let sr = h.strongroom();
        let me = h.principal().name();
        for _ in 0..ATTEMPTS {
            let (mut rec, raw) = read_request(sr, id).await?;
            let now = sr.clock().now();
            check_live(&rec, now)?;
            let gates = current_gates(h).await?;
            if approve && rec.requester == me {
                return Err(ApprovalError::SelfApproval {
                    id: id.to_owned(),
                    principal: me.to_owned(),
                }
                .into());
            }
            if !gates.is_approver(rec.operation, &rec.path, me) {
                return Err(ApprovalError::NotApprover {
                    id: id.to_owned(),
                    principal: me.to_owned(),
                }
                .into());
            }
            let decision = Decision {
                principal: me.to_owned(),
                at: now,
            };
            if approve {
                if rec.approvals.iter().any(|d| d.principal == me) {
                    return Err(ApprovalError::AlreadyApproved {
                        id: id.to_owned(),
                        principal: me.to_owned(),
                    }
                    .into());
                }
                rec.approvals.push(decision);
                if gates
                    .shortfall(rec.operation, &rec.path, &rec.approvals)
                    .is_none()
                {
                    rec.state = RequestState::Approved;
                }
            } else {
                rec.refusals.push(decision);
                rec.state = RequestState::Refused;
            }
            if swap_request(sr, Some(raw), &rec).await? {
                return Ok(rec.view(now));
            }
        }
        Err(ApprovalError::Conflict {
            what: id.to_owned(),
        }
        .into())
    }

    /// Request `id` as it stands now (not audited: a request holds no
    /// secret).
    pub async fn get(&self, id: &str) -> Result<ApprovalRequest> {
        let sr = self.handle.strongroom();
        let (rec, _) = read_request(sr, id).await?;
        Ok(rec.view(sr.clock().now()))
    }

    /// Every stored request, oldest first (expired and used ones included
    /// until deleted with [`Approvals::prune`]).
    pub async fn list(&self) -> Result<Vec<ApprovalRequest>> {
        let sr = self.handle.strongroom();
        let now = sr.clock().now();
        let mut out = Vec::new();
        for id in request_ids(sr).await? {
            match read_request(sr, &id).await {
                Ok((rec, _)) => out.push(rec.view(now)),
                // Deleted between the listing and the read.
                Err(Error::Approval(ApprovalError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Deletes the requests that can no longer run (refused, used, or
    /// expired before `older_than` ago); returns how many. Each deletion
    /// is conditioned on the record read, so a request decided meanwhile
    /// stays.
    pub async fn prune(&self, older_than: Duration) -> Result<usize> {
        let sr = self.handle.strongroom();
        let now = sr.clock().now();
        let cutoff = now - older_than;
        let mut n = 0;
        for id in request_ids(sr).await? {
            let Ok((rec, raw)) = read_request(sr, &id).await else {
                continue;
            };
            let done = match rec.state_at(now) {
                RequestState::Refused | RequestState::Used => true,
                RequestState::Expired => rec.expires <= cutoff,
                _ => false,
            };
            if !done {
                continue;
            }
            let key = record::request_key(&id);
            let ops = vec![
                crate::storage::BatchOp::expect(key.clone(), Some(raw)),
                crate::storage::BatchOp::delete(key),
            ];
            match sr.barrier().batch(ops).await {
                Ok(()) => n += 1,
                Err(Error::StorageConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// An id fit for an audit record: the id if well formed, else a marker.
fn sanitized(id: &str) -> String {
    if record::is_request_id(id) {
        id.to_owned()
    } else {
        "invalid".to_owned()
    }
}

/// Refused, used and expired requests can neither be decided nor used.
fn check_live(rec: &RequestRecord, now: crate::clock::Timestamp) -> Result<()> {
    let id = rec.id.clone();
    match rec.state_at(now) {
        RequestState::Refused => Err(ApprovalError::Refused {
            id,
            by: rec
                .refusals
                .first()
                .map(|d| d.principal.clone())
                .unwrap_or_default(),
        }
        .into()),
        RequestState::Used => Err(ApprovalError::Used { id }.into()),
        RequestState::Expired => Err(ApprovalError::Expired {
            id,
            expired_at: rec.expires,
        }
        .into()),
        RequestState::Pending | RequestState::Approved => Ok(()),
    }
}

/// Replaces the store's gates with `gates` if their revision is still
/// `expected_revision` (0 when none were ever set; read it with
/// [`Approvals::gates`]); returns the new revision, or
/// [`ApprovalError::Conflict`] if another process changed them since.
/// Through the door: whoever holds it may change the gates (and bypass
/// them). Audited under `operator`'s principal as `approval_gates_set` on
/// [`GATES_RECORD`](super::GATES_RECORD) (intent, then outcome);
/// `operator`'s policies are not checked (the door grants everything), it
/// names who acted, as in [`declarative::apply`](crate::declarative::apply).
pub async fn set_gates(
    door: &Door,
    operator: &Handle,
    gates: &Gates,
    expected_revision: u64,
) -> Result<u64> {
    let ev = event(
        operator,
        Operation::ApprovalGatesSet,
        &new_request_id()?,
        super::GATES_RECORD,
    );
    audited(
        operator,
        ev,
        record::write_gates(door.strongroom(), gates, expected_revision),
    )
    .await
}

/// The check every gated operation runs, for code outside the library's
/// handles (the configuration apply): `Ok` when no gate holds `operation`
/// on `path` (one barrier read of the gates record); otherwise
/// `handle`'s approval request ([`Handle::with_approval`]) must be an
/// approved request of this principal for exactly this operation and path,
/// and it is used up (compare-and-set to `used`, audited as
/// `approval_use`) before this returns `Ok`. For the store-wide
/// operations `path` may be empty.
///
/// Call it after the caller's own authorisation and before anything
/// changes:
///
/// ```
/// # async fn apply(operator: &strongroom::Handle) -> strongroom::Result<()> {
/// use strongroom::approvals::{self, GatedOperation};
/// approvals::require(operator, GatedOperation::ApplyConfig, "").await?;
/// # Ok(())
/// # }
/// ```
pub async fn require(handle: &Handle, operation: GatedOperation, path: &str) -> Result<()> {
    let path = target(operation, path)?;
    let Some((stored, _)) = read_gates(handle.strongroom()).await? else {
        return Ok(());
    };
    if stored.gates.covering(operation, &path).next().is_none() {
        return Ok(());
    }
    consume(handle, &stored.gates, operation, &path).await
}

/// [`require`] for a canonical secret path (the handle's operations).
pub(crate) async fn require_secret(
    handle: &Handle,
    operation: GatedOperation,
    path: &SecretPath,
) -> Result<()> {
    let Some((stored, _)) = read_gates(handle.strongroom()).await? else {
        return Ok(());
    };
    if !stored.gates.holds_secret(operation, path) {
        return Ok(());
    }
    consume(handle, &stored.gates, operation, path.as_str()).await
}

/// Uses up the handle's approval request for `operation` on `path`, which
/// a gate holds.
async fn consume(h: &Handle, gates: &Gates, operation: GatedOperation, path: &str) -> Result<()> {
    let Some(id) = h.approval_id() else {
        return Err(ApprovalError::Required {
            operation: operation.as_str(),
            path: path.to_owned(),
        }
        .into());
    };
    let ev = event(h, Operation::ApprovalUse, &sanitized(id), path);
    audited(h, ev, async {
        let sr = h.strongroom();
        for _ in 0..ATTEMPTS {
            let (mut rec, raw) = read_request(sr, id).await?;
            let now = sr.clock().now();
            check_live(&rec, now)?;
            let mismatch = |what| {
                Err(ApprovalError::Mismatch {
                    id: id.to_owned(),
                    what,
                }
                .into())
            };
            if rec.operation != operation {
                return mismatch("operation");
            }
            if rec.path != path {
                return mismatch("path");
            }
            if rec.requester != h.principal().name() {
                return mismatch("requester");
            }
            if let Some((approvals, required)) = gates.shortfall(operation, path, &rec.approvals) {
                return Err(ApprovalError::NotApproved {
                    id: id.to_owned(),
                    approvals,
                    required,
                }
                .into());
            }
            rec.state = RequestState::Used;
            rec.used_by = Some(h.principal().name().to_owned());
            if swap_request(sr, Some(raw), &rec).await? {
                return Ok(());
            }
        }
        Err(ApprovalError::Conflict {
            what: id.to_owned(),
        }
        .into())
    })
    .await
}

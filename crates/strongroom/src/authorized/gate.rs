//! The checks and records every authorised handle runs: canonical path,
//! policy, write-ahead intent, outcome. The same order and record shapes as
//! [`Handle`]'s secrets operations.

use crate::audit::{AuditEvent, Operation, Outcome, new_request_id};
use crate::path::SecretPath;
use crate::policy::{Capability, SystemPath};
use crate::{Error, Handle, Result};

/// An error's audit outcome: its kind, never its message.
pub(super) fn error_outcome(e: &Error) -> Outcome {
    Outcome::Error {
        kind: e.kind().to_owned(),
    }
}

/// A new event of `op` for the handle's principal with a fresh request id
/// (no path yet).
pub(super) fn event(h: &Handle, op: Operation) -> Result<AuditEvent> {
    let event = AuditEvent::new(h.principal().name(), op, new_request_id()?);
    crate::metrics::trace_request(&event);
    Ok(event)
}

/// Appends `event`, an operation's outcome, and saves the audit head; any
/// failure is returned and the caller must stop (fail closed).
pub(super) async fn record(h: &Handle, event: AuditEvent) -> Result<()> {
    h.audit_record(event).await.map(|_| ())
}

/// As [`record`], for an intent written before the operation runs.
pub(super) async fn record_intent(h: &Handle, event: AuditEvent) -> Result<()> {
    h.audit_record_intent(event).await.map(|_| ())
}

/// Canonicalises `raw`; an invalid path is audited (as given, outcome
/// error `invalid_path`) and returned as the error.
pub(super) async fn canonical(h: &Handle, event: &AuditEvent, raw: &str) -> Result<SecretPath> {
    match SecretPath::parse(raw) {
        Ok(p) => Ok(p),
        Err(e) => {
            record(h, event.clone().with_outcome(error_outcome(&e))).await?;
            Err(e)
        }
    }
}

/// Checks every capability of `caps` on `path`; the first refusal is
/// audited as `denied` (with `event`'s path and lease id) and returned.
pub(super) async fn check(
    h: &Handle,
    event: &AuditEvent,
    path: &SecretPath,
    caps: &[Capability],
) -> Result<()> {
    for &cap in caps {
        if let Err(denied) = h.principal().authorize(cap, path) {
            record(h, event.clone().with_outcome(Outcome::Denied)).await?;
            return Err(denied.into());
        }
    }
    Ok(())
}

/// [`canonical`] then [`check`].
pub(super) async fn admit(
    h: &Handle,
    event: &AuditEvent,
    raw: &str,
    caps: &[Capability],
) -> Result<SecretPath> {
    let path = canonical(h, event, raw).await?;
    check(h, event, &path, caps).await?;
    Ok(path)
}

/// Checks `cap` on the reserved path `path`; a refusal is audited as
/// `denied` and returned.
pub(super) async fn admit_system(
    h: &Handle,
    event: &AuditEvent,
    path: SystemPath,
    cap: Capability,
) -> Result<()> {
    if let Err(denied) = h.principal().authorize_system(cap, path) {
        record(h, event.clone().with_outcome(Outcome::Denied)).await?;
        return Err(denied.into());
    }
    Ok(())
}

/// Audits the outcome of an operation: `decorate` adds what the result
/// says (a lease id, a version) to an `allowed` record; an error is
/// recorded by kind. The result is handed back only once its record is
/// accepted; otherwise the audit error is returned (for a change: it has
/// happened, see the [module docs](super)).
pub(super) async fn conclude<T>(
    h: &Handle,
    event: AuditEvent,
    result: Result<T>,
    decorate: impl FnOnce(AuditEvent, &T) -> AuditEvent,
) -> Result<T> {
    match result {
        Ok(out) => {
            record(h, decorate(event, &out)).await?;
            Ok(out)
        }
        Err(e) => {
            record(h, event.with_outcome(error_outcome(&e))).await?;
            Err(e)
        }
    }
}

/// A change: the intent recorded before `run` is polled (so nothing
/// happens if it is refused), then the outcome, with the version
/// `version` reads from the result.
pub(super) async fn change<T>(
    h: &Handle,
    event: AuditEvent,
    run: impl Future<Output = Result<T>>,
    version: impl FnOnce(&T) -> Option<u64>,
) -> Result<T> {
    record_intent(h, event.clone()).await?;
    let result = run.await;
    conclude(h, event, result, |ev, out| match version(out) {
        Some(v) => ev.with_version(v),
        None => ev,
    })
    .await
}

//! The background work: the expiry task and the audit of lease events.

use super::*;

/// The background expiry task of [`LeaseManager::spawn`]. Dropping the handle
/// stops the task.
#[derive(Debug)]
pub struct TaskHandle {
    pub(super) handle: Option<tokio::task::JoinHandle<()>>,
}

impl TaskHandle {
    /// Whether the task has stopped.
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the task and waits until it has stopped. A lease it was
    /// processing goes back into the manager's index, so the next
    /// [`LeaseManager::run_due`] picks it up.
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
            // The task never panics; a cancellation error is the expected
            // outcome.
            let _ = h.await;
        }
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

impl LeaseManager {
    /// **Deprecated:** attach the log with [`LeaseManager::with_audit`] (or
    /// [`LeaseConfig::audit`]) instead, which appends each record on the
    /// operation's own path before its effect and fails closed; this task
    /// reads the event channel afterwards and can fall behind, lose events
    /// (it then records only how many) and only log a failed append. Kept
    /// for existing callers; do not use both on one log (records would be
    /// written twice).
    ///
    /// Writes every lease event to `audit` as principal `"lease-manager"`:
    /// issue, renewal, revocation (forced or not) and irrevocable leases
    /// (outcome error `irrevocable`, so an operator is told). Events carry
    /// the lease id and path, never revocation data. If the audit task falls
    /// behind the event stream, the number of events it missed is itself
    /// audited (`lease_events_lost`) so the gap is visible in the trail.
    /// Dropping the returned handle stops the task.
    pub fn audit_events(&self, audit: Arc<crate::audit::AuditLog>) -> TaskHandle {
        use crate::audit::{AuditEvent, Operation, Outcome};
        use tokio::sync::broadcast::error::RecvError;
        let mut rx = self.subscribe();
        let handle = tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(event) => match event_to_audit(event) {
                        Some(e) => e,
                        None => continue,
                    },
                    Err(RecvError::Closed) => return,
                    Err(RecvError::Lagged(missed)) => {
                        AuditEvent::new("lease-manager", Operation::LeaseRevoke, "lease-events")
                            .with_outcome(Outcome::Error {
                                kind: format!("lease_events_lost:{missed}"),
                            })
                    }
                };
                if let Err(e) = audit.append(event).await {
                    tracing::error!(error = %e, "lease audit event could not be written");
                }
            }
        });
        TaskHandle {
            handle: Some(handle),
        }
    }

    /// Starts the background task that runs [`LeaseManager::run_due`]
    /// whenever something is due: it waits on the clock's `sleep_until` for
    /// the next deadline, or on a notification when an earlier lease is
    /// issued. Dropping the handle stops it. Needs a Tokio runtime.
    pub fn spawn(self: Arc<Self>) -> TaskHandle {
        let handle = tokio::spawn(async move { self.run_forever().await });
        TaskHandle {
            handle: Some(handle),
        }
    }

    pub(super) async fn run_forever(&self) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = match self.run_due().await {
                Ok(_) => self.next_wake(),
                Err(e) => {
                    tracing::warn!(error = %e, "lease expiry run failed; retrying");
                    self.clock.now() + self.config.retry.base
                }
            };
            if wake_at <= self.clock.now() {
                // Due work appeared while running (or the horizon needs
                // moving): go round again, yielding to other tasks first.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = self.clock.sleep_until(wake_at) => {}
                () = &mut notified => {}
            }
        }
    }
}

/// The audit form of a lease event (`None` for events that are not audited).
fn event_to_audit(event: LeaseEvent) -> Option<crate::audit::AuditEvent> {
    use crate::audit::{AuditEvent, Operation, Outcome};
    let (op, id, path, outcome) = match event {
        LeaseEvent::Issued { id, path, .. } => (Operation::LeaseIssue, id, path, Outcome::Allowed),
        LeaseEvent::Renewed { id, path, .. } => (Operation::LeaseRenew, id, path, Outcome::Allowed),
        LeaseEvent::Revoked { id, path, .. } => {
            (Operation::LeaseRevoke, id, path, Outcome::Allowed)
        }
        LeaseEvent::Irrevocable { id, path, .. } => (
            Operation::LeaseRevoke,
            id,
            path,
            Outcome::Error {
                kind: "irrevocable".into(),
            },
        ),
        LeaseEvent::ExpiringSoon { .. } => return None,
    };
    let text = id.to_string();
    Some(
        AuditEvent::new("lease-manager", op, text.clone())
            .with_path(path)
            .with_lease_id(text)
            .with_outcome(outcome),
    )
}

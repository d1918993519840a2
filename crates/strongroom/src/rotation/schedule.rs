//! The background schedule's handle, and rotation steps in the audit log.

use super::*;

/// The handle of a schedule task; dropping it stops the task.
#[derive(Debug)]
pub struct ScheduleHandle {
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl ScheduleHandle {
    /// Whether the task has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for ScheduleHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The audit log records every rotation step (principal `"rotation"`,
/// operation `rotate`, path `rot/<credential>`, the version, and a request
/// id naming the step), so `RotationOptions { audit: Some(log), .. }` puts
/// rotations in the same tamper-evident trail as reads and writes. A step
/// whose record cannot be written does not run.
#[async_trait::async_trait]
impl RotationAudit for crate::audit::AuditLog {
    async fn record(&self, event: &RotationEvent) -> std::result::Result<(), String> {
        use crate::audit::{AuditEvent, Operation, Outcome};
        let outcome = match &event.outcome {
            StepOutcome::Started | StepOutcome::Completed => Outcome::Allowed,
            StepOutcome::Retrying { .. } => Outcome::Error {
                kind: "rotation_retrying".into(),
            },
            StepOutcome::Failed { .. } => Outcome::Error {
                kind: "rotation_failed".into(),
            },
        };
        let phase = match &event.outcome {
            StepOutcome::Started => "started",
            StepOutcome::Completed => "completed",
            StepOutcome::Retrying { .. } => "retrying",
            StepOutcome::Failed { .. } => "failed",
        };
        let request_id = format!(
            "rotation:{}:v{}:{:?}:{phase}",
            event.credential, event.version, event.step
        );
        self.append(
            AuditEvent::new("rotation", Operation::Rotate, request_id)
                .with_path(format!("rot/{}", event.credential))
                .with_version(event.version)
                .with_outcome(outcome),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

//! The tamper-evident audit trail (being built; see the issue tracker).

/// Errors of the tamper-evident audit trail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {}

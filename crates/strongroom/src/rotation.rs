//! The dual-credential rotation (being built; see the issue tracker).

/// Errors of the dual-credential rotation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {}

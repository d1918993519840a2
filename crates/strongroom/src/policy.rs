//! The path policies and principals (being built; see the issue tracker).

/// Errors of the path policies and principals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {}

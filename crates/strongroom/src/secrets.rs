//! The versioned secrets store (being built; see the issue tracker).

/// Errors of the versioned secrets store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {}

//! The leases (being built; see the issue tracker).

/// Errors of the leases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {}

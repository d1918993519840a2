//! The Shamir secret sharing over GF(256) (being built; see the issue tracker).

/// Errors of the Shamir secret sharing over GF(256).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShamirError {}

//! # strongroom-pki
//!
//! An internal certificate authority for Strongroom.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod ca;
mod crl;
mod engine;
mod error;
mod issue;
mod record;
mod resolver;
mod role;
mod verifier;

pub use ca::{CaCertificate, CaSpec};
pub use crl::Crl;
pub use engine::{Pki, PkiOptions};
pub use error::{PkiError, Result};
pub use issue::{IssueRequest, IssuedCertificate, Serial};
pub use record::CaKind;
pub use resolver::{CertResolver, RenewalTask};
pub use role::{KeyType, Role, Usage};
pub use verifier::{ReloadableClientVerifier, TrustConfig};

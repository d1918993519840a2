//! # strongroom-pki
//!
//! An internal certificate authority on a Strongroom store: a root CA (or
//! an intermediate signed by another mount's CA in the same store) whose
//! private key is generated inside the library and sealed in the store,
//! roles that say which certificates may be issued, every certificate a
//! [lease](strongroom::lease) that revokes it, a signed CRL, and rustls
//! resolvers that swap in renewed certificates without a restart.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::audit::MemorySink;
//! use strongroom::clock::{ManualClock, Timestamp};
//! use strongroom::lease::LeaseConfig;
//! use strongroom::policy::{Policy, Principal};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Options, SecretBytes, Strongroom};
//! use strongroom_pki::{CaSpec, IssueRequest, KeyType, Pki, Role, TrustConfig};
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
//! let options = Options { clock: clock.clone(), ..Options::default() };
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, options).await?;
//! let audit = Arc::new(sr.open_audit_log(vec![Arc::new(MemorySink::new())], None).await?);
//!
//! // Once per process: the mount over the store, its revoker registered
//! // with the lease manager.
//! let door = sr.dangerous("pki-setup", &audit).await?;
//! let manager = Arc::new(door.lease_manager(clock.clone(), LeaseConfig::default())?);
//! let pki = Pki::new(&door, manager, "internal")?;
//!
//! // An operator creates the CA and a role (`sudo` on pki/internal/*).
//! let ops = Policy::from_toml_str(r#"
//!     name = "pki-ops"
//!     [[path]]
//!     pattern = "pki/internal/*"
//!     capabilities = ["sudo", "read", "lease"]
//! "#)?;
//! let ops = sr.as_principal(Principal::new("ops", [&ops]), audit.clone());
//! let ca = pki.create_root(&ops, CaSpec::new("Internal Root").key_type(KeyType::EcdsaP256)).await?;
//! let role = Role::new(["*.svc.example.com"]).ttl(Duration::from_secs(3600), Duration::from_secs(86_400));
//! pki.put_role(&ops, "web", role).await?;
//!
//! // A service takes certificates from role `web` (`lease` on its path).
//! let app = Policy::from_toml_str(r#"
//!     name = "app"
//!     [[path]]
//!     pattern = "pki/internal/issue/web"
//!     capabilities = ["lease"]
//! "#)?;
//! let app = sr.as_principal(Principal::new("app", [&app]), audit.clone());
//! let cert = pki.issue(&app, "web", IssueRequest::new(["api.svc.example.com"])).await?;
//! assert_eq!(cert.not_after, cert.not_before + Duration::from_secs(3600));
//! assert!(!cert.private_key().is_empty()); // PKCS#8, wiped on drop
//! // Outside the role: refused (and audited).
//! let refused = pki.issue(&app, "web", IssueRequest::new(["db.example.com"])).await;
//! assert_eq!(refused.unwrap_err().kind(), "pki_name_not_allowed");
//!
//! // Revoking the certificate's lease puts it on the next CRL.
//! pki.revoke(&ops, &cert.serial).await?;
//! let crl = pki.crl(&ops).await?;
//! assert_eq!(crl.serials, vec![cert.serial.clone()]);
//!
//! // Peers trust the root and check the CRL.
//! let client_verifier = TrustConfig::new(&ca).with_crl(&crl).client_verifier()?;
//! # let _ = client_verifier;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Where things live
//!
//! | record | key | sealed |
//! | --- | --- | --- |
//! | the CA's certificate, chain and key type | `pki/<mount>/ca` | barrier record |
//! | the CA's private key (PKCS#8) | `s/pki/<mount>/ca-key` | sealed for context `pki/<mount>/ca-key`, version 1 |
//! | a role | `pki/<mount>/role/<name>` | barrier record |
//! | a live certificate (serial, lease id, expiry, DER) | `pki/<mount>/cert/<serial-hex>` | barrier record |
//! | the revoked serials not yet expired | `pki/<mount>/revoked` | barrier record |
//! | the last CRL signed | `pki/<mount>/crl` | barrier record |
//!
//! The CA's private key is never returned by any call; only its
//! certificate is. A leaf's private key is generated in the process,
//! returned once as [`strongroom::SecretBytes`] inside
//! [`IssuedCertificate`] (whose `Debug` redacts it), and never stored,
//! logged or audited.
//!
//! # Authorisation and audit
//!
//! Every operation takes the [`Handle`](strongroom::Handle) of the
//! principal it acts for; see [`Pki`] for the capability and path of each.
//! Refusals by policy are audited as `denied`; refusals by a role are
//! audited as errors (kind `invalid_argument`: the core's audit outcomes
//! have no kinds of this crate) and returned as typed [`PkiError`]s.
//!
//! # Revocation and expiry
//!
//! Each certificate is a lease on `pki/<mount>/issue/<role>` (engine
//! `pki-<mount>`, not renewable) that ends when the certificate does.
//! Revoking the lease ([`Pki::revoke`], or the lease handle) adds the
//! serial to the mount's revoked set; [`Pki::crl`] signs a CRL with the
//! next CRL number whenever that set changed, a serial on it expired, or
//! half the CRL's lifetime passed. A serial is left out of every CRL
//! signed after its certificate expired, and dropped from the set then.
//! When a lease expires, nothing is added: expiry is the backstop. A CRL only protects peers that load it: see [`TrustConfig`]
//! and [`ReloadableClientVerifier`].
//!
//! # Limitations
//!
//! - Key types are Ed25519 and ECDSA P-256. RSA is not offered: `rcgen`
//!   generates RSA keys only with its `aws-lc-rs` backend, and this crate
//!   builds on `ring`.
//! - The CA key cannot be held in an HSM (PKCS#11) yet: it is unsealed
//!   into process memory on first use and kept there.
//! - `rcgen`'s and `ring`'s key types do not wipe their memory when
//!   dropped; neither does rustls's `PrivateKeyDer` from
//!   [`IssuedCertificate::private_key_der`]. Only the
//!   [`SecretBytes`](strongroom::SecretBytes) copies are wiped.
//! - No OCSP, no CRL distribution point extension, no CSR signing, no
//!   name constraints; CRLs are only reachable through [`Pki::crl`].
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

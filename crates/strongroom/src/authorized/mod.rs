//! The authorised facade beyond secrets: leases, rotation, key
//! administration and the audit trail, each reached through a principal's
//! [`Handle`](crate::Handle), checked against its policies and audited.
//!
//! | handle | from | guards | capabilities |
//! | --- | --- | --- | --- |
//! | [`LeaseHandle`] | [`Handle::leases`](crate::Handle::leases) | a [`LeaseManager`](crate::lease::LeaseManager) | `lease` on the lease's path; `sudo` too for forced and prefix revocation |
//! | [`RotationHandle`] | [`Handle::rotation`](crate::Handle::rotation) | a [`RotationEngine`](crate::rotation::RotationEngine) | `rotate` on the credential's name; `read` for its staged secrets and status |
//! | [`SigningHandle`] | [`Handle::signing`](crate::Handle::signing) | the [`SigningKeys`](crate::signing::SigningKeys) | `sign` on the key's name to sign; `create`, `rotate`, `update` to manage it; `read` to verify and read public keys |
//! | [`KeyAdmin`] | [`Handle::key_admin`](crate::Handle::key_admin) | the store's keyring | `sudo` on `sys/keyring` (`read` to list key versions) |
//! | [`AuditTrail`] | [`Handle::audit_trail`](crate::Handle::audit_trail) | the audit trail | `read` on `sys/audit` |
//! | sealed records | [`Handle::put_sealed`](crate::Handle::put_sealed), [`Handle::get_sealed`](crate::Handle::get_sealed) | the store's sealed records | `create` and `update` to store, `read` to open, on the context's path |
//!
//! `sys/keyring` and `sys/audit` are reserved paths ([`SystemPath`]): a
//! policy grants them only with a rule that names them (`sys/keyring`,
//! `sys/*`), never through a wildcard such as `*` (see "Reserved paths" in
//! [`policy`](crate::policy)).
//!
//! # What every call does
//!
//! In the same order as the [`Handle`](crate::Handle)'s secrets operations, with the same
//! audit log (and the same saved chain head):
//!
//! 1. **Find the path.** For calls by lease id, the lease's record is read
//!    first and the path that issued it is the one checked, so knowing a
//!    lease id gives no power over it. An invalid path or a missing lease
//!    is audited as an error and returned.
//! 2. **Check the policy.** A refusal is audited with outcome `denied`
//!    and fails with [`Error::Policy`](crate::Error::Policy)`(`[`PolicyError::Denied`](crate::policy::PolicyError::Denied)`)`.
//! 3. **Write the intent** (outcome `allowed`) *before* any effect: before
//!    a lease is issued, renewed or revoked, before a rotation step, before
//!    the keyring changes, before the trail is read. If no sink accepts
//!    it, nothing happens and the call returns the audit error (fail
//!    closed).
//! 4. **Run the operation**, then **record the outcome** under the same
//!    request id: `allowed` with what it produced (the lease id, the
//!    version promoted or created), or `error` with the error's kind. If
//!    this record is refused, the change *has happened* but the call
//!    returns the audit error: treat it as "outcome unknown". A value read
//!    (staged rotation secrets) is handed out only after its record is
//!    accepted.
//!
//! Records never hold secrets: secrets written or read appear only as
//! keyed HMACs ([`AuditLog::hmac`](crate::audit::AuditLog::hmac)), and
//! lease records carry the id and path, never revocation data.
//!
//! Expiry needs no caller: attach the same log to the manager
//! ([`LeaseManager::with_audit`](crate::lease::LeaseManager::with_audit)),
//! which appends its own records (principal `lease-manager`) before each
//! issue, renewal, revocation and expiry, so none is lost.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::audit::{MemorySink, Operation, Outcome};
//! use strongroom::clock::{ManualClock, Timestamp};
//! use strongroom::lease::{Lease, LeaseConfig, LeaseManager, LeaseRequest, Revoker};
//! use strongroom::policy::{Policy, Principal};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Options, SecretBytes, Strongroom};
//!
//! #[derive(Debug)]
//! struct Noop;
//! #[async_trait::async_trait]
//! impl Revoker for Noop {
//!     async fn revoke(&self, _lease: &Lease) -> strongroom::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
//! let options = Options { clock: clock.clone(), ..Options::default() };
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, options).await?;
//! let sink = Arc::new(MemorySink::new());
//! let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await?);
//! let manager = Arc::new(
//!     sr.dangerous("setup", &audit).await?
//!         .lease_manager(clock.clone(), LeaseConfig::default())?
//!         .with_audit(audit.clone()),
//! );
//! manager.register_revoker("db", Arc::new(Noop));
//!
//! let policy = Policy::from_toml_str(r#"
//!     name = "app"
//!     [[path]]
//!     pattern = "db/creds/app"
//!     capabilities = ["lease"]
//!     [[path]]
//!     pattern = "sys/keyring"
//!     capabilities = ["read"]
//! "#)?;
//! let app = sr.as_principal(Principal::new("app", [&policy]), audit.clone());
//! let leases = app.leases(&manager);
//!
//! let min = Duration::from_secs(60);
//! let lease = leases.issue(LeaseRequest::new("db/creds/app", "db", min, 10 * min)).await?;
//! leases.renew(lease.id(), min).await?;
//! // another path, and forced revocation (no `sudo`): denied and audited
//! let other = LeaseRequest::new("db/creds/admin", "db", min, min);
//! assert_eq!(leases.issue(other).await.unwrap_err().kind(), "policy_denied");
//! assert_eq!(leases.force_revoke(lease.id()).await.unwrap_err().kind(), "policy_denied");
//! // listing key versions needs `read` on sys/keyring; rotating needs `sudo`
//! assert_eq!(app.key_admin().keys().await?.len(), 1);
//! assert_eq!(app.key_admin().rotate().await.unwrap_err().kind(), "policy_denied");
//! assert_eq!(sr.keys()?.len(), 1);
//!
//! let records = sink.records()?;
//! let denied = records.iter().filter(|r| r.event.outcome == Outcome::Denied).count();
//! assert_eq!(denied, 3);
//! // the manager's own write-ahead record of the issue, besides the principal's
//! assert!(records.iter().any(|r| r.event.principal == "lease-manager"
//!     && r.event.operation == Operation::LeaseIssue));
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```

mod audit;
mod gate;
mod keys;
mod leases;
mod rotation;
mod sealed;
mod signing;
#[cfg(test)]
mod tests;

pub use audit::AuditTrail;
pub use keys::KeyAdmin;
pub use leases::LeaseHandle;
pub use rotation::{RotationHandle, STAGED_HMAC_FIELDS};
pub use signing::SigningHandle;

pub use crate::policy::SystemPath;

/// The same checks and records for operations built outside this crate
/// (dynamic credentials in `strongroom-sqlx`, say), so they can be offered
/// through a principal's handle too.
impl crate::Handle {
    /// Checks every capability of `caps` on `path` for this principal and
    /// writes the intent of `op` there (outcome `allowed`), in the order of
    /// the [module docs](self): an invalid path or a refusal is audited and
    /// returned (`denied`, [`PolicyError::Denied`](crate::policy::PolicyError::Denied)),
    /// and if no sink accepts the intent the call fails and nothing may
    /// happen (fail closed). Run the operation, then hand its result to
    /// `Handle::conclude_external` with the returned event.
    pub async fn admit_external(
        &self,
        op: crate::audit::Operation,
        path: &str,
        caps: &[crate::policy::Capability],
    ) -> crate::Result<crate::audit::AuditEvent> {
        let event = gate::event(self, op)?.with_path(path);
        gate::admit(self, &event, path, caps).await?;
        gate::record_intent(self, event.clone()).await?;
        Ok(event)
    }

    /// Records how an operation admitted by `Handle::admit_external`
    /// ended (`decorate` adds what a success produced, e.g. a lease id) and
    /// hands the result back only once that record is accepted; otherwise
    /// the audit error (the operation *has happened*: treat it as "outcome
    /// unknown").
    pub async fn conclude_external<T>(
        &self,
        event: crate::audit::AuditEvent,
        result: crate::Result<T>,
        decorate: impl FnOnce(crate::audit::AuditEvent, &T) -> crate::audit::AuditEvent,
    ) -> crate::Result<T> {
        gate::conclude(self, event, result, decorate).await
    }
}

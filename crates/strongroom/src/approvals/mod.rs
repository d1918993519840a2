//! Approval gates: operations that run only once N of M named principals
//! approved a request for them.
//!
//! A **gate** holds one [`GatedOperation`] on the paths a
//! [`PathPattern`](crate::policy::PathPattern) matches (the store-wide
//! operations have no pattern) until `required` (N) distinct principals of
//! its `approvers` (M) approved:
//!
//! | operation | what it holds | path |
//! |---|---|---|
//! | `destroy` | [`Handle::destroy`](crate::Handle::destroy), [`Handle::delete_metadata`](crate::Handle::delete_metadata) | the secret path |
//! | `sensitive_read` | [`Handle::read`](crate::Handle::read), [`Handle::read_version`](crate::Handle::read_version): a secret is sensitive when such a gate's pattern matches its path | the secret path |
//! | `root_key_rotate` | [`KeyAdmin::rotate_root_key`](crate::authorized::KeyAdmin::rotate_root_key) | `sys/keyring` |
//! | `key_destroy` | [`KeyAdmin::destroy`](crate::authorized::KeyAdmin::destroy) (any version) | `sys/keyring` |
//! | `apply_config` | whatever calls [`require`] (the configuration apply) | `sys/declared` |
//!
//! The gates are one barrier record ([`GATES_RECORD`], sealed under the
//! keyring like every record of the library), replaced by [`set_gates`]
//! through the [door](crate::dangerous) with a compare-and-set on its
//! revision, and read by every gated call (one barrier read; without a
//! gates record that read finds nothing and the call goes on), so every
//! process sharing the store holds the same gates.
//!
//! A **request** ([`Approvals::request`]) asks for one operation on one
//! path, with a reason and a time to live; it gets a random id and is
//! stored at `sys/approvals/req/<id>`. Every change of a request is a
//! compare-and-set on the record read, retried on a conflict, so two
//! processes approving at once both count. The rules:
//!
//! - only principals a gate holding the request's operation and path
//!   names may approve or refuse ([`ApprovalError::NotApprover`]);
//! - the requester cannot approve its own request
//!   ([`ApprovalError::SelfApproval`]), and each approver counts once
//!   ([`ApprovalError::AlreadyApproved`]);
//! - one refusal ends the request for good ([`ApprovalError::Refused`]);
//! - once every gate holding it has its N approvals, the request is
//!   `approved`; past its expiry (the store's [`Clock`](crate::clock::Clock))
//!   it is `expired` and can be neither approved nor used.
//!
//! **Running it once.** Without an approved request, a gated call fails
//! with [`ApprovalError::Required`] and does nothing. With one, given by
//! [`Handle::with_approval`](crate::Handle::with_approval), the call
//! checks that the request was made by this principal for exactly this
//! operation and path, that the gates as stored now are satisfied, and
//! then marks it `used` with a compare-and-set **before** the operation
//! runs: of any number of calls racing with the same id, in one process or
//! many, exactly one proceeds; the others fail with
//! [`ApprovalError::Used`]. A request used by a call that then fails (for
//! a policy denial checked earlier, nothing is used; for a store error
//! after it, the request is spent) is not given back.
//!
//! **Audit.** Asking, approving, refusing, using and changing the gates
//! are audited under the acting principal with the request's path:
//! operations `approval_request`, `approval_approve`, `approval_refuse`,
//! `approval_use`, `approval_gates_set`, each as an intent before the
//! change and its outcome after it, with the approval request's id as the
//! record's request id. The reason is never written to the audit trail.
//!
//! **What gates do not stop**: whoever holds the [door](crate::dangerous)
//! (and so the unchecked store, its key administration methods and
//! [`set_gates`]) bypasses them; see `SECURITY.md`.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strongroom::approvals::{self, ApprovalError, GatedOperation, Gates, RequestState};
//! use strongroom::audit::MemorySink;
//! use strongroom::policy::{Policy, Principal};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Error, Options, SecretBytes, Strongroom};
//!
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//! let audit = Arc::new(sr.open_audit_log(vec![Arc::new(MemorySink::new())], None).await?);
//! let door = sr.dangerous("setup", &audit).await?;
//!
//! // Destroying anything under prod/ takes 2 of alice, bob and carol.
//! let gates = Gates::from_toml_str(r#"
//!     [[gate]]
//!     operation = "destroy"
//!     pattern = "prod/*"
//!     required = 2
//!     approvers = ["alice", "bob", "carol"]
//! "#)?;
//! approvals::set_gates(&door, door.handle(), &gates, 0).await?;
//!
//! let admin = Policy::from_toml_str(r#"
//!     name = "admin"
//!     [[path]]
//!     pattern = "prod/*"
//!     capabilities = ["create", "read", "delete"]
//! "#)?;
//! let as_ = |name: &str| sr.as_principal(Principal::new(name, [&admin]), audit.clone());
//! let (ops, alice, bob) = (as_("ops"), as_("alice"), as_("bob"));
//! ops.put("prod/db", b"pw", None).await?;
//!
//! // Without an approved request: refused, nothing destroyed.
//! let err = ops.destroy("prod/db", &[1]).await.unwrap_err();
//! assert!(matches!(err, Error::Approval(ApprovalError::Required { .. })));
//!
//! let req = ops.approvals()
//!     .request(GatedOperation::Destroy, "prod/db", "decommission", Duration::from_secs(3600))
//!     .await?;
//! alice.approvals().approve(&req.id).await?;
//! let req = bob.approvals().approve(&req.id).await?;
//! assert_eq!(req.state, RequestState::Approved);
//!
//! // Runs once.
//! assert_eq!(ops.with_approval(&req.id).destroy("prod/db", &[1]).await?, [1]);
//! let again = ops.with_approval(&req.id).destroy("prod/db", &[1]).await.unwrap_err();
//! assert_eq!(again.code(), "approval.used");
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```

mod engine;
mod error;
mod gates;
mod model;
mod record;
#[cfg(test)]
mod tests;

pub(crate) use engine::require_secret;
pub use engine::{Approvals, MAX_REASON_LEN, MAX_TTL, require, set_gates};
pub use error::ApprovalError;
pub use gates::{Gate, Gates, MAX_APPROVERS, MAX_GATES, MAX_GATES_FILE_LEN};
pub use model::{
    APPLY_TARGET, ApprovalRequest, Decision, GatedOperation, KEYRING_TARGET, RequestState,
};
pub use record::{APPROVALS_FORMAT, GATES_RECORD, REQUEST_PREFIX, StoredGates};

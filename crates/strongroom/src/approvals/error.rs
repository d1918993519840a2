//! The approval errors.

use crate::clock::Timestamp;

/// Errors of approval gates and requests. None of them quotes a request's
/// reason or a value from a gates file; they name operations, paths,
/// request ids, principals and counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// A gate covers the operation on this path and no approved request
    /// was given: nothing was done.
    #[error(
        "{operation} on {path:?} needs an approved request: request one (approvals().request) and run it with with_approval"
    )]
    Required {
        /// The gated operation (`destroy`, `sensitive_read`, ...).
        operation: &'static str,
        /// The path it was asked for.
        path: String,
    },
    /// No request has this id.
    #[error("no approval request with id {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The request's time to live ran out before it was used.
    #[error("approval request {id} expired at {expired_at}")]
    Expired {
        /// The request.
        id: String,
        /// When it expired.
        expired_at: Timestamp,
    },
    /// An approver refused the request: it can never run.
    #[error("approval request {id} was refused by {by:?}")]
    Refused {
        /// The request.
        id: String,
        /// The approver that refused it.
        by: String,
    },
    /// The request does not yet have the approvals its gates need.
    #[error("approval request {id} has {approvals} of the {required} approvals it needs")]
    NotApproved {
        /// The request.
        id: String,
        /// Distinct approvals that count.
        approvals: u64,
        /// Approvals needed.
        required: u64,
    },
    /// The request was approved and has run already: it runs once.
    #[error("approval request {id} has been used already; an approved request runs once")]
    Used {
        /// The request.
        id: String,
    },
    /// The principal is not named as an approver by any gate covering the
    /// request's operation and path.
    #[error("{principal:?} is not an approver of request {id}")]
    NotApprover {
        /// The request.
        id: String,
        /// Who tried to approve or refuse.
        principal: String,
    },
    /// The requester tried to approve its own request.
    #[error("{principal:?} asked for request {id} and cannot approve it")]
    SelfApproval {
        /// The request.
        id: String,
        /// The requester.
        principal: String,
    },
    /// The principal has approved this request already (one approval per
    /// principal).
    #[error("{principal:?} has already approved request {id}")]
    AlreadyApproved {
        /// The request.
        id: String,
        /// The approver.
        principal: String,
    },
    /// The request was made for another operation, path or requester than
    /// the one trying to use it.
    #[error("approval request {id} does not cover this call: {what} differs")]
    Mismatch {
        /// The request.
        id: String,
        /// What differs: `operation`, `path` or `requester`.
        what: &'static str,
    },
    /// No gate covers the operation on this path: there is nothing to
    /// request.
    #[error("no approval gate covers {operation} on {path:?}; nothing to request")]
    NoGate {
        /// The operation.
        operation: &'static str,
        /// The path.
        path: String,
    },
    /// A gates file or gate list is not valid.
    #[error("invalid approval gates{}: {reason}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    InvalidGates {
        /// The 1-based line in the file, when parsed from TOML.
        line: Option<u64>,
        /// What is wrong (never a value from the file).
        reason: String,
    },
    /// A request's arguments cannot be used (an empty or overlong reason,
    /// a zero or overlong time to live, a path the operation cannot have).
    #[error("invalid approval request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// A record changed concurrently more often than retried, or the
    /// gates changed since the revision the caller read.
    #[error("{what} changed concurrently; re-read and retry")]
    Conflict {
        /// The record (`gates` or the request id).
        what: String,
    },
}

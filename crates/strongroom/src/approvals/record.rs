//! The stored records: the gates at [`GATES_RECORD`] and each request at
//! [`REQUEST_PREFIX`]`<id>`, JSON sealed by the barrier, every change a
//! compare-and-set on the bytes read.

use serde::{Deserialize, Serialize};

use super::gates::{GateSpec, Gates};
use super::{ApprovalError, ApprovalRequest, Decision, GatedOperation, RequestState};
use crate::clock::Timestamp;
use crate::storage::BatchOp;
use crate::{Error, Result, Strongroom};

/// The storage key of the gates (a barrier record: sealed under the
/// keyring and bound to this key).
pub const GATES_RECORD: &str = "sys/approvals/gates";
/// The storage key prefix of requests: `sys/approvals/req/<id>`.
pub const REQUEST_PREFIX: &str = "sys/approvals/req/";
/// Format version of both records.
pub const APPROVALS_FORMAT: u8 = 1;

/// The gates record as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatesRecord {
    format: u8,
    revision: u64,
    gates: Vec<GateSpec>,
}

/// The gates read from the store with their revision (0: never set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredGates {
    /// 0 if gates were never set, then one more per change.
    pub revision: u64,
    /// The gates.
    pub gates: Gates,
}

fn corrupt(key: &str, reason: impl Into<String>) -> Error {
    Error::corrupt(key, reason)
}

/// Reads the gates: `None` without a gates record (one barrier read).
pub(super) async fn read_gates(sr: &Strongroom) -> Result<Option<(StoredGates, Vec<u8>)>> {
    let Some(raw) = sr.barrier().get(GATES_RECORD).await? else {
        return Ok(None);
    };
    let rec: GatesRecord =
        serde_json::from_slice(&raw).map_err(|e| corrupt(GATES_RECORD, e.to_string()))?;
    if rec.format != APPROVALS_FORMAT {
        return Err(corrupt(
            GATES_RECORD,
            format!("unsupported format {}", rec.format),
        ));
    }
    let gates = rec
        .gates
        .iter()
        .map(GateSpec::to_gate)
        .collect::<std::result::Result<Vec<_>, _>>()
        .and_then(Gates::new)
        .map_err(|e| corrupt(GATES_RECORD, e.to_string()))?;
    Ok(Some((
        StoredGates {
            revision: rec.revision,
            gates,
        },
        raw,
    )))
}

/// Replaces the gates if their revision is still `expected` (0: none
/// set); returns the new revision.
pub(super) async fn write_gates(sr: &Strongroom, gates: &Gates, expected: u64) -> Result<u64> {
    let current = read_gates(sr).await?;
    let (revision, raw) = match current {
        Some((g, raw)) => (g.revision, Some(raw)),
        None => (0, None),
    };
    let conflict = || {
        Error::from(ApprovalError::Conflict {
            what: "the approval gates".into(),
        })
    };
    if revision != expected {
        return Err(conflict());
    }
    let next = revision.checked_add(1).ok_or_else(conflict)?;
    let encoded = serde_json::to_vec(&GatesRecord {
        format: APPROVALS_FORMAT,
        revision: next,
        gates: gates.to_specs(),
    })
    .map_err(|e| Error::InvalidArgument(format!("gates do not encode: {e}")))?;
    let ops = vec![
        BatchOp::expect(GATES_RECORD, raw),
        BatchOp::put(GATES_RECORD, encoded),
    ];
    match sr.barrier().batch(ops).await {
        Ok(()) => Ok(next),
        Err(Error::StorageConflict { .. }) => Err(conflict()),
        Err(e) => Err(e),
    }
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestRecord {
    pub(super) format: u8,
    pub(super) id: String,
    pub(super) operation: GatedOperation,
    pub(super) path: String,
    pub(super) requester: String,
    pub(super) reason: String,
    pub(super) created: Timestamp,
    pub(super) expires: Timestamp,
    /// `pending`, `approved`, `refused` or `used` (expiry is computed).
    pub(super) state: RequestState,
    #[serde(default)]
    pub(super) approvals: Vec<Decision>,
    #[serde(default)]
    pub(super) refusals: Vec<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) used_by: Option<String>,
}

impl RequestRecord {
    /// The request as of `now` (pending or approved past expiry reads as
    /// expired).
    pub(super) fn view(&self, now: Timestamp) -> ApprovalRequest {
        ApprovalRequest {
            id: self.id.clone(),
            operation: self.operation,
            path: self.path.clone(),
            requester: self.requester.clone(),
            reason: self.reason.clone(),
            created: self.created,
            expires: self.expires,
            state: self.state_at(now),
            approvals: self.approvals.clone(),
            refusals: self.refusals.clone(),
            used_by: self.used_by.clone(),
        }
    }

    pub(super) fn state_at(&self, now: Timestamp) -> RequestState {
        match self.state {
            RequestState::Pending | RequestState::Approved if now >= self.expires => {
                RequestState::Expired
            }
            s => s,
        }
    }

    pub(super) fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::InvalidArgument(format!("approval request does not encode: {e}")))
    }
}

/// Whether `id` has the form of a request id (32 lower-case hex digits),
/// so that nothing else reaches a storage key.
pub(super) fn is_request_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn request_key(id: &str) -> String {
    format!("{REQUEST_PREFIX}{id}")
}

/// Reads request `id` and its plaintext; [`ApprovalError::NotFound`] if
/// there is none (or the id is malformed).
pub(super) async fn read_request(sr: &Strongroom, id: &str) -> Result<(RequestRecord, Vec<u8>)> {
    let not_found = || Error::from(ApprovalError::NotFound { id: id.to_owned() });
    if !is_request_id(id) {
        return Err(not_found());
    }
    let key = request_key(id);
    let raw = sr.barrier().get(&key).await?.ok_or_else(not_found)?;
    let rec: RequestRecord =
        serde_json::from_slice(&raw).map_err(|e| corrupt(&key, e.to_string()))?;
    if rec.format != APPROVALS_FORMAT || rec.id != id {
        return Err(corrupt(&key, "unsupported format or another request's id"));
    }
    Ok((rec, raw))
}

/// Writes `rec` if request `id` still holds `read` (`None`: creates it);
/// `false` if it changed in between (the caller re-reads and retries).
pub(super) async fn swap_request(
    sr: &Strongroom,
    read: Option<Vec<u8>>,
    rec: &RequestRecord,
) -> Result<bool> {
    let key = request_key(&rec.id);
    let ops = vec![
        BatchOp::expect(key.clone(), read),
        BatchOp::put(key, rec.encode()?),
    ];
    match sr.barrier().batch(ops).await {
        Ok(()) => Ok(true),
        Err(Error::StorageConflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every request id stored (one listing of the request prefix).
pub(super) async fn request_ids(sr: &Strongroom) -> Result<Vec<String>> {
    let keys = sr.barrier().list(REQUEST_PREFIX).await?;
    Ok(keys
        .into_iter()
        .filter_map(|k| k.strip_prefix(REQUEST_PREFIX).map(str::to_owned))
        .filter(|id| is_request_id(id))
        .collect())
}

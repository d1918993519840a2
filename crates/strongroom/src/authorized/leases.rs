//! Leases as a principal: [`LeaseHandle`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::gate::{self, admit, canonical, change, check, conclude, record};
use crate::audit::{AuditEvent, Operation, Outcome};
use crate::lease::{Lease, LeaseId, LeaseManager, LeaseRequest, PrefixRevocation};
use crate::path::SecretPath;
use crate::policy::Capability;
use crate::{Handle, Result};

/// A principal's view of a [`LeaseManager`]: every call checked against
/// its policies and audited (see the [module docs](super)). Obtain one with
/// [`Handle::leases`]. Cheap to clone.
///
/// | method | capability | audit operation |
/// | --- | --- | --- |
/// | [`issue`](Self::issue), [`issue_batch`](Self::issue_batch) | `lease` on each request's path | `lease_issue` |
/// | [`renew`](Self::renew) | `lease` on the lease's path | `lease_renew` |
/// | [`revoke`](Self::revoke) | `lease` on the lease's path | `lease_revoke` |
/// | [`force_revoke`](Self::force_revoke) | `lease` and `sudo` on the lease's path | `lease_revoke_force` |
/// | [`revoke_prefix`](Self::revoke_prefix) | `lease` and `sudo` on the prefix, and `lease` on every lease under it | `lease_revoke_prefix` |
/// | [`lookup`](Self::lookup) | `lease` on the lease's path | `read_metadata` |
/// | [`list`](Self::list) | `list` on the prefix | `list` |
///
/// A lease's path is the one that issued it, as its record says; calls by
/// lease id read the record first and check that path, so a principal
/// cannot act on leases outside its paths by knowing their ids.
#[derive(Clone)]
pub struct LeaseHandle {
    handle: Handle,
    manager: Arc<LeaseManager>,
}

impl fmt::Debug for LeaseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseHandle")
            .field("principal", &self.handle.principal().name())
            .field("member", &self.manager.member_id())
            .finish_non_exhaustive()
    }
}

impl LeaseHandle {
    pub(crate) fn new(handle: Handle, manager: Arc<LeaseManager>) -> Self {
        Self { handle, manager }
    }

    /// The principal's handle this one acts through.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    fn event(&self, op: Operation) -> Result<AuditEvent> {
        gate::event(&self.handle, op)
    }

    /// Issues one lease (capability `lease` on the request's path). The
    /// intent is audited before the manager is called, the lease id after.
    #[tracing::instrument(name = "LeaseHandle::issue", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn issue(&self, request: LeaseRequest) -> Result<Lease> {
        self.issue_batch(vec![request])
            .await?
            .pop()
            .ok_or_else(|| crate::Error::InvalidArgument("no lease was issued".into()))
    }

    /// Issues several leases in one atomic write ([`LeaseManager::issue_batch`]),
    /// each request checked (capability `lease` on its path) before any is
    /// issued: one refusal refuses the batch. One intent record per request
    /// before the write, one result record per lease (or per request, with
    /// the error) after it, all with one request id.
    #[tracing::instrument(name = "LeaseHandle::issue_batch", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn issue_batch(&self, requests: Vec<LeaseRequest>) -> Result<Vec<Lease>> {
        let event = self.event(Operation::LeaseIssue)?;
        let mut events = Vec::with_capacity(requests.len());
        for r in &requests {
            let ev = event.clone().with_path(r.path());
            admit(&self.handle, &ev, r.path(), &[Capability::Lease]).await?;
            events.push(ev);
        }
        for ev in &events {
            gate::record_intent(&self.handle, ev.clone()).await?;
        }
        match self.manager.issue_batch(requests).await {
            Ok(leases) => {
                for (ev, lease) in events.into_iter().zip(&leases) {
                    record(&self.handle, ev.with_lease_id(lease.id().to_string())).await?;
                }
                Ok(leases)
            }
            Err(e) => {
                for ev in events {
                    record(&self.handle, ev.with_outcome(gate::error_outcome(&e))).await?;
                }
                Err(e)
            }
        }
    }

    /// Reads lease `id` and checks `caps` on its path. A missing lease or
    /// an unreadable path is audited as an error, a refusal as `denied`.
    async fn admit_lease(
        &self,
        event: AuditEvent,
        id: LeaseId,
        caps: &[Capability],
    ) -> Result<(AuditEvent, Lease)> {
        let event = event.with_lease_id(id.to_string());
        let lease = match self.manager.lookup(id).await {
            Ok(l) => l,
            Err(e) => {
                record(&self.handle, event.with_outcome(gate::error_outcome(&e))).await?;
                return Err(e);
            }
        };
        let event = event.with_path(lease.path());
        let path = canonical(&self.handle, &event, lease.path()).await?;
        check(&self.handle, &event, &path, caps).await?;
        Ok((event, lease))
    }

    /// Renews lease `id` by `increment` (capability `lease` on its path;
    /// see [`LeaseManager::renew`]).
    #[tracing::instrument(name = "LeaseHandle::renew", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn renew(&self, id: LeaseId, increment: Duration) -> Result<Lease> {
        let event = self.event(Operation::LeaseRenew)?;
        let (event, _) = self.admit_lease(event, id, &[Capability::Lease]).await?;
        change(
            &self.handle,
            event,
            self.manager.renew(id, increment),
            |_| None,
        )
        .await
    }

    /// Revokes lease `id` (capability `lease` on its path; see
    /// [`LeaseManager::revoke`]).
    #[tracing::instrument(name = "LeaseHandle::revoke", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn revoke(&self, id: LeaseId) -> Result<Lease> {
        let event = self.event(Operation::LeaseRevoke)?;
        let (event, _) = self.admit_lease(event, id, &[Capability::Lease]).await?;
        change(&self.handle, event, self.manager.revoke(id), |_| None).await
    }

    /// Removes lease `id` whatever its engine says (capabilities `lease`
    /// and `sudo` on its path, as Vault's `revoke-force` needs `sudo`; see
    /// [`LeaseManager::force_revoke`]).
    #[tracing::instrument(name = "LeaseHandle::force_revoke", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn force_revoke(&self, id: LeaseId) -> Result<Lease> {
        let event = self.event(Operation::LeaseRevokeForce)?;
        let caps = [Capability::Lease, Capability::Sudo];
        let (event, _) = self.admit_lease(event, id, &caps).await?;
        change(&self.handle, event, self.manager.force_revoke(id), |_| None).await
    }

    /// Revokes every lease under `prefix` (whole segments; see
    /// [`LeaseManager::revoke_prefix`]). Needs `lease` and `sudo` on the
    /// prefix path itself (as Vault's `revoke-prefix` needs `sudo`) and
    /// `lease` on the path of every lease found under it: if any of them
    /// lies where the principal may not hold leases (a denied subtree, a
    /// narrower rule), the call is refused before anything is revoked,
    /// with a `denied` record naming that lease. The empty prefix (every
    /// lease) cannot be revoked through a handle.
    ///
    /// Exactly the leases checked are revoked (one that appears meanwhile
    /// is left alone). Records: the intent (the prefix) before anything is
    /// revoked, then one record per lease revoked (its id) and one error
    /// record per lease still pending (`lease_revocation_deferred`), or one
    /// record if there was nothing to revoke.
    #[tracing::instrument(name = "LeaseHandle::revoke_prefix", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn revoke_prefix(&self, prefix: &str) -> Result<PrefixRevocation> {
        let event = self.event(Operation::LeaseRevokePrefix)?.with_path(prefix);
        let caps = [Capability::Lease, Capability::Sudo];
        admit(&self.handle, &event, prefix, &caps).await?;
        let ids = self.checked_under(&event, prefix).await?;
        gate::record_intent(&self.handle, event.clone()).await?;
        match self.manager.revoke_each(&ids).await {
            Ok(out) if out.revoked.is_empty() && out.pending.is_empty() => {
                record(&self.handle, event).await?;
                Ok(out)
            }
            Ok(out) => {
                for id in &out.revoked {
                    let ev = event.clone().with_lease_id(id.to_string());
                    record(&self.handle, ev).await?;
                }
                for id in &out.pending {
                    let ev =
                        event
                            .clone()
                            .with_lease_id(id.to_string())
                            .with_outcome(Outcome::Error {
                                kind: "lease_revocation_deferred".into(),
                            });
                    record(&self.handle, ev).await?;
                }
                Ok(out)
            }
            Err(e) => {
                record(&self.handle, event.with_outcome(gate::error_outcome(&e))).await?;
                Err(e)
            }
        }
    }

    /// The ids of the leases under `prefix`, each on a path where the
    /// principal holds `lease`; the first that is not is audited as
    /// `denied` and refuses the call.
    async fn checked_under(&self, event: &AuditEvent, prefix: &str) -> Result<Vec<LeaseId>> {
        let listed = match self.manager.list(prefix).await {
            Ok(ids) => ids,
            Err(e) => {
                record(
                    &self.handle,
                    event.clone().with_outcome(gate::error_outcome(&e)),
                )
                .await?;
                return Err(e);
            }
        };
        let mut ids = Vec::with_capacity(listed.len());
        for id in listed {
            let lease = match self.manager.lookup(id).await {
                Ok(l) => l,
                // revoked meanwhile
                Err(crate::Error::Lease(crate::lease::LeaseError::NotFound { .. })) => continue,
                Err(e) => {
                    let ev = event.clone().with_lease_id(id.to_string());
                    record(&self.handle, ev.with_outcome(gate::error_outcome(&e))).await?;
                    return Err(e);
                }
            };
            let ev = event
                .clone()
                .with_path(lease.path())
                .with_lease_id(id.to_string());
            let path = canonical(&self.handle, &ev, lease.path()).await?;
            check(&self.handle, &ev, &path, &[Capability::Lease]).await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// The lease `id`, with its state (capability `lease` on its path).
    #[tracing::instrument(name = "LeaseHandle::lookup", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn lookup(&self, id: LeaseId) -> Result<Lease> {
        let event = self.event(Operation::ReadMetadata)?;
        let (event, lease) = self.admit_lease(event, id, &[Capability::Lease]).await?;
        record(&self.handle, event).await?;
        Ok(lease)
    }

    /// Ids of the live leases under `prefix` (capability `list` on the
    /// prefix path itself, as for [`Handle::list`]). Leases on paths where
    /// the principal holds no capability at all (a denied subtree) are left
    /// out. The empty prefix cannot be listed through a handle.
    #[tracing::instrument(name = "LeaseHandle::list", level = "debug", skip_all, fields(principal = tracing::field::Empty, request_id = tracing::field::Empty))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<LeaseId>> {
        let event = self.event(Operation::List)?.with_path(prefix);
        admit(&self.handle, &event, prefix, &[Capability::List]).await?;
        let result = self.visible_under(prefix).await;
        conclude(&self.handle, event, result, |ev, _| ev).await
    }

    async fn visible_under(&self, prefix: &str) -> Result<Vec<LeaseId>> {
        let mut out = Vec::new();
        for id in self.manager.list(prefix).await? {
            let lease = match self.manager.lookup(id).await {
                Ok(l) => l,
                Err(crate::Error::Lease(crate::lease::LeaseError::NotFound { .. })) => continue,
                Err(e) => return Err(e),
            };
            let visible = SecretPath::parse(lease.path()).is_ok_and(|p| {
                !self
                    .handle
                    .principal()
                    .policy_set()
                    .capabilities(&p)
                    .is_empty()
            });
            if visible {
                out.push(id);
            }
        }
        Ok(out)
    }
}

//! Issuing, looking up, renewing and revoking leases.

use tokio::sync::oneshot;

use super::*;

impl LeaseManager {
    /// Issues a lease for `path`, revoked through `engine`'s revoker.
    ///
    /// The lease expires after `ttl` (cut to `max_ttl`); renewals never take
    /// it past `max_ttl` after issue. `revocation_data` is stored as given
    /// and handed to the revoker. Refused with
    /// [`LeaseError::QuotaExceeded`] when a quota is full.
    pub async fn issue(
        &self,
        path: &str,
        engine: &str,
        ttl: Duration,
        max_ttl: Duration,
        renewable: bool,
        revocation_data: Vec<u8>,
    ) -> Result<Lease> {
        let request = LeaseRequest::new(path, engine, ttl, max_ttl)
            .renewable(renewable)
            .revocation_data(revocation_data);
        self.issue_batch(vec![request])
            .await?
            .pop()
            .ok_or_else(|| Error::InvalidArgument("no lease was issued".into()))
    }

    /// Issues several leases in one atomic write: all of them or, on any
    /// error, none. Quotas count the whole batch. Much faster than one
    /// [`LeaseManager::issue`] per lease when many leases start at once,
    /// because each index segment and count is written once per batch.
    ///
    /// Calls that wait while another call of this manager writes are then
    /// written together, in one batch, by the first of them to go on: each
    /// caller's leases are still all or none, and quotas are counted caller
    /// by caller in the order they called. If that shared write fails, or
    /// its writer stops (its future dropped), each caller writes its own
    /// leases on its own, after looking them up: leases the failed write
    /// stored after all are found, not issued twice.
    pub async fn issue_batch(&self, requests: Vec<LeaseRequest>) -> Result<Vec<Lease>> {
        for r in &requests {
            validate_path(&r.path)?;
            validate_engine(&r.engine)?;
            if r.ttl.is_zero() || r.max_ttl.is_zero() {
                return Err(LeaseError::InvalidTtl {
                    reason: "ttl and max_ttl must be positive",
                }
                .into());
            }
            if self.revoker(&r.engine).is_none() {
                return Err(LeaseError::NoRevoker {
                    engine: r.engine.clone(),
                }
                .into());
            }
        }
        self.restore().await?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let leases = requests
            .into_iter()
            .map(|r| self.new_lease(r, now))
            .collect::<Result<Vec<_>>>()?;
        let (reply, mut answer) = oneshot::channel();
        self.issues().waiting.push(WaitingIssue {
            leases: leases.clone(),
            reply,
        });
        let _w = self.write.lock().await;
        match answer.try_recv() {
            // Written (or refused) by the call that went on before this one.
            Ok(result) => result,
            // That call stopped before it answered: on our own.
            Err(oneshot::error::TryRecvError::Closed) => self.write_alone(leases).await,
            // Still waiting: this call writes every waiting call's leases.
            Err(oneshot::error::TryRecvError::Empty) => {
                let waiting = std::mem::take(&mut self.issues().waiting);
                self.issue_together(waiting).await;
                answer
                    .try_recv()
                    .unwrap_or_else(|_| Err(Error::InvalidArgument("no lease was issued".into())))
            }
        }
    }

    fn issues(&self) -> MutexGuard<'_, IssueQueue> {
        // A list: a panic cannot leave it half-updated.
        self.issues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the leases of the calls in `waiting` in one batch and answers
    /// each: see [`LeaseManager::issue_batch`]. The caller holds
    /// `self.write`.
    async fn issue_together(&self, waiting: Vec<WaitingIssue>) {
        let mut used = QuotaUse::default();
        let mut callers = Vec::with_capacity(waiting.len());
        for w in waiting {
            // A call that stopped waiting (its future dropped) issues nothing.
            if w.reply.is_closed() {
                continue;
            }
            let adding = self.quota_use(&w.leases);
            match self.check_quotas(&used, &adding) {
                Ok(()) => {
                    used.add(&adding);
                    callers.push(w);
                }
                Err(e) => {
                    let _ = w.reply.send(Err(e));
                }
            }
        }
        if callers.len() <= 1 {
            for w in callers {
                let _ = w.reply.send(self.write_new_leases(w.leases).await);
            }
            return;
        }
        let all: Vec<Lease> = callers
            .iter()
            .flat_map(|w| w.leases.iter().cloned())
            .collect();
        if self.write_new_leases(all).await.is_ok() {
            for w in callers {
                let _ = w.reply.send(Ok(w.leases));
            }
            return;
        }
        for w in callers {
            let _ = w.reply.send(self.write_alone(w.leases).await);
        }
    }

    /// A new active lease for `r`, issued at `now`.
    fn new_lease(&self, r: LeaseRequest, now: Timestamp) -> Result<Lease> {
        let ttl = r.ttl.min(r.max_ttl);
        let expires_at = now + ttl;
        Ok(Lease {
            id: LeaseId::generate()?,
            path: r.path,
            engine: r.engine,
            issued_at: now,
            ttl,
            max_ttl: r.max_ttl,
            expires_at,
            expiring_soon_at: self.expiring_soon_at(now, expires_at),
            warned: false,
            renewable: r.renewable,
            state: LeaseState::Active,
            revocation_data: r.revocation_data,
            claim: None,
        })
    }

    /// Stores `leases` in one atomic batch, each on the audit record first
    /// (and again, with the error, if the write fails), and tells the event
    /// subscribers. The caller holds `self.write`.
    async fn write_new_leases(&self, leases: Vec<Lease>) -> Result<Vec<Lease>> {
        let writes: Vec<LeaseWrite> = leases.into_iter().map(LeaseWrite::create).collect();
        // Write-ahead: each lease is on the audit record before it exists.
        let audit = self.audit_request()?;
        for lease in writes.iter().filter_map(|w| w.new.as_ref()) {
            self.audit_intent(&audit, Operation::LeaseIssue, lease.id, &lease.path)
                .await?;
        }
        let committed = match self.commit_locked(&writes).await {
            Ok(Committed::Done(_)) => Ok(()),
            Ok(Committed::RecordChanged(id)) => Err(Error::InvalidArgument(format!(
                "the new lease id {id} is already taken; issue again"
            ))),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            for lease in writes.iter().filter_map(|w| w.new.as_ref()) {
                self.audit_failure_or_log(&audit, Operation::LeaseIssue, lease.id, &lease.path, &e)
                    .await;
            }
            return Err(e);
        }
        let leases: Vec<Lease> = writes.into_iter().filter_map(|w| w.new).collect();
        self.emit_issued(&leases);
        Ok(leases)
    }

    fn emit_issued(&self, leases: &[Lease]) {
        for lease in leases {
            self.emit(LeaseEvent::Issued {
                id: lease.id,
                path: lease.path.clone(),
                expires_at: lease.expires_at,
            });
        }
    }

    /// One call's leases on their own, after a write shared with other
    /// calls failed or stopped. That write may have been stored after all
    /// (a connection lost after its commit, a future dropped while it
    /// committed), so the leases are looked up first: found, they are this
    /// call's, and go on the audit record again under a new request id with
    /// no error after it (the failed write's records carry its error);
    /// absent, they are checked against the quotas and written. The caller
    /// holds `self.write`.
    async fn write_alone(&self, leases: Vec<Lease>) -> Result<Vec<Lease>> {
        let mut found = 0;
        for lease in &leases {
            if self.get_stored(lease.id).await?.is_some() {
                found += 1;
            }
        }
        if found == 0 {
            self.check_quotas(&QuotaUse::default(), &self.quota_use(&leases))?;
            return self.write_new_leases(leases).await;
        }
        if found < leases.len() {
            // One batch stores all of them or none.
            return Err(Error::corrupt(
                rec_key(leases[0].id),
                "some of the leases of one issue were stored and some not",
            ));
        }
        let audit = self.audit_request()?;
        for lease in &leases {
            self.audit_intent(&audit, Operation::LeaseIssue, lease.id, &lease.path)
                .await?;
        }
        self.emit_issued(&leases);
        Ok(leases)
    }

    /// How many leases `leases` add, in all and under each prefix quota.
    fn quota_use(&self, leases: &[Lease]) -> QuotaUse {
        QuotaUse {
            total: leases.len() as u64,
            prefixes: self
                .config
                .prefix_quotas
                .iter()
                .map(|q| {
                    leases
                        .iter()
                        .filter(|l| under_prefix(&l.path, &q.prefix))
                        .count() as u64
                })
                .collect(),
        }
    }

    /// Refuses to add `adding` (after `earlier`, written in the same batch)
    /// if it would take a quota past its limit. The counts are this
    /// manager's view: exact for one manager, and for several managers as
    /// of each one's last change under a path.
    fn check_quotas(&self, earlier: &QuotaUse, adding: &QuotaUse) -> Result<()> {
        let mem = self.mem();
        let total = mem.total.saturating_add(earlier.total);
        if let Some(limit) = self.config.max_leases
            && total.saturating_add(adding.total) > limit
        {
            return Err(LeaseError::QuotaExceeded {
                scope: QuotaScope::Total,
                limit,
                count: total,
            }
            .into());
        }
        for (i, (q, &count)) in self
            .config
            .prefix_quotas
            .iter()
            .zip(&mem.quota_counts)
            .enumerate()
        {
            let count = count.saturating_add(earlier.prefixes.get(i).copied().unwrap_or(0));
            let k = adding.prefixes.get(i).copied().unwrap_or(0);
            if k > 0 && count.saturating_add(k) > q.max_leases {
                return Err(LeaseError::QuotaExceeded {
                    scope: QuotaScope::Prefix(q.prefix.clone()),
                    limit: q.max_leases,
                    count,
                }
                .into());
            }
        }
        Ok(())
    }

    /// The lease with this id.
    pub async fn lookup(&self, id: LeaseId) -> Result<Lease> {
        self.get_stored(id)
            .await?
            .map(|s| s.lease)
            .ok_or_else(|| LeaseError::NotFound { id }.into())
    }

    /// Ids of the live leases under `prefix` (whole segments; `""` for all),
    /// in path order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<LeaseId>> {
        let scan_prefix = if prefix.is_empty() {
            PATH_PREFIX.to_owned()
        } else {
            validate_path(prefix)?;
            format!("{PATH_PREFIX}{prefix}/")
        };
        let keys = self.storage.list(&scan_prefix).await?;
        keys.iter()
            .map(|k| {
                k.rsplit('/')
                    .next()
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| Error::corrupt(k.clone(), "bad lease path index key"))
            })
            .collect()
    }

    /// Renews an active, renewable lease to expire `increment` from now, but
    /// never later than its issue time plus max TTL. The engine's
    /// [`Revoker::renew`] runs first; if it fails the lease is unchanged.
    /// A lease that a manager has claimed for revocation cannot be renewed.
    pub async fn renew(&self, id: LeaseId, increment: Duration) -> Result<Lease> {
        if increment.is_zero() {
            return Err(LeaseError::InvalidTtl {
                reason: "the renewal increment must be positive",
            }
            .into());
        }
        self.restore().await?;
        let now = self.clock.now();
        let current = self.renewable_lease(id, now).await?;
        let hard_end = current.lease.max_expires_at();
        let wanted = now + increment;
        let new_expiry = wanted.min(hard_end);
        let revoker = self
            .revoker(&current.lease.engine)
            .ok_or_else(|| LeaseError::NoRevoker {
                engine: current.lease.engine.clone(),
            })?;
        // Write-ahead: on record before the engine or the store changes.
        let audit = self.audit_request()?;
        let path = current.lease.path.clone();
        self.audit_intent(&audit, Operation::LeaseRenew, id, &path)
            .await?;
        let renewed = self
            .renew_recorded(id, current, revoker, now, new_expiry, wanted > hard_end)
            .await;
        if let Err(e) = &renewed {
            self.audit_failure_or_log(&audit, Operation::LeaseRenew, id, &path, e)
                .await;
        }
        renewed
    }

    /// The effect of [`LeaseManager::renew`] once it is on record.
    pub(super) async fn renew_recorded(
        &self,
        id: LeaseId,
        mut current: Stored,
        revoker: Arc<dyn Revoker>,
        now: Timestamp,
        new_expiry: Timestamp,
        capped: bool,
    ) -> Result<Lease> {
        revoker.renew(&current.lease, new_expiry).await?;

        loop {
            let mut renewed = current.lease.clone();
            renewed.expires_at = new_expiry;
            renewed.expiring_soon_at = self.expiring_soon_at(now, new_expiry);
            renewed.warned = false;
            match self
                .commit(&[LeaseWrite::update(&current, renewed.clone())])
                .await?
            {
                Committed::Done(_) => {
                    self.emit(LeaseEvent::Renewed {
                        id,
                        path: renewed.path.clone(),
                        expires_at: new_expiry,
                        capped,
                    });
                    return Ok(renewed);
                }
                // Changed since read (another manager claimed, renewed or
                // warned it): check it again.
                Committed::RecordChanged(_) => current = self.renewable_lease(id, now).await?,
            }
        }
    }

    pub(super) async fn renewable_lease(&self, id: LeaseId, now: Timestamp) -> Result<Stored> {
        let stored = self
            .get_stored(id)
            .await?
            .ok_or(LeaseError::NotFound { id })?;
        let lease = &stored.lease;
        if let Some(claim) = &lease.claim {
            // Claimed for revocation: expired by the claimer's clock, or
            // being revoked on request.
            return Err(match lease.state {
                LeaseState::Active => LeaseError::Expired {
                    id,
                    expired_at: lease.expires_at.min(now),
                },
                _ => LeaseError::NotActive {
                    id,
                    state: LeaseState::Revoking {
                        attempts: lease.failed_attempts(),
                        next_try: claim.until,
                    },
                },
            }
            .into());
        }
        if lease.state != LeaseState::Active {
            return Err(LeaseError::NotActive {
                id,
                state: lease.state.clone(),
            }
            .into());
        }
        if now >= lease.expires_at {
            return Err(LeaseError::Expired {
                id,
                expired_at: lease.expires_at,
            }
            .into());
        }
        if !lease.renewable {
            return Err(LeaseError::NotRenewable { id }.into());
        }
        Ok(stored)
    }

    /// Revokes a lease now through its engine. On success the lease is
    /// deleted and returned in state [`LeaseState::Revoked`]. On failure the
    /// manager keeps retrying and this returns
    /// [`LeaseError::RevocationDeferred`] (or [`LeaseError::Irrevocable`]
    /// once attempts are used up).
    ///
    /// The lease is claimed before its revoker runs, so a manager expiring
    /// it at the same moment (in this process or another) does not revoke
    /// it too. If another manager holds it, this waits up to
    /// [`LeaseConfig::revoke_timeout`] for that manager to finish; still
    /// unfinished, it returns [`LeaseError::RevocationDeferred`] with the
    /// claim's end as the next try.
    pub async fn revoke(&self, id: LeaseId) -> Result<Lease> {
        self.restore().await?;
        match self.revoke_one(id, false, true).await? {
            Attempt::Revoked(l) => Ok(l),
            Attempt::Deferred {
                attempts,
                next_try,
                reason,
            } => Err(LeaseError::RevocationDeferred {
                id,
                attempts,
                next_try,
                reason,
            }
            .into()),
            Attempt::Irrevocable { attempts, reason } => Err(LeaseError::Irrevocable {
                id,
                attempts,
                reason,
            }
            .into()),
            Attempt::Gone => Err(LeaseError::NotFound { id }.into()),
        }
    }

    /// Removes a lease whatever its engine says, for irrevocable leases an
    /// operator has cleaned up by hand. The revoker is tried once; its
    /// failure is logged and ignored. Sends [`LeaseEvent::Revoked`] with
    /// `forced: true`. A lease another manager is revoking is left to it
    /// ([`LeaseError::RevocationDeferred`]).
    pub async fn force_revoke(&self, id: LeaseId) -> Result<Lease> {
        self.restore().await?;
        match self.revoke_one(id, true, true).await? {
            Attempt::Revoked(l) => Ok(l),
            Attempt::Deferred {
                attempts,
                next_try,
                reason,
            } => Err(LeaseError::RevocationDeferred {
                id,
                attempts,
                next_try,
                reason,
            }
            .into()),
            _ => Err(LeaseError::NotFound { id }.into()),
        }
    }

    /// Revokes every lease under `prefix` (whole segments; `""` for all).
    /// Leases whose engine fails are left to the retry schedule and listed
    /// as pending, as are leases another manager is revoking right now.
    pub async fn revoke_prefix(&self, prefix: &str) -> Result<PrefixRevocation> {
        self.restore().await?;
        let ids = self.list(prefix).await?;
        self.revoke_each(&ids).await
    }

    /// Revokes each of `ids` as [`LeaseManager::revoke_prefix`] does (not
    /// waiting for leases another manager is revoking; ids already gone
    /// are skipped): the authorised prefix revocation revokes exactly the
    /// leases it checked.
    pub(crate) async fn revoke_each(&self, ids: &[LeaseId]) -> Result<PrefixRevocation> {
        self.restore().await?;
        let mut out = PrefixRevocation::default();
        for &id in ids {
            match self.revoke_one(id, false, false).await? {
                Attempt::Revoked(_) => out.revoked.push(id),
                Attempt::Deferred { .. } | Attempt::Irrevocable { .. } => out.pending.push(id),
                Attempt::Gone => {}
            }
        }
        Ok(out)
    }

    /// Runs the lease's revoker with the timeout; the error is a message.
    pub(super) async fn call_revoker(&self, lease: &Lease) -> std::result::Result<(), String> {
        let Some(revoker) = self.revoker(&lease.engine) else {
            return Err(format!(
                "no revoker is registered for engine {:?}",
                lease.engine
            ));
        };
        match tokio::time::timeout(self.config.revoke_timeout, revoker.revoke(lease)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the revoker did not answer within {:?}",
                self.config.revoke_timeout
            )),
        }
    }

    /// The delay before retry number `attempts` (1 after the first failure).
    pub(super) fn backoff(&self, attempts: u32) -> Duration {
        self.config.retry.backoff().delay(attempts)
    }

    /// Alias of [`LeaseManager::run_due`].
    pub async fn tick(&self) -> Result<DueReport> {
        self.run_due().await
    }

    /// When the background task must next wake: the earliest entry in
    /// memory, when the horizon needs moving, or when the stored index is
    /// next read again.
    pub(super) fn next_wake(&self) -> Timestamp {
        let mem = self.mem();
        // One millisecond after the point where `advance_horizon` loads more.
        let refill = mem.loaded_until - self.config.restore_horizon / 2 + Duration::from_millis(1);
        [mem.index.first(), mem.recheck.first()]
            .into_iter()
            .flatten()
            .map(|(t, _)| t)
            .fold(refill.min(mem.next_rescan), Timestamp::min)
    }
}

/// Issue calls waiting for the one that writes them (see
/// [`LeaseManager::issue_batch`]).
#[derive(Debug, Default)]
pub(super) struct IssueQueue {
    waiting: Vec<WaitingIssue>,
}

/// One call's new leases, waiting, and where its answer goes.
#[derive(Debug)]
struct WaitingIssue {
    leases: Vec<Lease>,
    reply: oneshot::Sender<Result<Vec<Lease>>>,
}

/// Leases added by some calls: in all, and under each prefix quota
/// (parallel to `LeaseConfig::prefix_quotas`).
#[derive(Debug, Default)]
struct QuotaUse {
    total: u64,
    prefixes: Vec<u64>,
}

impl QuotaUse {
    fn add(&mut self, other: &QuotaUse) {
        self.total = self.total.saturating_add(other.total);
        if self.prefixes.len() < other.prefixes.len() {
            self.prefixes.resize(other.prefixes.len(), 0);
        }
        for (a, b) in self.prefixes.iter_mut().zip(&other.prefixes) {
            *a = a.saturating_add(*b);
        }
    }
}

//! Claims: how several managers share the expiry work of one store.
//!
//! Every manager pops the leases due in its memory, reads their records and
//! claims the ones nobody holds in one compare-and-set batch: the claim
//! names the manager's member id and lasts [`LeaseConfig::claim_ttl`] by its
//! clock. Only the holder calls the revoker, renewing the claim while the
//! call lasts. When the engine confirms, the claim is marked `revoked` in
//! one small compare-and-set before the next revocation starts; the records
//! of a batch of revoked leases are then deleted together (index segments
//! and counts read, checked and retried, see `commit.rs`).
//!
//! So without crashes each lease's revoker runs once. A member that dies
//! leaves its claims in storage: the others take them over once they lapse
//! (a lease already marked `revoked` is only cleaned up), and a manager
//! started again with the same member id takes them back at once. Only a
//! lease whose revoker was running at the crash (or whose `revoked` mark
//! was not yet written) is revoked a second time; revokers are idempotent.
//!
//! Managers find leases other managers issued, renewed or held by reading
//! the stored index again every [`LeaseConfig::rescan_interval`]. A batch
//! of due entries comes from one index segment; the segment is read first,
//! so leases other managers have already revoked cost no record read.
//!
//! [`LeaseConfig::claim_ttl`]: super::LeaseConfig::claim_ttl
//! [`LeaseConfig::rescan_interval`]: super::LeaseConfig::rescan_interval

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::audit::AuditRequest;
use super::commit::{Committed, Jitter, LeaseWrite, Stored};
use super::{
    Attempt, DueReport, Lease, LeaseClaim, LeaseEvent, LeaseId, LeaseManager, LeaseState, Mem,
};
use crate::audit::Operation;
use crate::clock::Timestamp;
use crate::{Error, Result};

/// Due entries taken from memory at a time (then split into batches).
const DUE_WINDOW: usize = 1024;
/// Leases claimed in one batch (all from one index segment).
const CLAIM_BATCH: usize = 64;
const MAX_MEMBER_ID_LEN: usize = 64;

/// A random member id, `member-` and 16 hex digits.
pub(super) fn random_member_id() -> Result<String> {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| Error::Random)?;
    Ok(format!("member-{}", hex::encode(b)))
}

/// Checks a configured member id.
pub(super) fn validate_member_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > MAX_MEMBER_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(Error::InvalidArgument(format!(
            "lease config: member_id {:?} must be 1 to {MAX_MEMBER_ID_LEN} characters from A-Z a-z 0-9 . _ : -",
            id.chars().take(MAX_MEMBER_ID_LEN).collect::<String>()
        )));
    }
    Ok(())
}

/// Where a batch of due entries came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The mirror of the stored index: each entry is `(due, id)` as stored,
    /// all of a batch in one segment.
    Index,
    /// Looks again at leases set aside (another member's claim, a failed
    /// attempt): not stored index entries.
    Recheck,
}

/// Puts popped entries back if their processing is abandoned (the
/// background task cancelled mid-way), so no due lease is forgotten.
struct Requeue<'a> {
    mem: &'a Mutex<Mem>,
    source: Source,
    chunks: Vec<Vec<(Timestamp, LeaseId)>>,
}

impl Drop for Requeue<'_> {
    fn drop(&mut self) {
        if self.chunks.is_empty() {
            return;
        }
        let mut mem = self.mem.lock().unwrap_or_else(PoisonError::into_inner);
        for (t, id) in self.chunks.drain(..).flatten() {
            match self.source {
                Source::Index => mem.index.insert(t, id),
                Source::Recheck => mem.recheck.insert(t, id),
            };
        }
    }
}

/// Splits due entries into claim batches of one index segment each (so a
/// batch's clean-up rewrites one segment), in random order: managers
/// working through the same due leases then mostly take different batches
/// and rewrite different segments.
fn batches(
    window: Vec<(Timestamp, LeaseId)>,
    jitter: &mut Jitter,
) -> Vec<Vec<(Timestamp, LeaseId)>> {
    let mut by_segment: std::collections::BTreeMap<(u64, u8), Vec<_>> = Default::default();
    for (t, id) in window {
        by_segment
            .entry(super::segment::segment_of(t, id))
            .or_default()
            .push((t, id));
    }
    let mut chunks = Vec::new();
    for entries in by_segment.into_values() {
        let mut rest = entries;
        while rest.len() > CLAIM_BATCH {
            let tail = rest.split_off(CLAIM_BATCH);
            chunks.push(rest);
            rest = tail;
        }
        chunks.push(rest);
    }
    jitter.shuffle(&mut chunks);
    chunks
}

/// Leases a task of this manager works on; released when dropped.
struct InFlight<'a> {
    manager: &'a LeaseManager,
    ids: Vec<LeaseId>,
}

impl InFlight<'_> {
    fn release(&mut self, id: LeaseId) {
        if let Some(i) = self.ids.iter().position(|x| *x == id) {
            self.ids.swap_remove(i);
            self.manager
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            self.manager.released.notify_waiters();
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut set = self
            .manager
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for id in self.ids.drain(..) {
            set.remove(&id);
        }
        drop(set);
        self.manager.released.notify_waiters();
    }
}

/// What a due entry's record asks for.
enum Due {
    /// Claim it and revoke it.
    Claim,
    /// The engine confirmed it under a claim that is ours or has lapsed:
    /// only the records are left to delete.
    CleanUp,
    /// Send the expiring-soon event.
    Warn,
    /// Another member holds it until then: look again at that time.
    Held(Timestamp),
    /// Due later (renewed or rescheduled).
    NotYet(Timestamp),
    /// Nothing to do (irrevocable, or a stale entry).
    Skip,
}

/// How a revoker call under a claim ended.
enum Held {
    /// The revoker answered (the error is its message).
    Done(std::result::Result<(), String>),
    /// The claim was lost before it answered (another member took the lease
    /// over); the call was abandoned.
    Lost,
}

impl LeaseManager {
    /// Marks `ids` as worked on by the calling task; ids another task of
    /// this manager holds are left out of the returned guard.
    fn hold(&self, ids: impl IntoIterator<Item = LeaseId>) -> InFlight<'_> {
        let mut set = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let ids = ids.into_iter().filter(|id| set.insert(*id)).collect();
        InFlight { manager: self, ids }
    }

    fn new_claim(&self) -> LeaseClaim {
        LeaseClaim {
            owner: self.member.clone(),
            until: self.clock.now() + self.config.claim_ttl,
            revoked: false,
        }
    }

    fn classify(&self, lease: &Lease, now: Timestamp) -> Due {
        if let Some(c) = &lease.claim {
            if c.owner != self.member && c.until > self.clock.now() {
                return Due::Held(c.until);
            }
            // Ours from before a restart, or lapsed: take it over.
            return if c.revoked { Due::CleanUp } else { Due::Claim };
        }
        match lease.due_at() {
            None => Due::Skip,
            Some(t) if t > now => Due::NotYet(t),
            Some(_) if lease.state == LeaseState::Active && now < lease.expires_at => Due::Warn,
            Some(_) => Due::Claim,
        }
    }

    /// Processes everything due at the clock's current time: sends
    /// expiring-soon events, revokes expired leases and retries failed
    /// revocations. A lease whose engine fails is rescheduled and the others
    /// go on. Tests call this directly after moving a `ManualClock`.
    ///
    /// Safe to run in several managers over one store at once: each lease
    /// is claimed before its revoker runs, and leases another member holds
    /// are looked at again when its claim lapses.
    pub async fn run_due(&self) -> Result<DueReport> {
        self.restore().await?;
        let now = self.clock.now();
        self.advance_horizon(now).await?;
        self.rescan_if_due(now).await?;
        let mut report = DueReport::default();
        let mut jitter = Jitter::seeded();
        for source in [Source::Recheck, Source::Index] {
            loop {
                let window = {
                    let mut mem = self.mem();
                    let set = match source {
                        Source::Index => &mut mem.index,
                        Source::Recheck => &mut mem.recheck,
                    };
                    let mut w = Vec::new();
                    while w.len() < DUE_WINDOW {
                        match set.pop_due(now) {
                            Some(e) => w.push(e),
                            None => break,
                        }
                    }
                    w
                };
                if window.is_empty() {
                    break;
                }
                let chunks = match source {
                    Source::Index => batches(window, &mut jitter),
                    Source::Recheck => window.chunks(CLAIM_BATCH).map(<[_]>::to_vec).collect(),
                };
                let mut requeue = Requeue {
                    mem: &self.mem,
                    source,
                    chunks,
                };
                while let Some(chunk) = requeue.chunks.last().cloned() {
                    let result = self.process_chunk(&chunk, source, now, &mut report).await;
                    requeue.chunks.pop();
                    if let Err(e) = result {
                        tracing::warn!(error = %e, leases = chunk.len(), "processing due leases failed; retrying later");
                        report.errors += chunk.len();
                        // Stale entries are harmless: processing reads the
                        // stored record again.
                        let retry = now + self.config.retry.base;
                        for (_, id) in chunk {
                            self.recheck_at(retry, id);
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Reads the stored index again up to a little ahead of now, for leases
    /// this manager did not know of (issued or renewed by another manager)
    /// or had set aside (held by a member that may have died).
    async fn rescan_if_due(&self, now: Timestamp) -> Result<()> {
        let until = {
            let mem = self.mem();
            if now < mem.next_rescan {
                return Ok(());
            }
            (now + self.config.rescan_interval).min(mem.loaded_until)
        };
        let mut entries = Vec::new();
        self.scan_index(None, until, &mut entries).await?;
        let mut mem = self.mem();
        mem.index.extend(entries);
        mem.next_rescan = now + self.config.rescan_interval;
        Ok(())
    }

    /// Mirrors a lease's stored index entry, found when its record was
    /// read, if it is due within the loaded horizon.
    fn mirror_entry(&self, t: Timestamp, id: LeaseId) {
        let mut mem = self.mem();
        if t <= mem.loaded_until {
            mem.index.insert(t, id);
        }
    }

    /// Looks at a lease again at `t`.
    fn recheck_at(&self, t: Timestamp, id: LeaseId) {
        self.mem().recheck.insert(t, id);
    }

    /// The entries of `chunk` (one segment's) still in the stored segment:
    /// the others were revoked, or moved by another manager (their new
    /// entry is found by a rescan), and need no record read.
    async fn still_indexed(
        &self,
        chunk: &[(Timestamp, LeaseId)],
    ) -> Result<Vec<(Timestamp, LeaseId)>> {
        let Some(&(t, id)) = chunk.first() else {
            return Ok(Vec::new());
        };
        let key = super::segment::key(t, id);
        let Some(value) = self.storage.get(&key).await? else {
            return Ok(Vec::new());
        };
        let wanted: std::collections::HashSet<_> = chunk.iter().copied().collect();
        let mut stored = Vec::new();
        super::segment::decode_into(&key, &value, None, Timestamp::MAX, &mut stored)?;
        stored.retain(|e| wanted.contains(e));
        Ok(stored)
    }

    async fn process_chunk(
        &self,
        chunk: &[(Timestamp, LeaseId)],
        source: Source,
        now: Timestamp,
        report: &mut DueReport,
    ) -> Result<()> {
        let pending;
        let chunk = match source {
            Source::Index => {
                pending = self.still_indexed(chunk).await?;
                &pending[..]
            }
            Source::Recheck => chunk,
        };
        // Entries another task of this manager holds are dropped: that task
        // finishes them or leaves them in the stored index.
        let mut held = self.hold(chunk.iter().map(|&(_, id)| id));
        let mut to_claim = Vec::new();
        let mut done = Vec::new();
        let mut warn = Vec::new();
        for id in held.ids.clone() {
            let Some(stored) = self.get_stored(id).await? else {
                held.release(id);
                continue;
            };
            match self.classify(&stored.lease, now) {
                Due::Claim => to_claim.push(stored),
                Due::CleanUp => done.push(stored),
                Due::Warn => warn.push(id),
                Due::Held(until) => {
                    self.recheck_at(until, id);
                    held.release(id);
                }
                Due::NotYet(t) => {
                    self.mirror_entry(t, id);
                    held.release(id);
                }
                Due::Skip => held.release(id),
            }
        }
        for id in warn {
            self.mark_expiring_soon(id, now, report).await?;
            held.release(id);
        }
        let claimed = self.claim_all(to_claim, now, &mut done, &mut held).await?;
        // Set once an audit record is refused: the rest of the batch waits.
        let mut audit_down = false;
        for mut stored in claimed {
            let id = stored.lease.id;
            // Write-ahead: no revoker runs unaudited. A refused record leaves
            // the lease claimed by this manager and due again after the
            // retry delay, when it is claimed and recorded anew.
            let audit = self.audit_request()?;
            if !audit_down
                && let Err(e) = self
                    .audit_intent(&audit, Operation::LeaseRevoke, id, &stored.lease.path)
                    .await
            {
                tracing::warn!(lease = %id, error = %e, "the revocation of an expired lease could not be audited; not revoking it now");
                audit_down = true;
            }
            if audit_down {
                report.errors += 1;
                self.recheck_at(self.clock.now() + self.config.retry.base, id);
                held.release(id);
                continue;
            }
            match self.revoke_holding(&mut stored).await? {
                Held::Lost => held.release(id),
                Held::Done(Ok(())) => {
                    // Recorded before the next revocation starts, so a crash
                    // repeats at most the revocation in flight.
                    if self.update_claim(&mut stored, |c| c.revoked = true).await? {
                        done.push(stored);
                    } else {
                        held.release(id);
                    }
                }
                Held::Done(Err(reason)) => {
                    match self.record_failure(&stored, reason, &audit).await? {
                        Some(Attempt::Deferred { .. }) => report.deferred += 1,
                        Some(Attempt::Irrevocable { .. }) => report.irrevocable += 1,
                        _ => {}
                    }
                    held.release(id);
                }
            }
        }
        if !done.is_empty() {
            report.revoked += self.clean_up(done, false).await?;
        }
        Ok(())
    }

    /// Claims `due` in one batch; a lease changed since it was read is read
    /// again and sorted anew. Returns the claimed records.
    async fn claim_all(
        &self,
        mut due: Vec<Stored>,
        now: Timestamp,
        done: &mut Vec<Stored>,
        held: &mut InFlight<'_>,
    ) -> Result<Vec<Stored>> {
        loop {
            if due.is_empty() {
                return Ok(Vec::new());
            }
            let claim = self.new_claim();
            let writes: Vec<LeaseWrite> = due
                .iter()
                .map(|s| {
                    let mut l = s.lease.clone();
                    l.claim = Some(claim.clone());
                    LeaseWrite::update(s, l)
                })
                .collect();
            match self.commit(&writes).await? {
                Committed::Done(stored) => return Ok(stored.into_iter().flatten().collect()),
                Committed::RecordChanged(id) => {
                    due.retain(|s| s.lease.id != id);
                    let Some(stored) = self.get_stored(id).await? else {
                        held.release(id);
                        continue;
                    };
                    match self.classify(&stored.lease, now) {
                        Due::Claim => due.push(stored),
                        Due::CleanUp => done.push(stored),
                        Due::Held(until) => {
                            self.recheck_at(until, id);
                            held.release(id);
                        }
                        Due::NotYet(t) => {
                            self.mirror_entry(t, id);
                            held.release(id);
                        }
                        Due::Warn => {
                            self.recheck_at(now + Duration::from_millis(1), id);
                            held.release(id);
                        }
                        Due::Skip => held.release(id),
                    }
                }
            }
        }
    }

    /// Changes this manager's claim on `stored` (renewal, the `revoked`
    /// mark) if the record is still as read; returns false if it is not
    /// (the claim was lost).
    async fn update_claim(
        &self,
        stored: &mut Stored,
        change: impl FnOnce(&mut LeaseClaim),
    ) -> Result<bool> {
        let mut lease = stored.lease.clone();
        let Some(claim) = lease.claim.as_mut() else {
            return Ok(false);
        };
        change(claim);
        match self.commit(&[LeaseWrite::update(stored, lease)]).await? {
            Committed::Done(mut v) => match v.pop().flatten() {
                Some(s) => {
                    *stored = s;
                    Ok(true)
                }
                None => Ok(false),
            },
            Committed::RecordChanged(_) => Ok(false),
        }
    }

    fn claim_until(stored: &Stored) -> Timestamp {
        stored
            .lease
            .claim
            .as_ref()
            .map_or(Timestamp::EPOCH, |c| c.until)
    }

    /// Runs the revoker of a lease this manager has claimed, renewing the
    /// claim every third of its time while the call lasts. Gives up on the
    /// call if the claim is lost, or if it cannot be renewed before it
    /// lapses (another member may then take the lease over).
    async fn revoke_holding(&self, stored: &mut Stored) -> Result<Held> {
        let ttl = self.config.claim_ttl;
        let every = ttl / 3;
        // A claim a good part of whose time went by (earlier leases of the
        // batch took a while) is renewed before the call.
        let now = self.clock.now();
        if Self::claim_until(stored) < now + ttl / 2
            && !self.update_claim(stored, |c| c.until = now + ttl).await?
        {
            return Ok(Held::Lost);
        }
        let lease = stored.lease.clone();
        let call = self.call_revoker(&lease);
        tokio::pin!(call);
        let mut next_renewal = Self::claim_until(stored) - (ttl - every);
        loop {
            tokio::select! {
                biased;
                outcome = &mut call => return Ok(Held::Done(outcome)),
                () = self.clock.sleep_until(next_renewal) => {
                    let now = self.clock.now();
                    match self.update_claim(stored, |c| c.until = now + ttl).await {
                        Ok(true) => next_renewal = now + every,
                        Ok(false) => {
                            tracing::warn!(lease = %lease.id, "lost the claim while revoking; another member took the lease over");
                            return Ok(Held::Lost);
                        }
                        Err(e) => {
                            let until = Self::claim_until(stored);
                            if now >= until {
                                tracing::warn!(lease = %lease.id, error = %e, "could not renew the claim before it lapsed; abandoning this revocation");
                                return Ok(Held::Lost);
                            }
                            tracing::warn!(lease = %lease.id, error = %e, "renewing a lease claim failed; retrying");
                            next_renewal = (now + every / 4 + Duration::from_millis(1)).min(until);
                        }
                    }
                }
            }
        }
    }

    /// Deletes revoked leases (records, path keys, index entries, counts)
    /// in one batch, then sends their events. A lease whose record changed
    /// meanwhile is read again and kept only while the claim on it is still
    /// this manager's or lapsed (else its new holder cleans it up). Returns
    /// how many were deleted.
    async fn clean_up(&self, mut done: Vec<Stored>, forced: bool) -> Result<usize> {
        loop {
            if done.is_empty() {
                return Ok(0);
            }
            let writes: Vec<LeaseWrite> = done.iter().map(LeaseWrite::delete).collect();
            match self.commit(&writes).await? {
                Committed::Done(_) => {
                    for s in &done {
                        self.emit(LeaseEvent::Revoked {
                            id: s.lease.id,
                            path: s.lease.path.clone(),
                            forced,
                        });
                    }
                    return Ok(done.len());
                }
                Committed::RecordChanged(id) => {
                    done.retain(|s| s.lease.id != id);
                    if let Some(s) = self.get_stored(id).await?
                        && let Some(c) = &s.lease.claim
                        && c.revoked
                        && (c.owner == self.member || c.until <= self.clock.now())
                    {
                        done.push(s);
                    }
                }
            }
        }
    }

    /// Records a failed revocation: the next try after the backoff, or
    /// irrevocable once attempts are used up; the claim is released.
    /// `None` if the record changed meanwhile (the claim was lost).
    /// The failure is audited (under `audit`, the revocation's request)
    /// before it is recorded; if the audit record is refused, nothing is
    /// recorded and the error returned (the lease stays claimed and due).
    async fn record_failure(
        &self,
        stored: &Stored,
        reason: String,
        audit: &AuditRequest,
    ) -> Result<Option<Attempt>> {
        let id = stored.lease.id;
        let now = self.clock.now();
        let attempts = stored.lease.failed_attempts().saturating_add(1);
        let mut next = stored.lease.clone();
        next.claim = None;
        let attempt = if attempts >= self.config.retry.max_attempts {
            next.state = LeaseState::Irrevocable { attempts };
            Attempt::Irrevocable {
                attempts,
                reason: reason.clone(),
            }
        } else {
            let next_try = now + self.backoff(attempts);
            next.state = LeaseState::Revoking { attempts, next_try };
            Attempt::Deferred {
                attempts,
                next_try,
                reason: reason.clone(),
            }
        };
        let kind = match &attempt {
            Attempt::Irrevocable { .. } => "lease_irrevocable",
            _ => "lease_revocation_deferred",
        };
        self.audit_failure(audit, Operation::LeaseRevoke, id, &stored.lease.path, kind)
            .await?;
        if let Committed::RecordChanged(_) =
            self.commit(&[LeaseWrite::update(stored, next)]).await?
        {
            return Ok(None);
        }
        match &attempt {
            Attempt::Irrevocable { .. } => {
                tracing::error!(lease = %id, attempts, %reason, "lease is irrevocable");
                self.emit(LeaseEvent::Irrevocable {
                    id,
                    path: stored.lease.path.clone(),
                    attempts,
                    reason,
                });
            }
            Attempt::Deferred { next_try, .. } => {
                tracing::warn!(lease = %id, attempts, %reason, %next_try, "lease revocation failed; retrying");
            }
            _ => {}
        }
        Ok(Some(attempt))
    }

    async fn mark_expiring_soon(
        &self,
        id: LeaseId,
        now: Timestamp,
        report: &mut DueReport,
    ) -> Result<()> {
        let Some(current) = self.get_stored(id).await? else {
            return Ok(());
        };
        let l = &current.lease;
        if l.claim.is_some() || l.state != LeaseState::Active || l.warned || now >= l.expires_at {
            return Ok(());
        }
        let mut next = l.clone();
        next.warned = true;
        // Changed meanwhile: another manager warned, renewed or claimed it.
        if let Committed::Done(_) = self.commit(&[LeaseWrite::update(&current, next)]).await? {
            self.emit(LeaseEvent::ExpiringSoon {
                id,
                path: l.path.clone(),
                expires_at: l.expires_at,
            });
            report.expiring_soon += 1;
        }
        Ok(())
    }

    /// Revokes one lease on request: claims it (its state becomes
    /// `Revoking`, due when the claim lapses, so that if this member dies
    /// another finishes the revocation), calls the revoker and records the
    /// outcome. A lease another member (or task) holds is waited for while
    /// `wait` allows, up to the revoke timeout.
    pub(super) async fn revoke_one(&self, id: LeaseId, force: bool, wait: bool) -> Result<Attempt> {
        let audit = self.audit_request()?;
        let mut audited = false;
        let limit = if wait {
            self.config.revoke_timeout
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(2);
        // The lease as last seen held by another member or task.
        let mut waited_on: Option<Lease> = None;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let Some(stored) = self.get_stored(id).await? else {
                // Gone while its holder revoked it: revoked.
                return Ok(waited_on.map_or(Attempt::Gone, |l| Attempt::Revoked(revoked(l))));
            };
            let now = self.clock.now();
            let mut held = self.hold([id]);
            let busy = match &stored.lease.claim {
                _ if held.ids.is_empty() => Some((self.member.clone(), now)),
                Some(c) if c.owner != self.member && c.until > now => {
                    Some((c.owner.clone(), c.until))
                }
                _ => None,
            };
            if let Some((owner, until)) = busy {
                drop(held);
                if stored.lease.claim.as_ref().is_some_and(|c| c.revoked) {
                    // The engine confirmed it; the holder is cleaning up.
                    return Ok(Attempt::Revoked(revoked(stored.lease)));
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Ok(Attempt::Deferred {
                        attempts: stored.lease.failed_attempts(),
                        next_try: until.max(now),
                        reason: format!("member {owner} is revoking it"),
                    });
                }
                tokio::select! {
                    () = &mut released => {}
                    () = tokio::time::sleep(pause.min(left)) => {}
                }
                pause = (pause * 2).min(Duration::from_millis(100));
                waited_on = Some(stored.lease);
                continue;
            }
            if stored.lease.claim.as_ref().is_some_and(|c| c.revoked) {
                // Revoked under an earlier claim (this member before a
                // restart, or a member that died): only clean-up is left.
                return self.finish_revocation(stored, force).await;
            }
            let mut claimed = stored.lease.clone();
            let claim = self.new_claim();
            claimed.state = LeaseState::Revoking {
                attempts: stored.lease.failed_attempts(),
                next_try: claim.until,
            };
            claimed.claim = Some(claim);
            // Write-ahead, once: on record before the lease is claimed and
            // its revoker runs.
            if !audited {
                let op = if force {
                    Operation::LeaseRevokeForce
                } else {
                    Operation::LeaseRevoke
                };
                self.audit_intent(&audit, op, id, &stored.lease.path)
                    .await?;
                audited = true;
            }
            let mut stored = match self.commit(&[LeaseWrite::update(&stored, claimed)]).await? {
                Committed::Done(mut v) => v
                    .pop()
                    .flatten()
                    .ok_or_else(|| Error::InvalidArgument("claimed lease not returned".into()))?,
                // Changed since read: look again.
                Committed::RecordChanged(_) => continue,
            };
            let outcome = match self.revoke_holding(&mut stored).await? {
                Held::Done(outcome) => outcome,
                Held::Lost => {
                    return Ok(Attempt::Deferred {
                        attempts: stored.lease.failed_attempts(),
                        next_try: self.clock.now(),
                        reason: "another member took the revocation over".into(),
                    });
                }
            };
            let result = match outcome {
                Err(reason) if !force => {
                    match self.record_failure(&stored, reason, &audit).await? {
                        Some(attempt) => Ok(attempt),
                        None => Ok(Attempt::Deferred {
                            attempts: stored.lease.failed_attempts(),
                            next_try: self.clock.now(),
                            reason: "another member took the revocation over".into(),
                        }),
                    }
                }
                outcome => {
                    if let Err(reason) = &outcome {
                        tracing::warn!(lease = %id, %reason, "forced revocation: the engine failed; removing the lease anyway");
                    }
                    self.finish_revocation(stored, force).await
                }
            };
            held.release(id);
            return result;
        }
    }

    /// Deletes one revoked lease and sends its event.
    async fn finish_revocation(&self, stored: Stored, forced: bool) -> Result<Attempt> {
        // Zero if the record changed meanwhile: the claim lapsed and another
        // member took over; the engine confirmed the revocation all the same.
        self.clean_up(vec![stored.clone()], forced).await?;
        Ok(Attempt::Revoked(revoked(stored.lease)))
    }
}

/// The lease as returned by a revocation.
fn revoked(mut lease: Lease) -> Lease {
    lease.state = LeaseState::Revoked;
    lease.claim = None;
    lease
}

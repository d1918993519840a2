//! How a rotation runs: the session lock, its writes, each step with its
//! retries, and the schedule's next due time.

use super::*;
use crate::backoff::Backoff;

impl RotationEngine {
    pub(super) fn now(&self) -> Timestamp {
        self.sr.clock().now()
    }

    pub(super) fn take_last_error(&self) -> String {
        self.last_error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_default()
    }

    pub(super) async fn emit(
        &self,
        step: RotationStep,
        version: u64,
        outcome: StepOutcome,
    ) -> Result<()> {
        let event = RotationEvent {
            credential: self.name.clone(),
            version,
            step,
            outcome,
            at: self.now(),
        };
        if let Some(audit) = &self.options.audit {
            audit
                .record(&event)
                .await
                .map_err(|message| RotationError::AuditRefused {
                    credential: self.name.clone(),
                    step,
                    message,
                })?;
        }
        tracing::debug!(credential = %self.name, version, %step, outcome = ?event.outcome, "rotation step");
        let _ = self.events.send(event);
        Ok(())
    }

    pub(super) async fn acquire(&self) -> Result<Session> {
        let (raw, mut state) = read_state(&self.sr, &self.name).await?;
        let now = self.now();
        if let Some(lock) = &state.lock
            && lock.owner != self.owner
            && lock.expires > now
        {
            return Err(RotationError::Busy {
                credential: self.name.clone(),
                owner: lock.owner.clone(),
                until: lock.expires,
            }
            .into());
        }
        state.format = STATE_FORMAT;
        state.next_version = state.next_version.max(1);
        let mut s = Session { raw, state };
        match self.write(&mut s, vec![]).await {
            // Someone else changed it between our read and write.
            Err(Error::Rotation(RotationError::LostLock { .. })) => {
                let (_, st) = read_state(&self.sr, &self.name).await?;
                let (owner, until) = st
                    .lock
                    .map(|l| (l.owner, l.expires))
                    .unwrap_or_else(|| (String::new(), now));
                Err(RotationError::Busy {
                    credential: self.name.clone(),
                    owner,
                    until,
                }
                .into())
            }
            r => r.map(|()| s),
        }
    }

    pub(super) async fn release(&self, s: &mut Session) -> Result<()> {
        if s.state.lock.is_none() {
            return Ok(());
        }
        s.state.lock = None;
        self.write_raw(s, vec![]).await
    }

    /// Writes the state (renewing the lock) with `extra` operations, only if
    /// the record is unchanged since this session last read or wrote it.
    pub(super) async fn write(&self, s: &mut Session, extra: Vec<BatchOp>) -> Result<()> {
        s.state.lock = Some(Lock {
            owner: self.owner.clone(),
            expires: self.now() + self.options.lock_ttl,
        });
        self.write_raw(s, extra).await
    }

    pub(super) async fn write_raw(&self, s: &mut Session, extra: Vec<BatchOp>) -> Result<()> {
        let limit = self.options.history_limit.max(4);
        if s.state.history.len() > limit {
            let drop = s.state.history.len() - limit;
            s.state.history.drain(..drop);
        }
        let bytes = serde_json::to_vec(&s.state)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode rotation state: {e}")))?;
        let mut ops = vec![
            BatchOp::expect(self.state_key.clone(), s.raw.clone()),
            BatchOp::put(self.state_key.clone(), bytes.clone()),
        ];
        ops.extend(extra);
        match self.sr.barrier().batch(ops).await {
            Ok(()) => {
                s.raw = Some(bytes);
                Ok(())
            }
            Err(Error::StorageConflict { key }) if key == self.state_key => {
                Err(RotationError::LostLock {
                    credential: self.name.clone(),
                }
                .into())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn store_version_op(&self, cred: &Credential) -> Result<BatchOp> {
        let plain = cred.encode()?;
        self.sr
            .sealed_put(
                &sealed_key(&self.name, cred.version),
                &plain,
                &SealContext::new(&self.context_path, cred.version),
            )
            .await
    }

    pub(super) async fn load(&self, version: Option<u64>) -> Result<Option<Credential>> {
        match version {
            Some(v) => load_version(&self.sr, &self.name, v).await,
            None => Ok(None),
        }
    }

    pub(super) fn step_failed(
        &self,
        step: RotationStep,
        version: u64,
        attempts: u32,
        e: &TargetError,
    ) -> Error {
        RotationError::StepFailed {
            credential: self.name.clone(),
            version,
            step,
            attempts,
            message: e.message.clone(),
        }
        .into()
    }

    /// Runs `f` up to `max_attempts` times with exponential backoff on the
    /// clock, emitting events. Returns the attempts made with the last error.
    pub(super) async fn attempt<T, F, Fut>(
        &self,
        step: RotationStep,
        version: u64,
        mut f: F,
    ) -> std::result::Result<T, (u32, TargetError)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, TargetError>>,
    {
        let max = self.options.max_attempts.max(1);
        let mut delays =
            Backoff::new(self.options.backoff_initial, self.options.backoff_max).retries();
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(t) => return Ok(t),
                Err(e) if attempt < max && e.retryable => {
                    let _ = self
                        .emit(
                            step,
                            version,
                            StepOutcome::Retrying {
                                attempt,
                                error: e.message.clone(),
                            },
                        )
                        .await;
                    let delay = delays.next_delay();
                    self.sr.clock().sleep_until(self.now() + delay).await;
                    attempt += 1;
                }
                Err(e) => {
                    let _ = self
                        .emit(
                            step,
                            version,
                            StepOutcome::Failed {
                                attempts: attempt,
                                error: e.message.clone(),
                            },
                        )
                        .await;
                    if let Ok(mut last) = self.last_error.lock() {
                        *last = Some(e.message.clone());
                    }
                    return Err((attempt, e));
                }
            }
        }
    }

    /// Runs `work` (a step against the target, with its retries) while
    /// renewing the session's lock every third of [`RotationOptions::lock_ttl`],
    /// so a step that outlasts the TTL keeps the lock while this process
    /// lives, and a process that dies loses it within one TTL. If the lock
    /// was lost (another engine took over) or could not be renewed before it
    /// lapsed, `work` is abandoned and this fails with
    /// [`RotationError::LostLock`]; the recorded step is then the new
    /// holder's to finish or roll back.
    pub(super) async fn holding<T>(
        &self,
        s: &mut Session,
        work: impl Future<Output = T>,
    ) -> Result<T> {
        let ttl = self.options.lock_ttl;
        let every = (ttl / 3).max(Duration::from_millis(1));
        let mut held_until = s
            .state
            .lock
            .as_ref()
            .map_or_else(|| self.now(), |l| l.expires);
        let mut next = held_until - ttl + every;
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return Ok(out),
                () = self.sr.clock().sleep_until(next) => {
                    match self.write(s, vec![]).await {
                        Ok(()) => {
                            held_until = s.state.lock.as_ref().map_or(held_until, |l| l.expires);
                            next = self.now() + every;
                        }
                        Err(e @ Error::Rotation(RotationError::LostLock { .. })) => {
                            tracing::warn!(credential = %self.name, "rotation lock taken over while a step ran; abandoning the step");
                            return Err(e);
                        }
                        Err(e) => {
                            let now = self.now();
                            if now >= held_until {
                                tracing::warn!(credential = %self.name, error = %e, "could not renew the rotation lock before it lapsed; abandoning the step");
                                return Err(RotationError::LostLock {
                                    credential: self.name.clone(),
                                }
                                .into());
                            }
                            tracing::warn!(credential = %self.name, error = %e, "renewing the rotation lock failed; retrying");
                            next = (now + every / 4).min(held_until);
                        }
                    }
                }
            }
        }
    }

    /// Runs the recorded steps until none is left.
    pub(super) async fn drive(&self, s: &mut Session, report: &mut RotationReport) -> Result<()> {
        while let Some(op) = s.state.op {
            self.emit(op.step, op.version, StepOutcome::Started).await?;
            let done = self.run_step(s, op, report).await?;
            if done {
                self.emit(op.step, op.version, StepOutcome::Completed)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs one step and records the next; returns whether the step
    /// completed (false when it failed and a roll-back was recorded). Its
    /// duration goes to the metrics ([`ROTATION_STEP_SECONDS`](crate::metrics::ROTATION_STEP_SECONDS)).
    pub(super) async fn run_step(
        &self,
        s: &mut Session,
        op: Op,
        report: &mut RotationReport,
    ) -> Result<bool> {
        let started = std::time::Instant::now();
        let step = op.step;
        let result = self.run_step_inner(s, op, report).await;
        let outcome = match &result {
            Ok(true) => "completed",
            Ok(false) => "rolled_back",
            Err(e) => e.kind(),
        };
        crate::metrics::rotation_step(step.as_str(), started, outcome);
        result
    }

    async fn run_step_inner(
        &self,
        s: &mut Session,
        op: Op,
        report: &mut RotationReport,
    ) -> Result<bool> {
        let v = op.version;
        let current = self.load(s.state.current).await?;
        let previous = self.load(s.state.previous).await?;
        let ctx = RotationContext {
            credential: &self.name,
            version: v,
            current: current.as_ref(),
            previous: previous.as_ref(),
        };
        let next = |step| {
            Some(Op {
                step,
                version: v,
                cause: None,
            })
        };
        match op.step {
            RotationStep::CreatePending => {
                let created = self
                    .holding(s, self.attempt(op.step, v, || self.rotator.create(&ctx)))
                    .await?;
                let mut cred = match created {
                    Ok(c) => c,
                    // Nothing was stored or set: just drop the attempt.
                    Err((attempts, e)) => {
                        s.state.op = None;
                        self.write(s, vec![]).await?;
                        return Err(self.step_failed(op.step, v, attempts, &e));
                    }
                };
                cred.version = v;
                let put = self.store_version_op(&cred).await?;
                let now = self.now();
                s.state.history.retain(|h| h.version != v);
                s.state.history.push(VersionInfo {
                    version: v,
                    identity: cred.identity.clone(),
                    created: now,
                    promoted: None,
                    superseded: None,
                    revoked: None,
                    failed: None,
                });
                s.state.pending = Some(v);
                s.state.op = next(RotationStep::SetInTarget);
                self.write(s, vec![put]).await?;
                Ok(true)
            }
            RotationStep::SetInTarget | RotationStep::TestPending => {
                let Some(pending) = self.load(Some(v)).await? else {
                    return Err(self.corrupt("pending version missing"));
                };
                let r = if op.step == RotationStep::SetInTarget {
                    self.holding(
                        s,
                        self.attempt(op.step, v, || self.rotator.set(&ctx, &pending)),
                    )
                    .await?
                } else {
                    self.holding(
                        s,
                        self.attempt(op.step, v, || self.rotator.test(&ctx, &pending)),
                    )
                    .await?
                };
                match r {
                    Ok(()) => {
                        s.state.op = next(if op.step == RotationStep::SetInTarget {
                            RotationStep::TestPending
                        } else {
                            RotationStep::Promote
                        });
                        self.write(s, vec![]).await?;
                        Ok(true)
                    }
                    Err(_) => {
                        s.state.op = Some(Op {
                            step: RotationStep::RollBack,
                            version: v,
                            cause: Some(op.step),
                        });
                        self.write(s, vec![]).await?;
                        Ok(false)
                    }
                }
            }
            RotationStep::Promote => {
                let Some(pending) = self.load(Some(v)).await? else {
                    return Err(self.corrupt("pending version missing"));
                };
                if let Err((attempts, e)) = self
                    .holding(
                        s,
                        self.attempt(op.step, v, || self.rotator.promote(&ctx, &pending)),
                    )
                    .await?
                {
                    return Err(self.step_failed(op.step, v, attempts, &e));
                }
                let now = self.now();
                let old = s.state.current;
                if let Some(old) = old
                    && let Some(h) = s.state.info_mut(old)
                {
                    h.superseded = Some(now);
                }
                if let Some(h) = s.state.info_mut(v) {
                    h.promoted = Some(now);
                }
                s.state.previous = old;
                s.state.current = Some(v);
                s.state.pending = None;
                s.state.last_promoted = Some(now);
                let (_, grace_period) = self.schedule().await?;
                s.state.revoke_after = old.map(|_| now + grace_period);
                s.state.op = None;
                self.write(s, vec![]).await?;
                report.promoted = Some(v);
                Ok(true)
            }
            RotationStep::RevokePrevious => {
                if let Some(old) = self.load(Some(v)).await?
                    && let Err((attempts, e)) = self
                        .holding(
                            s,
                            self.attempt(op.step, v, || self.rotator.revoke(&ctx, &old)),
                        )
                        .await?
                {
                    return Err(self.step_failed(op.step, v, attempts, &e));
                }
                if let Some(h) = s.state.info_mut(v) {
                    h.revoked = Some(self.now());
                }
                if s.state.previous == Some(v) {
                    s.state.previous = None;
                    s.state.revoke_after = None;
                }
                s.state.op = None;
                self.write(s, vec![BatchOp::delete(sealed_key(&self.name, v))])
                    .await?;
                report.revoked = Some(v);
                Ok(true)
            }
            RotationStep::RollBack => {
                if let Some(failed) = self.load(Some(v)).await?
                    && let Err((attempts, e)) = self
                        .holding(
                            s,
                            self.attempt(op.step, v, || self.rotator.rollback(&ctx, &failed)),
                        )
                        .await?
                {
                    return Err(self.step_failed(op.step, v, attempts, &e));
                }
                if let Some(h) = s.state.info_mut(v) {
                    h.failed = Some(self.now());
                }
                if s.state.pending == Some(v) {
                    s.state.pending = None;
                }
                s.state.op = None;
                self.write(s, vec![BatchOp::delete(sealed_key(&self.name, v))])
                    .await?;
                report.rolled_back = Some((v, op.cause.unwrap_or(RotationStep::TestPending)));
                Ok(true)
            }
        }
    }

    pub(super) fn corrupt(&self, reason: &str) -> Error {
        RotationError::CorruptState {
            credential: self.name.clone(),
            reason: reason.to_owned(),
        }
        .into()
    }

    /// When the schedule should next act, if ever.
    pub(super) async fn next_due(&self) -> Result<Option<Timestamp>> {
        let (_, s) = read_state(&self.sr, &self.name).await?;
        let now = self.now();
        if let Some(lock) = &s.lock
            && lock.owner != self.owner
            && lock.expires > now
        {
            return Ok(Some(lock.expires));
        }
        if s.op.is_some() {
            return Ok(Some(now));
        }
        let mut due: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| due = Some(due.map_or(t, |d| d.min(t)));
        if s.previous.is_some()
            && let Some(t) = s.revoke_after
        {
            consider(t);
        }
        if let Some(interval) = self.schedule().await?.0 {
            match s.last_promoted {
                Some(t) => consider(t + interval),
                None => consider(now),
            }
        }
        Ok(due)
    }

    /// The interval and grace period in force: those of the rotation
    /// schedule applied from declaration files for this credential
    /// ([`declarative`](crate::declarative), read from the store each
    /// time), field by field, else [`RotationOptions::interval`] and
    /// [`RotationOptions::grace_period`].
    pub(super) async fn schedule(&self) -> Result<(Option<Duration>, Duration)> {
        let declared = crate::declarative::applied_rotation(&self.sr, &self.name).await?;
        let declared = declared.unwrap_or_default();
        let interval = declared
            .interval_secs
            .map(Duration::from_secs)
            .or(self.options.interval);
        let grace = declared
            .grace_period_secs
            .map_or(self.options.grace_period, Duration::from_secs);
        Ok((interval, grace))
    }

    /// Starts the schedule: a background task that rotates every
    /// [`RotationOptions::interval`] (or the applied schedule's interval),
    /// revokes `previous` when its grace period ends and resumes
    /// interrupted rotations, waiting on the clock in between. It looks
    /// again at least every [`SCHEDULE_RECHECK`] of the clock, so a
    /// schedule applied by another process takes effect within that. A
    /// rotation another engine holds is taken over when its lock lapses.
    /// Errors are reported as events and retried after the backoff.
    /// Dropping the handle stops the task.
    pub fn spawn_schedule(self: &Arc<Self>) -> ScheduleHandle {
        let engine = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                let due = match engine.next_due().await {
                    Ok(d) => d,
                    Err(_) => {
                        Some(engine.now() + engine.options.backoff_max.max(Duration::from_secs(1)))
                    }
                };
                let recheck = engine.now() + SCHEDULE_RECHECK;
                match due {
                    Some(t) if t <= recheck => {
                        tokio::select! {
                            () = engine.sr.clock().sleep_until(t) => {}
                            () = engine.wake.notified() => continue,
                        }
                    }
                    _ => {
                        tokio::select! {
                            () = engine.sr.clock().sleep_until(recheck) => {}
                            () = engine.wake.notified() => {}
                        }
                        continue;
                    }
                }
                match engine.tick().await {
                    // Busy: another engine holds the lock. Look again when
                    // it lapses (next_due), not after the failure backoff,
                    // so a dead holder is replaced within one lock TTL.
                    Ok(()) | Err(Error::Rotation(RotationError::Busy { .. })) => continue,
                    Err(_) => {}
                }
                // Failed steps were reported as events; wait before retrying.
                let retry = engine.now() + engine.options.backoff_max.max(Duration::from_secs(1));
                tokio::select! {
                    () = engine.sr.clock().sleep_until(retry) => {}
                    () = engine.wake.notified() => {}
                }
            }
        });
        ScheduleHandle { task }
    }

    /// One scheduled pass: resume/revoke, then rotate if the interval passed.
    pub(super) async fn tick(&self) -> Result<()> {
        self.resume_inner().await?;
        let (_, s) = read_state(&self.sr, &self.name).await?;
        let now = self.now();
        let rotate = match (self.schedule().await?.0, s.last_promoted) {
            (Some(_), None) => true,
            (Some(i), Some(t)) => t + i <= now,
            (None, _) => false,
        };
        if rotate {
            self.rotate_inner().await?;
        }
        Ok(())
    }
}

//! The engine's public operations: open, status, import, rotate, resume
//! and revoke what is due.

use super::*;

impl RotationEngine {
    /// An engine for credential `name` in `sr`, rotated by `rotator`. Does
    /// not act: call [`RotationEngine::resume`] after a restart.
    pub(crate) async fn open(
        sr: Strongroom,
        name: &str,
        rotator: Arc<dyn Rotator>,
        options: RotationOptions,
    ) -> Result<Self> {
        validate_name(name)?;
        let owner = match &options.owner_id {
            Some(o) => o.clone(),
            None => random_owner()?,
        };
        let (events, _) = broadcast::channel(256);
        // Fail early on a corrupt state record.
        read_state(&sr, name).await?;
        Ok(Self {
            state_key: format!("{STATE_PREFIX}{name}"),
            context_path: format!("{STATE_PREFIX}{name}"),
            name: name.to_owned(),
            sr,
            rotator,
            options,
            owner,
            events,
            local: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            last_error: std::sync::Mutex::new(None),
        })
    }

    /// The credential name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock owner id of this engine.
    pub fn owner_id(&self) -> &str {
        &self.owner
    }

    /// Events for every step (never secrets). Slow receivers miss old events.
    pub fn subscribe(&self) -> broadcast::Receiver<RotationEvent> {
        self.events.subscribe()
    }

    /// The stored versions by stage.
    pub async fn staged(&self) -> Result<StagedCredentials> {
        let state = read_state(&self.sr, &self.name).await?.1;
        staged_from(&self.sr, &self.name, &state).await
    }

    /// The non-secret state.
    pub async fn status(&self) -> Result<RotationStatus> {
        let s = read_state(&self.sr, &self.name).await?.1;
        Ok(RotationStatus {
            pending: s.pending,
            current: s.current,
            previous: s.previous,
            revoke_previous_at: s.previous.and(s.revoke_after),
            last_promoted: s.last_promoted,
            in_flight: s.op.map(|o| (o.step, o.version)),
            locked: s.lock.map(|l| (l.owner, l.expires)),
            history: s.history,
        })
    }

    /// Stores an existing credential (for example today's database password)
    /// as `current` after testing it in the target. Refused if a current
    /// version exists.
    pub async fn import_current(
        &self,
        identity: impl Into<String>,
        secret: SecretBytes,
    ) -> Result<u64> {
        let _local = self.local.lock().await;
        let mut s = self.acquire().await?;
        if s.state.current.is_some() || s.state.op.is_some() {
            self.release(&mut s).await?;
            return Err(RotationError::AlreadyInitialized {
                credential: self.name.clone(),
            }
            .into());
        }
        let version = s.state.next_version;
        let cred = Credential::new(version, identity, secret);
        let ctx = RotationContext {
            credential: &self.name,
            version,
            current: None,
            previous: None,
        };
        let tested = self
            .holding(
                &mut s,
                self.attempt(RotationStep::TestPending, version, || {
                    self.rotator.test(&ctx, &cred)
                }),
            )
            .await?;
        if let Err((attempts, e)) = tested {
            self.release(&mut s).await?;
            return Err(self.step_failed(RotationStep::TestPending, version, attempts, &e));
        }
        let now = self.now();
        let op = self.store_version_op(&cred).await?;
        s.state.next_version = version + 1;
        s.state.current = Some(version);
        s.state.last_promoted = Some(now);
        s.state.history.push(VersionInfo {
            version,
            identity: cred.identity.clone(),
            created: now,
            promoted: Some(now),
            superseded: None,
            revoked: None,
            failed: None,
        });
        self.write(&mut s, vec![op]).await?;
        // The target learns that this version is current (an API-key
        // verifier starts accepting it; database rotators have nothing to do).
        let promoted = self
            .holding(
                &mut s,
                self.attempt(RotationStep::Promote, version, || {
                    self.rotator.promote(&ctx, &cred)
                }),
            )
            .await;
        let r = match promoted {
            Ok(Ok(())) => Ok(()),
            Ok(Err((attempts, e))) => {
                Err(self.step_failed(RotationStep::Promote, version, attempts, &e))
            }
            Err(e) => Err(e),
        };
        self.finish(&mut s, r).await?;
        self.emit(RotationStep::Promote, version, StepOutcome::Completed)
            .await?;
        self.wake.notify_one();
        Ok(version)
    }

    /// Rotates now: finishes any interrupted rotation, revokes a previous
    /// version still in its grace period (its slot is about to be reused),
    /// then creates, sets, tests and promotes a new version. Creates the
    /// first version if there is none. Fails with
    /// [`RotationError::RolledBack`] if the new version did not work (the
    /// current one is untouched).
    pub async fn rotate_now(&self) -> Result<RotationReport> {
        let r = self.rotate_inner().await;
        // tell the schedule (it recomputes its next deadline)
        self.wake.notify_one();
        r
    }

    /// [`RotationEngine::rotate_now`] without waking the schedule (which
    /// calls this itself).
    pub(super) async fn rotate_inner(&self) -> Result<RotationReport> {
        let _local = self.local.lock().await;
        let mut s = self.acquire().await?;
        let mut report = RotationReport::default();
        let r = self.rotate_locked(&mut s, &mut report).await;
        self.finish(&mut s, r).await?;
        match report.rolled_back {
            Some((version, step)) => Err(RotationError::RolledBack {
                credential: self.name.clone(),
                version,
                step,
                message: self.take_last_error(),
            }
            .into()),
            None => Ok(report),
        }
    }

    pub(super) async fn rotate_locked(
        &self,
        s: &mut Session,
        report: &mut RotationReport,
    ) -> Result<()> {
        self.drive(s, report).await?;
        if report.rolled_back.is_some() {
            return Ok(());
        }
        if let Some(prev) = s.state.previous {
            s.state.op = Some(Op {
                step: RotationStep::RevokePrevious,
                version: prev,
                cause: None,
            });
            self.write(s, vec![]).await?;
            self.drive(s, report).await?;
        }
        let version = s.state.next_version;
        s.state.next_version = version + 1;
        s.state.op = Some(Op {
            step: RotationStep::CreatePending,
            version,
            cause: None,
        });
        self.write(s, vec![]).await?;
        self.drive(s, report).await
    }

    /// Continues an interrupted rotation (after a crash), and revokes the
    /// previous version if its grace period is over. Returns what was done.
    pub async fn resume(&self) -> Result<RotationReport> {
        let r = self.resume_inner().await;
        self.wake.notify_one();
        r
    }

    pub(super) async fn resume_inner(&self) -> Result<RotationReport> {
        let _local = self.local.lock().await;
        let mut report = RotationReport::default();
        let (_, st) = read_state(&self.sr, &self.name).await?;
        let revoke_due = st.previous.is_some()
            && st.revoke_after.is_some_and(|t| t <= self.now())
            && st.op.is_none();
        if st.op.is_none() && !revoke_due {
            return Ok(report);
        }
        let mut s = self.acquire().await?;
        let r = async {
            self.drive(&mut s, &mut report).await?;
            self.revoke_if_due(&mut s, &mut report).await
        }
        .await;
        self.finish(&mut s, r).await?;
        Ok(report)
    }

    /// Revokes the previous version if its grace period is over. Returns
    /// whether it did.
    pub async fn revoke_due(&self) -> Result<bool> {
        Ok(self.resume().await?.revoked.is_some())
    }

    pub(super) async fn revoke_if_due(
        &self,
        s: &mut Session,
        report: &mut RotationReport,
    ) -> Result<()> {
        let Some(prev) = s.state.previous else {
            return Ok(());
        };
        if s.state.op.is_some() || s.state.revoke_after.is_some_and(|t| t > self.now()) {
            return Ok(());
        }
        s.state.op = Some(Op {
            step: RotationStep::RevokePrevious,
            version: prev,
            cause: None,
        });
        self.write(s, vec![]).await?;
        self.drive(s, report).await
    }

    /// Releases the lock after `r`; a storage failure while releasing is
    /// reported only if `r` succeeded (the lock then expires by itself).
    pub(super) async fn finish(&self, s: &mut Session, r: Result<()>) -> Result<()> {
        match r {
            Ok(()) => self.release(s).await,
            Err(e @ Error::Rotation(RotationError::LostLock { .. })) => Err(e),
            Err(e) => {
                let _ = self.release(s).await;
                Err(e)
            }
        }
    }
}

//! Where a pool's credentials come from: the source trait, and a rotation
//! engine's staged credentials as a source.

use super::*;

/// Where the pool's credentials come from.
#[async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The name shown in errors and events.
    fn name(&self) -> &str;

    /// The stored versions (for a lease: just `current`).
    async fn staged(&self) -> strongroom::Result<StagedCredentials>;

    /// Resolves when the credentials may have changed (a promotion, a new
    /// lease). The default never resolves (reactive healing only).
    async fn changed(&self) {
        std::future::pending::<()>().await;
    }
}

/// How often a [`RotatedSource`] reads the rotation record when the store
/// cannot announce changes.
pub const POLL_WITHOUT_NOTICES: Duration = Duration::from_millis(500);

/// How many times a consistent read of the stored versions is attempted
/// before the last read is used as it is.
pub(super) const SNAPSHOT_ATTEMPTS: usize = 8;

/// A [`CredentialSource`] over a rotated credential in a [`Strongroom`](strongroom::Strongroom).
///
/// It follows the credential's rotation record in storage: a change written
/// by any process sharing the store (a promotion, a roll-back, a pending
/// password set in the target) is reported through
/// [`CredentialSource::changed`] as soon as the store announces it (see
/// [`strongroom::storage::Storage::watch`]), and otherwise within the
/// polling interval ([`POLL_WITHOUT_NOTICES`] when the store cannot
/// announce; [`DEFAULT_FALLBACK`], for lost notices, when it can). With an
/// engine in the same process ([`RotatedSource::with_engine`]) it also
/// reports that engine's steps as they happen.
pub struct RotatedSource {
    pub(super) sr: Door,
    pub(super) name: String,
    pub(super) state_key: String,
    pub(super) events: Option<tokio::sync::Mutex<broadcast::Receiver<RotationEvent>>>,
    pub(super) watch: tokio::sync::Mutex<RecordWatch>,
    pub(super) notified: bool,
}

/// The storage side of a [`RotatedSource`]'s change reports.
pub(super) struct RecordWatch {
    pub(super) watcher: ChangeWatcher,
    /// The rotation record as the polling fallback last read it (`None`: not
    /// read yet).
    pub(super) polled: Option<Option<Vec<u8>>>,
}

impl fmt::Debug for RotatedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatedSource")
            .field("name", &self.name)
            .field("events", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl RotatedSource {
    /// Reads credential `name` from `sr` and follows its rotation record in
    /// storage (rotations done by any process). Give each pool its own
    /// source: change reports are consumed by the pool that waits for them.
    pub fn new(sr: Door, name: &str) -> Self {
        let watch = Self::watch_store(&sr, None);
        Self {
            state_key: format!("{STATE_PREFIX}{name}"),
            name: name.to_owned(),
            sr,
            events: None,
            notified: watch.watcher.is_notified(),
            watch: tokio::sync::Mutex::new(watch),
        }
    }

    /// Reads the engine's credential, follows its events and its rotation
    /// record in storage.
    pub fn with_engine(sr: Door, engine: &RotationEngine) -> Self {
        let mut source = Self::new(sr, engine.name());
        source.events = Some(tokio::sync::Mutex::new(engine.subscribe()));
        source
    }

    /// Reads the rotation record every `every` when no notice arrives (by
    /// default [`POLL_WITHOUT_NOTICES`] if the store cannot announce
    /// changes, [`DEFAULT_FALLBACK`] if it can).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        let watch = Self::watch_store(&self.sr, Some(every));
        self.notified = watch.watcher.is_notified();
        self.watch = tokio::sync::Mutex::new(watch);
        self
    }

    /// Whether the store announces changes (otherwise only polling finds
    /// them).
    pub fn is_notified(&self) -> bool {
        self.notified
    }

    pub(super) fn watch_store(sr: &Door, every: Option<Duration>) -> RecordWatch {
        let feed = sr.storage().watch();
        let every = every.unwrap_or(if feed.is_some() {
            DEFAULT_FALLBACK
        } else {
            POLL_WITHOUT_NOTICES
        });
        RecordWatch {
            watcher: ChangeWatcher::new(feed, every),
            polled: None,
        }
    }

    /// Resolves when the rotation record changes in storage.
    pub(super) async fn record_changed(&self) {
        let mut w = self.watch.lock().await;
        loop {
            match w.watcher.next().await {
                StorageEvent::Changed(keys) => {
                    // Version records change only in the same batch as the
                    // rotation record.
                    if keys.contains(&self.state_key) {
                        return;
                    }
                }
                StorageEvent::Unknown => {
                    // Lost notices or the polling interval: compare the record.
                    match self.sr.storage().get(&self.state_key).await {
                        Ok(now) => {
                            let changed = w.polled.as_ref() != Some(&now);
                            w.polled = Some(now);
                            if changed {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!(
                            credential = %self.name,
                            error = %e,
                            "could not read the rotation record; polling again"
                        ),
                    }
                }
            }
        }
    }

    /// Resolves when the in-process engine completes a step that changes
    /// what works.
    pub(super) async fn engine_changed(
        events: &tokio::sync::Mutex<broadcast::Receiver<RotationEvent>>,
    ) {
        let mut rx = events.lock().await;
        loop {
            match rx.recv().await {
                Ok(ev)
                    if ev.outcome == StepOutcome::Completed
                        && matches!(
                            ev.step,
                            RotationStep::Promote
                                | RotationStep::SetInTarget
                                | RotationStep::RollBack
                        ) =>
                {
                    return;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    return std::future::pending().await;
                }
            }
        }
    }
}

#[async_trait]
impl CredentialSource for RotatedSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// The stored versions as of one state of the rotation record. The
    /// engine deletes a version record only in the batch that also rewrites
    /// the rotation record, so a read during which the record did not change
    /// saw every version that state names. (Reading the record and then the
    /// versions it names, while a rotator elsewhere runs back to back, can
    /// otherwise find them all revoked and deleted: an empty list.)
    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        let storage = self.sr.storage();
        let mut before = storage.get(&self.state_key).await?;
        let mut last = StagedCredentials::default();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            last = self.sr.load_staged(&self.name).await?;
            let after = storage.get(&self.state_key).await?;
            if after == before {
                return Ok(last);
            }
            before = after;
        }
        // Still changing: a partial read is acceptable here, since a
        // refresh that finds nothing working in it reads again.
        tracing::debug!(credential = %self.name, "rotation record kept changing while read");
        Ok(last)
    }

    async fn changed(&self) {
        match &self.events {
            None => self.record_changed().await,
            Some(events) => {
                tokio::select! {
                    () = self.record_changed() => {}
                    () = Self::engine_changed(events) => {}
                }
            }
        }
    }
}

//! Building a manager, its bookkeeping, and restoring its memory from
//! storage.

use super::*;

impl LeaseManager {
    /// A manager over `store`'s storage, behind its barrier (every lease
    /// record, index segment and counter is sealed under the keyring and
    /// bound to its storage key; see [`Strongroom::barrier_remembering`]).
    /// Call [`LeaseManager::restore`] before use (every operation restores
    /// on first use if it has not been called).
    pub(crate) fn new(
        store: &Strongroom,
        clock: Arc<dyn Clock>,
        config: LeaseConfig,
    ) -> Result<Self> {
        config.validate()?;
        let storage = store.barrier_remembering();
        let member = match &config.member_id {
            Some(id) => id.clone(),
            None => claim::random_member_id()?,
        };
        let (events, _) = broadcast::channel(config.event_capacity);
        let mem = Mem {
            quota_counts: vec![0; config.prefix_quotas.len()],
            ..Mem::default()
        };
        Ok(Self {
            storage,
            clock,
            config,
            revokers: RwLock::new(HashMap::new()),
            mem: Mutex::new(mem),
            write: tokio::sync::Mutex::new(()),
            restored: OnceCell::new(),
            events,
            wake: Notify::new(),
            member,
            in_flight: Mutex::default(),
            released: Notify::new(),
            issues: Mutex::default(),
        })
    }

    /// This manager's member id, the owner named in its claims
    /// ([`LeaseConfig::member_id`], or the random one it was given).
    pub fn member_id(&self) -> &str {
        &self.member
    }

    /// The manager's settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Registers (or replaces) the revoker for `engine`.
    pub fn register_revoker(&self, engine: impl Into<String>, revoker: Arc<dyn Revoker>) {
        self.revokers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(engine.into(), revoker);
    }

    /// A receiver of every lease event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LeaseEvent> {
        self.events.subscribe()
    }

    /// Bookkeeping figures.
    pub fn stats(&self) -> LeaseStats {
        let mem = self.mem();
        LeaseStats {
            in_memory: mem.index.len() + mem.recheck.len(),
            live_leases: mem.total,
            loaded_until: mem.loaded_until,
        }
    }

    /// Sets the lease gauges of [`crate::metrics`] from [`LeaseManager::stats`]:
    /// [`LEASES`](crate::metrics::LEASES) with `state="live"` (live leases in
    /// the store, as this manager last counted them) and `state="indexed"`
    /// (expiry index entries in memory). Call it when the figures are
    /// wanted (before a scrape, on a timer); nothing calls it by itself.
    pub fn record_metrics(&self) {
        let stats = self.stats();
        crate::metrics::leases("live", stats.live_leases);
        crate::metrics::leases("indexed", stats.in_memory as u64);
    }

    pub(super) fn mem(&self) -> MutexGuard<'_, Mem> {
        self.mem.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn emit(&self, event: LeaseEvent) {
        // No subscribers is not an error.
        let _ = self.events.send(event);
    }

    pub(super) fn revoker(&self, engine: &str) -> Option<Arc<dyn Revoker>> {
        self.revokers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(engine)
            .cloned()
    }

    /// Loads the per-path counts and the index entries due within the
    /// restore horizon. Runs once; later calls return the first result.
    /// Leases being revoked when the previous process stopped are due at
    /// their next try, so their revocation continues.
    pub async fn restore(&self) -> Result<RestoreStats> {
        self.restored
            .get_or_try_init(|| self.load_initial())
            .await
            .copied()
    }

    pub(super) async fn load_initial(&self) -> Result<RestoreStats> {
        let _w = self.write.lock().await;
        self.convert_legacy_index().await?;
        // Per path: the count, and its keys as read.
        let mut sums: HashMap<String, (i128, Vec<StoredKey>)> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .scan(COUNT_PREFIX, after.as_deref(), SCAN_PAGE)
                .await?;
            let done = page.len() < SCAN_PAGE;
            after = page.last_key();
            for (key, value) in page {
                let path = commit::count_path(key.get(COUNT_PREFIX.len()..).unwrap_or_default());
                let n = commit::count_value(&key, &value)?;
                let entry = sums.entry(path.to_owned()).or_default();
                entry.0 += n;
                entry.1.push((key, value));
            }
            if done {
                break;
            }
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        for (path, (n, keys)) in sums {
            if n > 0 {
                counts.insert(path, u64::try_from(n).unwrap_or(u64::MAX));
            } else {
                self.drop_zero_count(keys).await?;
            }
        }
        let now = self.clock.now();
        let until = now + self.config.restore_horizon;
        let mut entries = Vec::new();
        self.scan_index(None, until, &mut entries).await?;
        let loaded = entries.len();
        let mut mem = self.mem();
        mem.index.extend(entries);
        mem.loaded_until = until;
        mem.next_rescan = now + self.config.rescan_interval;
        mem.total = counts.values().sum();
        mem.quota_counts = self
            .config
            .prefix_quotas
            .iter()
            .map(|q| {
                counts
                    .iter()
                    .filter(|(p, _)| under_prefix(p, &q.prefix))
                    .map(|(_, n)| n)
                    .sum()
            })
            .collect();
        mem.path_counts = counts;
        Ok(RestoreStats {
            loaded,
            live_leases: mem.total,
        })
    }

    /// Deletes the count keys of a path whose count is zero (two managers
    /// that each took the count down concurrently, in different shards, can
    /// leave such keys). Each key must be unchanged: deleting keys that sum
    /// to zero leaves any other change to the count intact. A conflict
    /// leaves them for a later restore.
    pub(super) async fn drop_zero_count(&self, keys: Vec<StoredKey>) -> Result<()> {
        let mut ops = Vec::with_capacity(2 * keys.len());
        for (key, value) in keys {
            ops.push(BatchOp::expect(key.clone(), Some(value)));
            ops.push(BatchOp::delete(key));
        }
        match self.storage.batch(ops).await {
            Ok(()) | Err(Error::StorageConflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Index entries after `from` (exclusive) up to `until` (inclusive).
    pub(super) async fn scan_index(
        &self,
        from: Option<Timestamp>,
        until: Timestamp,
        out: &mut Vec<(Timestamp, LeaseId)>,
    ) -> Result<()> {
        let mut after = from.map(segment::scan_start);
        // Pages grow from small: every segment read is opened through the
        // barrier, and the scan usually stops at the horizon long before a
        // full page (a bucket is at most 16 segments).
        let mut page_size = 64;
        loop {
            let page = self
                .storage
                .scan(segment::DUE_PREFIX, after.as_deref(), page_size)
                .await?;
            let done = page.len() < page_size;
            page_size = (page_size * 2).min(SCAN_PAGE);
            for (key, value) in &page {
                let bucket = segment::bucket_of_key(key)
                    .ok_or_else(|| Error::corrupt(key.clone(), "bad lease index segment key"))?;
                if bucket > until.as_millis() {
                    return Ok(());
                }
                segment::decode_into(key, value, from, until, out)?;
            }
            after = page.last_key();
            if done {
                return Ok(());
            }
        }
    }

    /// Converts a store's legacy per-lease index keys into segments, one
    /// page at a time, each page in one atomic batch (segments checked
    /// unchanged, entries added once, legacy keys deleted), so a crash
    /// midway leaves a store this converts again correctly.
    pub(super) async fn convert_legacy_index(&self) -> Result<()> {
        loop {
            let page = self
                .storage
                .scan(LEGACY_EXP_PREFIX, None, SCAN_PAGE)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            let mut edits = commit::SegmentEdits::default();
            let mut ops = Vec::with_capacity(page.len() + 16);
            for (key, _) in &page {
                let (t, id) = parse_legacy_exp_key(key)
                    .ok_or_else(|| Error::corrupt(key.clone(), "bad lease index key"))?;
                edits.add(&self.storage, t, id).await?;
                ops.push(BatchOp::delete(key.clone()));
            }
            edits.push_ops(&mut ops);
            match self.storage.batch(ops).await {
                // Another manager converted (part of) this page first: the
                // next scan sees what is left.
                Ok(()) | Err(Error::StorageConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the horizon forward when half of it has been used up.
    pub(super) async fn advance_horizon(&self, now: Timestamp) -> Result<()> {
        let half = self.config.restore_horizon / 2;
        if now + half <= self.mem().loaded_until {
            return Ok(());
        }
        let _w = self.write.lock().await;
        let from = self.mem().loaded_until;
        let until = now + self.config.restore_horizon;
        if until <= from {
            return Ok(());
        }
        let mut entries = Vec::new();
        self.scan_index(Some(from), until, &mut entries).await?;
        let mut mem = self.mem();
        mem.index.extend(entries);
        mem.loaded_until = until;
        Ok(())
    }

    pub(super) fn expiring_soon_at(&self, from: Timestamp, expires_at: Timestamp) -> Timestamp {
        match self.config.expiring_soon_fraction {
            Some(f) => {
                let span = expires_at.saturating_since(from).as_millis() as f64;
                from + Duration::from_millis((span * f) as u64)
            }
            None => expires_at,
        }
    }
}

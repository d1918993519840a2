//! Leased dynamic credentials as a pool's source.

use super::*;

/// A [`CredentialSource`] over dynamic PostgreSQL credentials: it holds a
/// lease and, once `refresh_fraction` of the lease's TTL has passed by the
/// clock, issues a fresh credential (a new login role) and reports the
/// change, so the pool swaps before the old lease ends. The previous
/// credential stays in `previous` and keeps working until its own lease ends
/// (PostgreSQL refuses it after `VALID UNTIL`, and revocation terminates its
/// sessions); with the default fraction of one half, the pool has half a TTL
/// to recycle its old connections, which must exceed
/// [`HealingOptions::recycle_window`]; give the pool an `idle_timeout` well
/// under half the TTL too, so an idle connection opened with the old role is
/// closed before that role is revoked.
pub struct LeaseSource {
    pub(super) engine: Arc<crate::dynamic::PgDynamicCredentials>,
    pub(super) definition: crate::dynamic::PgRoleDefinition,
    pub(super) ttl: Option<Duration>,
    pub(super) clock: Arc<dyn strongroom::clock::Clock>,
    pub(super) refresh_fraction: f64,
    pub(super) slots: tokio::sync::Mutex<LeaseSlots>,
}

pub(super) struct LeaseSlots {
    pub(super) version: u64,
    pub(super) refresh_at: strongroom::clock::Timestamp,
    pub(super) current: Option<Credential>,
    pub(super) previous: Option<Credential>,
}

impl fmt::Debug for LeaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseSource")
            .field("definition", &self.definition.name())
            .field("refresh_fraction", &self.refresh_fraction)
            .finish_non_exhaustive()
    }
}

impl LeaseSource {
    /// Issues the first credential from `definition` (TTL `ttl`, or the
    /// definition's default) and refreshes at `refresh_fraction` (0.05..=0.95)
    /// of each lease's TTL.
    pub async fn new(
        engine: Arc<crate::dynamic::PgDynamicCredentials>,
        definition: crate::dynamic::PgRoleDefinition,
        ttl: Option<Duration>,
        clock: Arc<dyn strongroom::clock::Clock>,
        refresh_fraction: f64,
    ) -> strongroom::Result<Self> {
        let source = Self {
            engine,
            definition,
            ttl,
            clock,
            refresh_fraction: refresh_fraction.clamp(0.05, 0.95),
            slots: tokio::sync::Mutex::new(LeaseSlots {
                version: 0,
                refresh_at: strongroom::clock::Timestamp::MAX,
                current: None,
                previous: None,
            }),
        };
        source.replace().await?;
        Ok(source)
    }

    /// Issues a new credential now; the current one becomes `previous`.
    pub async fn replace(&self) -> strongroom::Result<()> {
        let (lease, cred) = self
            .engine
            .issue(&self.definition, self.ttl)
            .await
            .map_err(strongroom::Error::from)?;
        let mut slots = self.slots.lock().await;
        slots.version += 1;
        let life = lease.expires_at().saturating_since(lease.issued_at());
        slots.refresh_at = lease.issued_at() + life.mul_f64(self.refresh_fraction);
        let next = Credential::new(
            slots.version,
            cred.username.clone(),
            strongroom::SecretBytes::copy_from(cred.password.expose_secret().as_bytes()),
        );
        slots.previous = slots.current.replace(next);
        Ok(())
    }
}

#[async_trait]
impl CredentialSource for LeaseSource {
    fn name(&self) -> &str {
        self.definition.name()
    }

    async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        let slots = self.slots.lock().await;
        Ok(StagedCredentials {
            pending: None,
            current: slots.current.clone(),
            previous: slots.previous.clone(),
        })
    }

    async fn changed(&self) {
        loop {
            let at = self.slots.lock().await.refresh_at;
            self.clock.sleep_until(at).await;
            match self.replace().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, definition = self.definition.name(), "could not issue a replacement credential; retrying");
                    // Try again a little later by the same clock; the old
                    // lease is still valid until its end.
                    let retry = self.clock.now() + Duration::from_secs(1);
                    self.slots.lock().await.refresh_at = retry;
                }
            }
        }
    }
}

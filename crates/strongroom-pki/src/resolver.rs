//! [`CertResolver`]: serves a certificate to rustls and swaps in a renewed
//! one before expiry, without restarting anything.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use strongroom::Handle;
use strongroom::clock::Timestamp;
use strongroom::lease::LeaseId;

use crate::engine::Pki;
use crate::error::{PkiError, Result};
use crate::{IssueRequest, IssuedCertificate, Serial};

/// The certificate being served.
struct Served {
    key: Arc<CertifiedKey>,
    serial: Serial,
    lease_id: LeaseId,
    not_after: Timestamp,
    renew_at: Timestamp,
}

/// A rustls certificate resolver, for servers
/// ([`ResolvesServerCert`]) and clients ([`ResolvesClientCert`]), that
/// always serves the newest certificate it holds.
///
/// It issues its first certificate when built, through the principal's
/// handle (so every issue is checked and audited like
/// [`Pki::issue`]), and a new one for the same request whenever
/// [`renew_if_due`](Self::renew_if_due) finds two thirds of the current
/// one's lifetime gone on the store's clock, or [`renew`](Self::renew) is
/// called. Connections already open keep the certificate they started
/// with; new handshakes get the new one at once. The replaced certificate
/// is not revoked: it stays valid until it expires (its lease expires with
/// it).
///
/// The application calls [`renew_if_due`](Self::renew_if_due) from its
/// own timer, or lets [`spawn_renewal`](Self::spawn_renewal) run a task
/// that does; that task sleeps on the store's clock and stops when its
/// [`RenewalTask`] is dropped.
pub struct CertResolver {
    pki: Pki,
    handle: Handle,
    role: String,
    request: IssueRequest,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Served>>,
    renewing: tokio::sync::Mutex<()>,
    renewals: AtomicU64,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let served = self.served();
        f.debug_struct("CertResolver")
            .field("mount", &self.pki.mount())
            .field("role", &self.role)
            .field("principal", &self.handle.principal().name())
            .field("serial", &served.serial)
            .field("not_after", &served.not_after)
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    /// Issues the first certificate of `request` under `role` for the
    /// principal of `handle` (see [`Pki::issue`]) and serves it, using
    /// rustls's `ring` provider.
    pub async fn new(
        pki: &Pki,
        handle: &Handle,
        role: &str,
        request: IssueRequest,
    ) -> Result<Arc<Self>> {
        Self::with_provider(
            pki,
            handle,
            role,
            request,
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .await
    }

    /// [`CertResolver::new`] loading keys with `provider`.
    pub async fn with_provider(
        pki: &Pki,
        handle: &Handle,
        role: &str,
        request: IssueRequest,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>> {
        let issued = pki.issue(handle, role, request.clone()).await?;
        let served = serve(&issued, &provider)?;
        Ok(Arc::new(Self {
            pki: pki.clone(),
            handle: handle.clone(),
            role: role.to_owned(),
            request,
            provider,
            current: RwLock::new(Arc::new(served)),
            renewing: tokio::sync::Mutex::new(()),
            renewals: AtomicU64::new(0),
        }))
    }

    fn served(&self) -> Arc<Served> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The certificate and key being served now.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.served().key.clone()
    }

    /// The serial of the certificate being served now.
    pub fn serial(&self) -> Serial {
        self.served().serial.clone()
    }

    /// The lease of the certificate being served now.
    pub fn lease_id(&self) -> LeaseId {
        self.served().lease_id
    }

    /// When the certificate being served expires.
    pub fn not_after(&self) -> Timestamp {
        self.served().not_after
    }

    /// When it is due for renewal: two thirds into its lifetime.
    pub fn renew_at(&self) -> Timestamp {
        self.served().renew_at
    }

    /// How many times a new certificate was swapped in.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// Renews if the store's clock has reached [`renew_at`](Self::renew_at);
    /// returns whether it did. Concurrent calls renew once.
    pub async fn renew_if_due(&self) -> Result<bool> {
        let _one = self.renewing.lock().await;
        if self.pki.now() < self.served().renew_at {
            return Ok(false);
        }
        self.renew_locked().await?;
        Ok(true)
    }

    /// Issues a new certificate now and serves it; returns its serial. On
    /// an error the current certificate stays.
    pub async fn renew(&self) -> Result<Serial> {
        let _one = self.renewing.lock().await;
        self.renew_locked().await
    }

    async fn renew_locked(&self) -> Result<Serial> {
        let issued = self
            .pki
            .issue(&self.handle, &self.role, self.request.clone())
            .await?;
        let served = Arc::new(serve(&issued, &self.provider)?);
        let serial = served.serial.clone();
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = served;
        self.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(mount = self.pki.mount(), role = %self.role, serial = %serial, "certificate renewed");
        Ok(serial)
    }

    /// Runs [`renew_if_due`](Self::renew_if_due) in a tokio task, waking at
    /// each [`renew_at`](Self::renew_at) on the store's clock (a moved
    /// [`ManualClock`](strongroom::clock::ManualClock) wakes it); failed
    /// renewals are retried with the mount's backoff. The task holds the
    /// resolver weakly and ends when it is dropped, or when the returned
    /// [`RenewalTask`] is.
    pub fn spawn_renewal(self: &Arc<Self>) -> RenewalTask {
        let weak: Weak<Self> = Arc::downgrade(self);
        let clock = self.pki.inner.clock.clone();
        let backoff = self.pki.inner.options.retry;
        let task = tokio::spawn(async move {
            let mut retries = backoff.retries();
            loop {
                let Some(me) = weak.upgrade() else { return };
                let due = me.renew_at();
                drop(me);
                clock.sleep_until(due).await;
                let Some(me) = weak.upgrade() else { return };
                match me.renew_if_due().await {
                    Ok(_) => retries.reset(),
                    Err(e) => {
                        tracing::warn!(mount = me.pki.mount(), role = %me.role, error = %e, "certificate renewal failed; retrying");
                        drop(me);
                        tokio::time::sleep(retries.next_delay()).await;
                    }
                }
            }
        });
        RenewalTask { task: Some(task) }
    }
}

fn serve(issued: &IssuedCertificate, provider: &CryptoProvider) -> Result<Served> {
    let key = CertifiedKey::from_der(issued.tls_chain(), issued.private_key_der(), provider)
        .map_err(|e| PkiError::Tls(format!("loading the issued key: {e}")))?;
    let lifetime = issued.not_after.saturating_since(issued.not_before);
    Ok(Served {
        key: Arc::new(key),
        serial: issued.serial.clone(),
        lease_id: issued.lease_id,
        not_after: issued.not_after,
        renew_at: issued.not_before + lifetime / 3 * 2,
    })
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }
}

impl ResolvesClientCert for CertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The background renewal of [`CertResolver::spawn_renewal`]; dropping it
/// stops the task.
#[derive(Debug)]
pub struct RenewalTask {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RenewalTask {
    /// Whether the task has ended (its resolver was dropped).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the task and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RenewalTask {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

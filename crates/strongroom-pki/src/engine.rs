//! [`Pki`]: one mount of the certificate authority, and the audited path
//! every operation takes through a principal's handle.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strongroom::Handle;
use strongroom::audit::{AuditEvent, Operation};
use strongroom::backoff::Backoff;
use strongroom::clock::{Clock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::LeaseManager;
use strongroom::policy::Capability;
use strongroom::storage::DynStorage;

use crate::ca::CaSigner;
use crate::crl::CertRevoker;
use crate::error::{PkiError, Result};
use crate::record::Keys;
use crate::role::check_name;

/// Tunables of a mount.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PkiOptions {
    /// How long a signed CRL is valid (its `next_update` is this far after
    /// its `this_update`); [`Pki::crl`] signs a new one once half of it has
    /// passed, or as soon as the revoked set changed. Default 24 hours.
    pub crl_lifetime: Duration,
    /// The delays between compare-and-set retries when another process
    /// wrote the same record first. Default 5 ms doubling to 200 ms,
    /// jittered.
    pub retry: Backoff,
    /// Compare-and-set attempts before [`PkiError::Contended`]. Default 20.
    pub max_attempts: u32,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            crl_lifetime: Duration::from_secs(24 * 3600),
            retry: Backoff::new(Duration::from_millis(5), Duration::from_millis(200))
                .with_jitter(0.5),
            max_attempts: 20,
        }
    }
}

/// One mount of the internal certificate authority: its CA, its roles, the
/// certificates it issued and its CRL, all stored behind the store's
/// barrier under `pki/<mount>/`. Cheap to clone.
///
/// Built once per process from a [`Door`] (it reads and writes its own
/// records unchecked, like a [`LeaseManager`]); every public operation
/// then takes the [`Handle`] of the principal it acts for, checks that
/// principal's policies and audits the call:
///
/// | method | capability | path | audit operation |
/// | --- | --- | --- | --- |
/// | [`create_root`](Self::create_root), [`create_intermediate`](Self::create_intermediate) | `sudo` | `pki/<mount>/ca` (and the parent's, for an intermediate) | `write` |
/// | [`put_role`](Self::put_role) | `sudo` | `pki/<mount>/role/<name>` | `write` |
/// | [`role`](Self::role) | `read` | `pki/<mount>/role/<name>` | `read` |
/// | [`ca`](Self::ca) | `read` | `pki/<mount>/ca` | `read` |
/// | [`issue`](Self::issue) | `lease` | `pki/<mount>/issue/<role>` | `lease_issue` |
/// | [`revoke`](Self::revoke) | `lease` | the lease's path, `pki/<mount>/issue/<role>` | `lease_revoke` |
/// | [`crl`](Self::crl) | `read` | `pki/<mount>/crl` | `read` |
#[derive(Clone)]
pub struct Pki {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) mount: String,
    pub(crate) keys: Keys,
    pub(crate) door: Door,
    pub(crate) barrier: DynStorage,
    pub(crate) manager: Arc<LeaseManager>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) signer: tokio::sync::OnceCell<Arc<CaSigner>>,
    pub(crate) options: PkiOptions,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("mount", &self.inner.mount)
            .field("member", &self.inner.manager.member_id())
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// The mount `mount` (1 to 64 of `a-z0-9-_`) of the store `door`
    /// opens, with default options. Registers the mount's revoker (engine
    /// [`Pki::engine`]) with `manager`, which should run on the store's
    /// clock: revoking or expiring a certificate's lease, in this process
    /// or any other sharing the store, puts its serial on the CRL.
    pub fn new(door: &Door, manager: Arc<LeaseManager>, mount: &str) -> Result<Self> {
        Self::with_options(door, manager, mount, PkiOptions::default())
    }

    /// [`Pki::new`] with `options`.
    pub fn with_options(
        door: &Door,
        manager: Arc<LeaseManager>,
        mount: &str,
        options: PkiOptions,
    ) -> Result<Self> {
        check_name("mount", mount)?;
        if options.crl_lifetime < Duration::from_secs(2) {
            return Err(PkiError::InvalidRequest {
                reason: "crl_lifetime must be at least two seconds".into(),
            });
        }
        let keys = Keys::new(mount);
        let barrier = door.barrier();
        let clock = door.clock().clone();
        manager.register_revoker(
            engine_name(mount),
            Arc::new(CertRevoker {
                mount: mount.to_owned(),
                keys: keys.clone(),
                barrier: barrier.clone(),
                clock: clock.clone(),
                options: options.clone(),
            }),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                mount: mount.to_owned(),
                keys,
                door: door.clone(),
                barrier,
                manager,
                clock,
                signer: tokio::sync::OnceCell::new(),
                options,
            }),
        })
    }

    /// The mount's name.
    pub fn mount(&self) -> &str {
        &self.inner.mount
    }

    /// The lease engine name of this mount's certificates, `pki-<mount>`
    /// (lease engine names allow no `:`).
    pub fn engine(&self) -> String {
        engine_name(&self.inner.mount)
    }

    /// The lease manager certificates are leased from.
    pub fn lease_manager(&self) -> &Arc<LeaseManager> {
        &self.inner.manager
    }

    /// The policy path `pki/<mount>/<tail>`.
    pub(crate) fn path(&self, tail: &str) -> String {
        format!("pki/{}/{tail}", self.inner.mount)
    }

    /// The store's time, to the whole second (certificates carry seconds).
    pub(crate) fn now(&self) -> Timestamp {
        whole_seconds(self.inner.clock.now())
    }
}

pub(crate) fn engine_name(mount: &str) -> String {
    format!("pki-{mount}")
}

pub(crate) fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_secs(t.as_secs())
}

/// Runs `op` for `handle` on `path` the way every handle operation runs:
/// policy check and intent record first (nothing runs if either fails),
/// then the outcome recorded with what `decorate` adds, and the result
/// handed back only once that record is accepted.
pub(crate) async fn audited<T, F>(
    handle: &Handle,
    op: Operation,
    path: &str,
    caps: &[Capability],
    run: F,
    decorate: impl FnOnce(AuditEvent, &T) -> AuditEvent,
) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let event = handle.admit_external(op, path, caps).await?;
    let result = run.await;
    conclude(handle, event, result, decorate).await
}

/// Records how an admitted operation ended (see [`audited`]).
pub(crate) async fn conclude<T>(
    handle: &Handle,
    event: AuditEvent,
    result: Result<T>,
    decorate: impl FnOnce(AuditEvent, &T) -> AuditEvent,
) -> Result<T> {
    match result {
        Ok(v) => Ok(handle.conclude_external(event, Ok(v), decorate).await?),
        // A core error is recorded under its own kind.
        Err(PkiError::Core(e)) => {
            let e = handle
                .conclude_external::<()>(event, Err(e), |ev, _| ev)
                .await
                .err()
                .unwrap_or(strongroom::Error::InvalidArgument(
                    "an operation failed".into(),
                ));
            Err(PkiError::Core(e))
        }
        // The core has no variant for this crate's errors: they are
        // recorded as `invalid_argument` with this crate's message. What
        // comes back is that error unless the record itself failed.
        Err(e) => {
            let recorded = strongroom::Error::InvalidArgument(format!("{}: {e}", e.kind()));
            match handle
                .conclude_external::<()>(event, Err(recorded), |ev, _| ev)
                .await
            {
                Err(strongroom::Error::InvalidArgument(_)) | Ok(()) => Err(e),
                Err(audit) => Err(PkiError::Core(audit)),
            }
        }
    }
}

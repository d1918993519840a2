//! The engine: issuing roles under leases, and the revoker that takes them
//! back from the definitions this process is configured with.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use strongroom::Handle;
use strongroom::audit::{AuditEvent, Operation, Outcome, new_request_id};
use strongroom::clock::{Clock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseManager, Revoker};
use strongroom::policy::Capability;
use strongroom::storage::BatchOp;

use super::definition::{CompiledDefinition, PgRoleDefinition};
#[cfg(feature = "fault-injection")]
use super::error::CrashPoint;
use super::error::{PgDynError, PgDynResult, Point};
use super::naming::EngineRole;
use super::password::{PgCredential, random_password, scram_verifier};
use super::record::{
    self, IntentRecord, RecordKey, RoleRef, StoredRef, V2, legacy_revocation, version_of,
};
use super::server::{create_role, revoke_role, set_valid_until};
use super::{INTENT_PREFIX, MAX_DEFINITION_NAME, MAX_ROLE_PREFIX};

/// Settings of a [`PgDynamicCredentials`] engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgDynamicConfig {
    /// The lease engine name its revoker is registered under.
    pub engine: String,
    /// The first segment of lease paths: leases are issued under
    /// `<mount>/creds/<definition>`.
    pub mount: String,
    /// Every generated role name starts with this; [`PgDynamicCredentials::sweep`]
    /// treats every role with it as this engine's, and a role name read
    /// from storage is used only if it is exactly of the generated form
    /// under it. Give each engine sharing a server its own prefix.
    pub role_prefix: String,
    /// How long a sweep leaves an intent alone (the issue may still be
    /// running, here or in another process).
    pub sweep_grace: Duration,
}

impl Default for PgDynamicConfig {
    fn default() -> Self {
        Self {
            engine: "postgres".to_owned(),
            mount: "database".to_owned(),
            role_prefix: "sr_".to_owned(),
            sweep_grace: Duration::from_secs(300),
        }
    }
}

/// What the engine and its revoker share.
pub(super) struct Shared {
    pub(super) pool: PgPool,
    pub(super) store: Door,
    pub(super) config: PgDynamicConfig,
    /// The definitions this process is configured with, by name.
    definitions: RwLock<BTreeMap<String, Arc<CompiledDefinition>>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn lease_path(&self, definition: &str) -> String {
        format!("{}/creds/{definition}", self.config.mount)
    }

    pub(super) fn definition(&self, name: &str) -> Option<Arc<CompiledDefinition>> {
        self.definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The configured definitions whose name a generated role name with
    /// `stem` could carry (a long name appears cut).
    pub(super) fn definitions_with_stem(&self, stem: &str) -> Vec<Arc<CompiledDefinition>> {
        self.definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|d| super::naming::stem(&self.config.role_prefix, &d.def.name) == stem)
            .cloned()
            .collect()
    }

    /// Reads a lease's revocation data, touching nothing on the server:
    /// version 2 must carry a valid tag for this engine and the lease's
    /// path; version 1 (unauthenticated) is read for its role and
    /// definition names only. Either way the definition must be the one
    /// the lease path names and the role exactly of the generated form.
    pub(super) fn authenticate(
        &self,
        lease: &Lease,
        key: Option<&RecordKey>,
    ) -> PgDynResult<(EngineRole, StoredRef)> {
        let id = lease.id().to_string();
        if lease.engine() != self.config.engine {
            return Err(PgDynError::CorruptRecord {
                key: id,
                reason: format!(
                    "a lease of engine {:?}, not of {:?}",
                    lease.engine(),
                    self.config.engine
                ),
            });
        }
        let data = lease.revocation_data();
        let stored: StoredRef = if version_of(&id, data)? == V2 {
            let key = key.ok_or_else(|| PgDynError::NotAuthentic { key: id.clone() })?;
            key.open_revocation(&id, &self.config.engine, lease.path(), data)?
                .into()
        } else {
            legacy_revocation(&id, data)?
        };
        let role = EngineRole::check(
            &self.config.role_prefix,
            &stored.definition,
            &stored.role,
            &id,
        )?;
        if lease.path() != self.lease_path(&stored.definition) {
            return Err(PgDynError::ForeignRole {
                key: id,
                role: stored.role.chars().take(80).collect(),
                reason: "its definition is not the one the lease path names",
            });
        }
        Ok((role, stored))
    }

    /// The configured definition a stored record was issued under.
    pub(super) fn resolve(
        &self,
        key: &str,
        stored: &StoredRef,
    ) -> PgDynResult<Arc<CompiledDefinition>> {
        let def =
            self.definition(&stored.definition)
                .ok_or_else(|| PgDynError::UnknownDefinition {
                    key: key.to_owned(),
                    definition: stored.definition.clone(),
                })?;
        match stored.digest {
            Some(d) if d != def.digest => Err(PgDynError::DefinitionChanged {
                key: key.to_owned(),
                definition: stored.definition.clone(),
            }),
            _ => Ok(def),
        }
    }

    /// Every check before a statement names a lease's role:
    /// [`Shared::authenticate`], then [`Shared::resolve`].
    pub(super) async fn check_lease(
        &self,
        lease: &Lease,
    ) -> PgDynResult<(EngineRole, Arc<CompiledDefinition>)> {
        let key = if lease.revocation_data().first() == Some(&V2) {
            RecordKey::load(&self.store).await?
        } else {
            None
        };
        let (role, stored) = self.authenticate(lease, key.as_ref())?;
        let def = self.resolve(&lease.id().to_string(), &stored)?;
        Ok((role, def))
    }
}

/// The revoker registered with the lease manager.
#[derive(Debug)]
struct PgRoleRevoker {
    shared: Arc<Shared>,
}

#[async_trait]
impl Revoker for PgRoleRevoker {
    async fn revoke(&self, lease: &Lease) -> strongroom::Result<()> {
        let (role, def) = self.shared.check_lease(lease).await?;
        revoke_role(&self.shared.pool, &role, Some(&def))
            .await
            .map_err(Into::into)
    }

    async fn renew(&self, lease: &Lease, new_expiry: Timestamp) -> strongroom::Result<()> {
        // A role this process could not take back is not kept alive either.
        let (role, _def) = self.shared.check_lease(lease).await?;
        set_valid_until(&self.shared.pool, &role, new_expiry)
            .await
            .map_err(Into::into)
    }
}

/// Issues PostgreSQL login roles under leases; see the [module
/// docs](super).
pub struct PgDynamicCredentials {
    pub(super) shared: Arc<Shared>,
    pub(super) leases: Arc<LeaseManager>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) in_flight: Arc<Mutex<HashSet<String>>>,
    #[cfg(feature = "fault-injection")]
    crash_at: Mutex<Option<CrashPoint>>,
}

impl fmt::Debug for PgDynamicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDynamicCredentials")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Removes a role from the in-flight set when an issue ends (or is dropped).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    role: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.role);
    }
}

impl PgDynamicCredentials {
    /// An engine issuing roles through `pool` (a connection with
    /// `CREATEROLE` and the privileges it grants) and leases through
    /// `leases`, keeping its records in `store` (normally the store over the
    /// lease manager's storage): intent records sealed under the store's
    /// keyring, and the key that authenticates revocation data. Its revoker
    /// is registered with `leases` under `config.engine`.
    ///
    /// Revocation builds its statements from the definitions the engine is
    /// configured with ([`PgDynamicCredentials::define`], or a definition
    /// passed to [`PgDynamicCredentials::issue`]): define every definition
    /// whose leases may still be live before the lease manager or
    /// [`PgDynamicCredentials::sweep`] runs.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidRolePrefix`], or a core error for an unusable
    /// engine or mount name.
    pub fn new(
        pool: PgPool,
        leases: Arc<LeaseManager>,
        store: Door,
        clock: Arc<dyn Clock>,
        config: PgDynamicConfig,
    ) -> PgDynResult<Self> {
        check_config(&config)?;
        let shared = Arc::new(Shared {
            pool,
            store,
            config,
            definitions: RwLock::new(BTreeMap::new()),
        });
        leases.register_revoker(
            shared.config.engine.clone(),
            Arc::new(PgRoleRevoker {
                shared: shared.clone(),
            }),
        );
        Ok(Self {
            shared,
            leases,
            clock,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            #[cfg(feature = "fault-injection")]
            crash_at: Mutex::new(None),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &PgDynamicConfig {
        &self.shared.config
    }

    /// Configures `definition` (replacing one of the same name): roles
    /// issued under its name are revoked with its statements. A lease
    /// issued under another revocation of that name (other statements or
    /// owned-objects action) is then refused with
    /// [`PgDynError::DefinitionChanged`] until its own definition is
    /// configured again.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidTemplate`] or [`PgDynError::InvalidIdentifier`]
    /// for an unusable definition (nothing is changed).
    pub fn define(&self, definition: &PgRoleDefinition) -> PgDynResult<()> {
        let compiled = Arc::new(CompiledDefinition::new(definition)?);
        self.shared
            .definitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(definition.name.clone(), compiled);
        Ok(())
    }

    /// Configures `definition` for an issue: added if its name is new,
    /// refused if a definition of that name with another revocation is
    /// configured.
    fn define_for_issue(
        &self,
        definition: &PgRoleDefinition,
    ) -> PgDynResult<Arc<CompiledDefinition>> {
        let compiled = Arc::new(CompiledDefinition::new(definition)?);
        let mut defs = self
            .shared
            .definitions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match defs.get(&definition.name) {
            Some(held) if held.digest != compiled.digest => Err(PgDynError::DefinitionConflict {
                definition: definition.name.clone(),
            }),
            _ => {
                defs.insert(definition.name.clone(), compiled.clone());
                Ok(compiled)
            }
        }
    }

    /// The role a lease of this engine stands for, after every check
    /// revocation makes before it touches the server: the revocation data
    /// authenticates (or is a version 1 record), is this engine's, names a
    /// role of exactly the generated form and a definition this engine is
    /// configured with, unchanged.
    ///
    /// # Errors
    ///
    /// [`PgDynError::NotAuthentic`], [`PgDynError::ForeignRole`],
    /// [`PgDynError::UnknownDefinition`], [`PgDynError::DefinitionChanged`]
    /// or [`PgDynError::CorruptRecord`]: revoking or renewing the lease
    /// would be refused the same way.
    pub async fn role_of(&self, lease: &Lease) -> PgDynResult<String> {
        Ok(self.shared.check_lease(lease).await?.0.into_string())
    }

    /// The lease path of a definition: `<mount>/creds/<definition>`.
    pub fn lease_path(&self, definition: &PgRoleDefinition) -> String {
        self.shared.lease_path(&definition.name)
    }

    /// Stops every later issue at `point`, returning
    /// [`PgDynError::Crashed`] without any clean-up, as if the process had
    /// died there. Drop the engine afterwards.
    #[cfg(feature = "fault-injection")]
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self.crash_at.lock().unwrap_or_else(PoisonError::into_inner) = point;
    }

    #[cfg(feature = "fault-injection")]
    fn maybe_crash(&self, point: CrashPoint) -> PgDynResult<()> {
        if *self.crash_at.lock().unwrap_or_else(PoisonError::into_inner) == Some(point) {
            return Err(PgDynError::Crashed(point));
        }
        Ok(())
    }

    #[cfg(not(feature = "fault-injection"))]
    #[inline]
    fn maybe_crash(&self, _point: Point) -> PgDynResult<()> {
        Ok(())
    }

    /// Creates a role from `definition` that lives `ttl` (the definition's
    /// default if `None`, cut to its max TTL), under a renewable lease.
    ///
    /// The definition becomes one this engine is configured with (see
    /// [`PgDynamicCredentials::define`]). The role is created, with its
    /// grants, in one transaction; the intent record written first lets
    /// [`PgDynamicCredentials::sweep`] drop it if this process dies before
    /// the lease is stored. If storing the lease fails (a full quota, say)
    /// the role is dropped again.
    ///
    /// When the lease manager has an audit log
    /// ([`LeaseManager::with_audit`](strongroom::lease::LeaseManager::with_audit)),
    /// the issue is recorded there before anything exists on the server
    /// (principal `dynamic:<engine>`, the lease path), and the lease itself
    /// is recorded before it is stored: if no sink accepts either record,
    /// nothing is created (or the role is dropped again) and no password is
    /// returned.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidTtl`], [`PgDynError::InvalidTemplate`] or
    /// [`PgDynError::InvalidIdentifier`] for an unusable definition, and
    /// [`PgDynError::DefinitionConflict`] if another definition of its name
    /// is configured (nothing is created); [`PgDynError::Database`] if the
    /// server refuses (the transaction is rolled back); a core error such
    /// as a lease quota or a sealed store.
    pub async fn issue(
        &self,
        definition: &PgRoleDefinition,
        ttl: Option<Duration>,
    ) -> PgDynResult<(Lease, PgCredential)> {
        self.issue_unchecked(definition, ttl).await
    }

    /// [`PgDynamicCredentials::issue`] as the principal of `who`: checked
    /// against its policies (capability `lease` on the lease path,
    /// [`PgDynamicCredentials::lease_path`]) and audited to its log: a
    /// refusal is recorded as `denied` and fails with a policy error before
    /// anything happens; the intent is recorded before the role exists (if
    /// no sink accepts it, nothing is created); the outcome (the lease id,
    /// or the error's kind) after, and the password is returned only once
    /// that record is accepted.
    ///
    /// # Errors
    ///
    /// Those of [`PgDynamicCredentials::issue`], plus a policy error
    /// (`policy_denied`) and audit errors.
    pub async fn issue_as(
        &self,
        who: &Handle,
        definition: &PgRoleDefinition,
        ttl: Option<Duration>,
    ) -> PgDynResult<(Lease, PgCredential)> {
        let path = self.shared.lease_path(&definition.name);
        let event = who
            .admit_external(Operation::LeaseIssue, &path, &[Capability::Lease])
            .await?;
        match self.issue_unchecked(definition, ttl).await {
            Ok(out) => Ok(who
                .conclude_external(event, Ok(out), |ev, (lease, _)| {
                    ev.with_lease_id(lease.id().to_string())
                })
                .await?),
            Err(e) => {
                let kind = match &e {
                    PgDynError::Core(core) => core.kind().to_owned(),
                    _ => "pg_dynamic".to_owned(),
                };
                who.conclude_external(event, Ok(()), |ev, ()| {
                    ev.with_outcome(Outcome::Error { kind })
                })
                .await?;
                Err(e)
            }
        }
    }

    async fn issue_unchecked(
        &self,
        definition: &PgRoleDefinition,
        ttl: Option<Duration>,
    ) -> PgDynResult<(Lease, PgCredential)> {
        let ttl = ttl.unwrap_or(definition.default_ttl);
        if ttl.is_zero() || definition.max_ttl.is_zero() {
            return Err(PgDynError::InvalidTtl {
                reason: "ttl and max ttl must be positive",
            });
        }
        let ttl = ttl.min(definition.max_ttl);
        let compiled = self.define_for_issue(definition)?;
        // The record key first: a store that is sealed, or whose record
        // key is damaged, issues nothing.
        let record_key = RecordKey::load_or_create(&self.shared.store).await?;
        let config = &self.shared.config;
        let path = self.shared.lease_path(&definition.name);
        let role = EngineRole::generate(&config.role_prefix, &definition.name)?;
        let password = random_password()?;
        let verifier = scram_verifier(&password)?;
        let role_ref = RoleRef {
            role: role.as_str().to_owned(),
            definition: definition.name.clone(),
            digest: compiled.digest,
        };
        let revocation_data = record_key.seal_revocation(&config.engine, &path, &role_ref)?;
        let _guard = {
            self.in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(role.as_str().to_owned());
            InFlight {
                set: self.in_flight.clone(),
                role: role.as_str().to_owned(),
            }
        };

        // 0. The audit record, before anything exists on the server.
        if let Some(audit) = &self.leases.config().audit {
            let event = AuditEvent::new(
                format!("dynamic:{}", config.engine),
                Operation::LeaseIssue,
                new_request_id()?,
            )
            .with_path(&path);
            audit.append(event).await.map_err(strongroom::Error::from)?;
        }

        // 1. The intent, sealed, before anything exists on the server.
        let now = self.clock.now();
        let intent_key = format!("{INTENT_PREFIX}{}", role.as_str());
        let intent = IntentRecord {
            created_at: now,
            path: path.clone(),
            role: role_ref,
        };
        let put = record::seal_intent(&self.shared.store, &intent_key, &intent).await?;
        self.shared
            .store
            .commit(vec![BatchOp::expect(intent_key.clone(), None), put])
            .await?;
        self.maybe_crash(Point::AfterIntent)?;

        // 2. The role and its grants, in one transaction.
        let expiry = now + ttl;
        let storage = self.shared.store.storage();
        if let Err(e) = create_role(&self.shared.pool, &compiled, &role, &verifier, expiry).await {
            storage.delete(&intent_key).await.ok();
            return Err(e);
        }
        self.maybe_crash(Point::AfterCreateRole)?;

        // 3. The lease.
        let lease = match self
            .leases
            .issue(
                &path,
                &config.engine,
                ttl,
                definition.max_ttl,
                true,
                revocation_data,
            )
            .await
        {
            Ok(l) => l,
            Err(e) => {
                // No lease owns the role: take it back now (the sweep would
                // otherwise do it later).
                if let Err(drop_err) = revoke_role(&self.shared.pool, &role, Some(&compiled)).await
                {
                    tracing::warn!(role = %role.as_str(), error = %drop_err, "dropping a role whose lease failed; the sweep will retry");
                } else {
                    storage.delete(&intent_key).await.ok();
                }
                return Err(e.into());
            }
        };
        if lease.expires_at() != expiry {
            // The clock moved while the role was created: align VALID UNTIL
            // with the lease's end.
            if let Err(e) = set_valid_until(&self.shared.pool, &role, lease.expires_at()).await {
                // The caller will not get the password: take the role back.
                if let Err(revoke_err) = self.leases.revoke(lease.id()).await {
                    tracing::warn!(lease = %lease.id(), error = %revoke_err, "revoking a lease whose issue failed; the manager retries");
                }
                return Err(e);
            }
        }
        self.maybe_crash(Point::AfterLease)?;

        // 4. Done: the lease owns the role.
        if let Err(e) = storage.delete(&intent_key).await {
            // Harmless: the lease owns the role, and the next sweep clears
            // the intent.
            tracing::warn!(role = %role.as_str(), error = %e, "cannot delete an intent record; the sweep will");
        }
        self.maybe_crash(Point::AfterIntentCleared)?;
        Ok((
            lease,
            PgCredential {
                username: role.into_string(),
                password,
            },
        ))
    }
}

/// Checks an engine's settings: the role prefix, mount and engine names.
pub(super) fn check_config(config: &PgDynamicConfig) -> PgDynResult<()> {
    let p = &config.role_prefix;
    if p.is_empty()
        || p.len() > MAX_ROLE_PREFIX
        || !p.starts_with(|c: char| c.is_ascii_lowercase())
        || !p
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
    {
        return Err(PgDynError::InvalidRolePrefix {
            prefix: p.chars().take(80).collect(),
        });
    }
    let segment = |v: &str| {
        !v.is_empty()
            && v.len() <= MAX_DEFINITION_NAME
            && v.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    };
    if !segment(&config.mount) || !segment(&config.engine) {
        return Err(strongroom::Error::InvalidArgument(
        "pg dynamic credentials: mount and engine must be 1 to 64 characters from a-z, 0-9, '_', '-'".to_owned(),
        )
        .into());
    }
    Ok(())
}

//! [`PgDynamicCredentials::sweep`]: reconciling roles, intents and leases
//! after a crash.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::PoisonError;

use strongroom::clock::Timestamp;
use strongroom::lease::LeaseId;

use super::engine::PgDynamicCredentials;
use super::error::{PgDynError, PgDynResult, Rejection, db};
use super::naming::EngineRole;
use super::record::{self, RecordKey, StoredIntent};
use super::server::revoke_role;
use super::{INTENT_PREFIX, LEGACY_INTENT_PREFIX};

const SCAN_PAGE: usize = 1024;

/// What [`PgDynamicCredentials::sweep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Roles with the prefix that no lease owned, now dropped.
    pub dropped_roles: Vec<String>,
    /// Intent records removed (their issue finished or failed).
    pub cleared_intents: usize,
    /// Leases whose role did not exist, now revoked.
    pub revoked_leases: Vec<LeaseId>,
    /// Intents left alone because their issue may still be running.
    pub in_progress: usize,
    /// Stored records the sweep refused to act on (an intent's storage key
    /// or a lease id), and why. Nothing they say was used. A refused intent
    /// is deleted, unless only its definition is missing or changed (then
    /// it and its role are kept). A refused lease is kept (its revocation
    /// is refused the same way; force-revoke it) and the role its record
    /// claims is not dropped; a role that no record checking out names is
    /// dropped like any role no lease owns.
    pub rejected: Vec<(String, Rejection)>,
}

/// An intent as the sweep holds it.
struct Intent {
    key: String,
    rec: StoredIntent,
}

impl PgDynamicCredentials {
    /// Reconciles roles, intents and leases after a crash; see the [module
    /// docs](super#crash-safety). Safe to run at any time, from any number
    /// of processes: an intent younger than
    /// [`PgDynamicConfig::sweep_grace`](super::PgDynamicConfig::sweep_grace)
    /// (or one this engine is working on) is left alone.
    ///
    /// Stored records are checked as revocation checks them; those that
    /// fail are listed in [`SweepReport::rejected`] and nothing in them is
    /// used. A role is dropped with the statements of the definition its
    /// intent names (or, without an intent, the one configured definition
    /// its name fits; failing that, no statements and its objects dropped).
    ///
    /// # Errors
    ///
    /// A database, storage or keyring failure; whatever was done before it
    /// stays done, and the next sweep goes on.
    pub async fn sweep(&self) -> PgDynResult<SweepReport> {
        let shared = &self.shared;
        let config = &shared.config;
        let storage = shared.store.storage();
        let mut report = SweepReport::default();
        // Order matters: roles first, then intents, then leases. A role seen
        // here had its intent stored before it was created, and its intent
        // is deleted only after its lease is stored, so a role that is in
        // neither list later read is truly unowned.
        let roles: BTreeSet<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname::text, $1)",
        )
        .bind(&config.role_prefix)
        .fetch_all(&shared.pool)
        .await
        .map_err(db("cannot list roles"))?
        .into_iter()
        .collect();

        let mut intents: BTreeMap<String, Intent> = BTreeMap::new();
        for (prefix, legacy) in [(INTENT_PREFIX, false), (LEGACY_INTENT_PREFIX, true)] {
            let mut after: Option<String> = None;
            loop {
                let page = storage.scan(prefix, after.as_deref(), SCAN_PAGE).await?;
                let done = page.len() < SCAN_PAGE;
                after = page.last().map(|(k, _)| k.clone());
                for (key, value) in page {
                    let role = key.get(prefix.len()..).unwrap_or_default().to_owned();
                    let read = if legacy {
                        record::legacy_intent(&key, &value)
                    } else {
                        record::open_intent(&shared.store, &key, value).await
                    };
                    match read.and_then(|rec| self.check_intent(&key, &role, rec)) {
                        Ok(rec) if !intents.contains_key(&role) => {
                            intents.insert(role, Intent { key, rec });
                        }
                        Ok(_) => {
                            // A version 1 intent beside a version 2 one.
                            storage.delete(&key).await?;
                            report.cleared_intents += 1;
                        }
                        Err(e) => {
                            let Some(why) = e.rejection() else {
                                return Err(e);
                            };
                            tracing::warn!(key = %key, error = %e, "refused intent record; removing it");
                            storage.delete(&key).await?;
                            report.rejected.push((key, why));
                        }
                    }
                }
                if done {
                    break;
                }
            }
        }

        // The roles live leases own, as their revocation data says once it
        // checks out; a lease whose data does not is kept (its revocation
        // is refused the same way) and the role it claims left alone.
        let record_key = RecordKey::load(&shared.store).await?;
        let mut owned: BTreeMap<String, LeaseId> = BTreeMap::new();
        let mut claimed: BTreeSet<String> = BTreeSet::new();
        for id in self.leases.list(&config.mount).await? {
            let lease = match self.leases.lookup(id).await {
                Ok(l) => l,
                Err(strongroom::Error::Lease(_)) => continue, // revoked meanwhile
                Err(e) => return Err(e.into()),
            };
            if lease.engine() != config.engine {
                continue;
            }
            match shared.authenticate(&lease, record_key.as_ref()) {
                Ok((role, stored)) => {
                    // It owns its role either way; a definition that is
                    // missing or changed is reported (its revocation is
                    // refused until it is configured again).
                    if let Err(e) = shared.resolve(&id.to_string(), &stored) {
                        let Some(why) = e.rejection() else {
                            return Err(e);
                        };
                        tracing::warn!(lease = %id, error = %e, "a lease whose definition is not configured as it was issued");
                        report.rejected.push((id.to_string(), why));
                    }
                    owned.insert(role.into_string(), id);
                }
                Err(e) => {
                    let Some(why) = e.rejection() else {
                        return Err(e);
                    };
                    tracing::warn!(lease = %id, error = %e, "refused revocation data; the lease is kept");
                    claimed.extend(record::unverified_role(lease.revocation_data()));
                    report.rejected.push((id.to_string(), why));
                }
            }
        }

        let now = self.clock.now();
        let busy = |role: &str, created_at: Timestamp| {
            self.in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(role)
                || now.saturating_since(created_at) < config.sweep_grace
        };

        for role in &roles {
            if owned.contains_key(role) || claimed.contains(role) {
                continue;
            }
            let Some(listed) = EngineRole::listed(&config.role_prefix, role) else {
                continue;
            };
            let definition = match intents.get(role) {
                Some(i) if busy(role, i.rec.created_at) => continue,
                Some(i) => match shared.resolve(&i.key, &i.rec.role) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        let Some(why) = e.rejection() else {
                            return Err(e);
                        };
                        tracing::warn!(role = %role, error = %e, "not dropping a role whose definition is not configured as it was issued");
                        report.rejected.push((i.key.clone(), why));
                        continue;
                    }
                },
                None => {
                    let mut fits = EngineRole::stem_of(&config.role_prefix, role)
                        .map(|stem| shared.definitions_with_stem(stem))
                        .unwrap_or_default();
                    if fits.len() == 1 { fits.pop() } else { None }
                }
            };
            revoke_role(&shared.pool, &listed, definition.as_deref()).await?;
            tracing::info!(role = %role, "sweep dropped a role no lease owns");
            report.dropped_roles.push(role.clone());
            if let Some(i) = intents.remove(role) {
                storage.delete(&i.key).await?;
                report.cleared_intents += 1;
            }
        }

        for (role, i) in &intents {
            if roles.contains(role) && owned.contains_key(role) {
                // The lease was stored; only the intent's deletion was lost.
                storage.delete(&i.key).await?;
                report.cleared_intents += 1;
            } else if !roles.contains(role) {
                if busy(role, i.rec.created_at) {
                    report.in_progress += 1;
                    continue;
                }
                storage.delete(&i.key).await?;
                report.cleared_intents += 1;
            }
        }

        // Leases whose role is gone (dropped by hand, or a revocation whose
        // success was not recorded): revoke them so none points nowhere.
        let missing: Vec<String> = owned
            .keys()
            .filter(|r| !roles.contains(*r))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let exist: HashSet<String> = sqlx::query_scalar(
                "SELECT rolname::text FROM pg_roles WHERE rolname::text = ANY($1)",
            )
            .bind(&missing)
            .fetch_all(&shared.pool)
            .await
            .map_err(db("cannot look up roles"))?
            .into_iter()
            .collect();
            for role in missing.iter().filter(|r| !exist.contains(*r)) {
                if let Some(&id) = owned.get(role) {
                    match self.leases.revoke(id).await {
                        Ok(_) => report.revoked_leases.push(id),
                        Err(strongroom::Error::Lease(
                            strongroom::lease::LeaseError::NotFound { .. },
                        )) => {}
                        Err(strongroom::Error::Lease(e)) => {
                            // Refused or deferred: the manager retries it.
                            tracing::warn!(lease = %id, error = %e, "cannot revoke a lease whose role is gone");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(report)
    }

    /// Checks an intent read from `key`: it names the role its key names,
    /// of exactly the generated form, under the lease path of its
    /// definition.
    fn check_intent(&self, key: &str, role: &str, rec: StoredIntent) -> PgDynResult<StoredIntent> {
        let shared = &self.shared;
        if rec.role.role != role {
            return Err(PgDynError::ForeignRole {
                key: key.to_owned(),
                role: rec.role.role.chars().take(80).collect(),
                reason: "it is not the role its storage key names",
            });
        }
        EngineRole::check(
            &shared.config.role_prefix,
            &rec.role.definition,
            &rec.role.role,
            key,
        )?;
        if rec.path != shared.lease_path(&rec.role.definition) {
            return Err(PgDynError::ForeignRole {
                key: key.to_owned(),
                role: rec.role.role.chars().take(80).collect(),
                reason: "its definition is not the one its lease path names",
            });
        }
        Ok(rec)
    }
}

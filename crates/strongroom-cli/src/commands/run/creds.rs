//! `run --creds PREFIX=ROLE`: dynamic PostgreSQL credentials from the
//! store's role catalog (see `creds`), given to the command as
//! `PREFIX_USERNAME` and `PREFIX_PASSWORD`.
//!
//! Each lease is renewed two thirds into its current term (by its TTL, up
//! to its max TTL). When it cannot be renewed any further (its max TTL
//! reached, or the renewal refused), new credentials are issued and
//! `--on-change` applies: with `restart` the command restarts with them and
//! the old lease is revoked; otherwise the command keeps the old ones, which
//! PostgreSQL refuses once their lease ends (`VALID UNTIL`), and the old
//! lease is left to expire. When the command ends, every lease is revoked.
//!
//! Like the secrets `run` reads, every action acts as the operator with the
//! audit file locked only for its duration: the URL read, each issue,
//! renewal and revocation is on record, never a password.

use std::sync::Arc;
use std::time::Duration;

use strongroom::SecretString;
use strongroom::clock::{Clock as _, SystemClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseManager};
use strongroom_sqlx::dynamic::{PgCatalog, PgDynamicCredentials};

use crate::exit::CliResult;
use crate::operator::{Identity, Operator, audited};

use super::spec::CredsSpec;

/// One set of credentials the command holds.
pub(crate) struct Held {
    spec: CredsSpec,
    user_var: String,
    password_var: String,
    lease: Lease,
    /// When the lease's current term began (issue or last renewal).
    term_start: Timestamp,
    username: String,
    password: SecretString,
}

/// Every set of credentials `run` holds for the command.
pub(crate) struct DynCreds {
    held: Vec<Held>,
    /// Leases replaced but not yet revoked (the command may still use them
    /// until it restarts).
    replaced: Vec<Lease>,
    /// After a failed renewal round: not before this.
    not_before: Option<Timestamp>,
}

/// What one action needs: the operator (audit file locked), a lease
/// manager writing to its log, and the catalog's engine.
struct Session {
    op: Operator,
    manager: Arc<LeaseManager>,
    engine: PgDynamicCredentials,
    catalog: PgCatalog,
}

async fn session(sr: &Door, id: &Identity) -> CliResult<Session> {
    let op = Operator::start(sr, id).await?;
    let catalog = PgCatalog::load(sr)
        .await?
        .ok_or_else(crate::commands::creds::no_catalog)?
        .catalog;
    let manager = crate::commands::leases::manager(sr, op.secrets())?;
    let engine = catalog
        .connect(op.secrets(), sr, Arc::clone(&manager))
        .await?;
    Ok(Session {
        op,
        manager,
        engine,
        catalog,
    })
}

impl Session {
    async fn issue(&self, spec: &CredsSpec) -> CliResult<Held> {
        let definition = self.catalog.definition(&spec.role)?;
        let (lease, cred) = self
            .engine
            .issue_as(self.op.secrets(), &definition, None)
            .await?;
        Ok(Held {
            user_var: spec.user_var(),
            password_var: spec.password_var(),
            spec: spec.clone(),
            term_start: lease.issued_at(),
            lease,
            username: cred.username,
            password: cred.password,
        })
    }

    async fn revoke(&self, lease: &Lease) -> CliResult {
        let leases = self.op.secrets().leases(&self.manager);
        audited(leases.revoke(lease.id()).await, true).map(drop)
    }
}

/// When a lease should be renewed: two thirds into its current term.
pub(crate) fn due(term_start: Timestamp, expires_at: Timestamp) -> Timestamp {
    term_start + expires_at.saturating_since(term_start) * 2 / 3
}

/// Whether a lease's renewal cannot move its end any further.
fn at_max(lease: &Lease) -> bool {
    !lease.renewable() || lease.expires_at() >= lease.max_expires_at()
}

impl DynCreds {
    /// Issues credentials for every spec (none: nothing is opened). If one
    /// fails, those already issued are revoked.
    pub(crate) async fn issue(sr: &Door, id: &Identity, specs: &[CredsSpec]) -> CliResult<Self> {
        let mut out = Self {
            held: Vec::new(),
            replaced: Vec::new(),
            not_before: None,
        };
        if specs.is_empty() {
            return Ok(out);
        }
        let s = session(sr, id).await?;
        for spec in specs {
            match s.issue(spec).await {
                Ok(h) => out.held.push(h),
                Err(f) => {
                    for h in &out.held {
                        if let Err(e) = s.revoke(&h.lease).await {
                            eprintln!(
                                "strongroom: warning: lease {} not revoked: {e}",
                                h.lease.id()
                            );
                        }
                    }
                    return Err(f);
                }
            }
        }
        Ok(out)
    }

    /// The variables for the command (user names and passwords).
    pub(crate) fn env(&self) -> Vec<(&str, &[u8])> {
        self.held
            .iter()
            .flat_map(|h| {
                [
                    (h.user_var.as_str(), h.username.as_bytes()),
                    (
                        h.password_var.as_str(),
                        h.password.expose_secret().as_bytes(),
                    ),
                ]
            })
            .collect()
    }

    /// When the next renewal is due (`None`: no credentials).
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.held
            .iter()
            .map(|h| due(h.term_start, h.lease.expires_at()))
            .min()
    }

    /// Sleeps until the next renewal is due (forever without credentials),
    /// and after a failed round at least [`RETRY_AFTER_FAILURE`].
    pub(crate) async fn wait_due(&self) {
        match self.next_due() {
            Some(at) => {
                let at = self.not_before.map_or(at, |nb| at.max(nb));
                let now = SystemClock.now();
                tokio::time::sleep(at.saturating_since(now)).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Renews every lease that is due; replaces those that cannot be
    /// renewed any further. `true` when credentials were replaced (the
    /// command needs them: `--on-change` applies).
    pub(crate) async fn renew_due(&mut self, sr: &Door, id: &Identity) -> CliResult<bool> {
        let now = SystemClock.now();
        // until this round succeeds, the next waits a while
        self.not_before = Some(now + RETRY_AFTER_FAILURE);
        let s = session(sr, id).await?;
        let mut replaced = false;
        for h in &mut self.held {
            if now < due(h.term_start, h.lease.expires_at()) {
                continue;
            }
            if !at_max(&h.lease) {
                let leases = s.op.secrets().leases(&s.manager);
                match leases.renew(h.lease.id(), h.lease.ttl()).await {
                    Ok(lease) => {
                        h.term_start = now;
                        let moved = lease.expires_at() > h.lease.expires_at();
                        h.lease = lease;
                        if moved {
                            continue;
                        }
                    }
                    Err(e) => {
                        eprintln!(
                            "strongroom: warning: lease {} not renewed ({e}); issuing new credentials",
                            h.lease.id()
                        );
                    }
                }
            }
            // Cannot be extended: new credentials before the old ones end.
            let fresh = s.issue(&h.spec).await?;
            let old = std::mem::replace(h, fresh);
            self.replaced.push(old.lease);
            replaced = true;
        }
        self.not_before = None;
        Ok(replaced)
    }

    /// Revokes the leases replaced so far (the command has restarted with
    /// the new credentials).
    pub(crate) async fn revoke_replaced(&mut self, sr: &Door, id: &Identity) {
        if self.replaced.is_empty() {
            return;
        }
        let leases = std::mem::take(&mut self.replaced);
        revoke_each(sr, id, &leases).await;
    }

    /// Revokes every lease (the command has ended). Failures are warnings:
    /// PostgreSQL refuses the roles once their leases end anyway.
    pub(crate) async fn revoke_all(self, sr: &Door, id: &Identity) {
        let leases: Vec<Lease> = self
            .held
            .into_iter()
            .map(|h| h.lease)
            .chain(self.replaced)
            .collect();
        if leases.is_empty() {
            return;
        }
        revoke_each(sr, id, &leases).await;
    }
}

async fn revoke_each(sr: &Door, id: &Identity, leases: &[Lease]) {
    match session(sr, id).await {
        Ok(s) => {
            for lease in leases {
                if let Err(e) = s.revoke(lease).await {
                    eprintln!("strongroom: warning: lease {} not revoked: {e}", lease.id());
                }
            }
        }
        Err(e) => eprintln!(
            "strongroom: warning: {} lease(s) not revoked ({e}); they end at their expiry",
            leases.len()
        ),
    }
}

/// How long to wait, at least, between renewal attempts that failed.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_two_thirds_into_the_term() {
        let start = Timestamp::from_secs(1_000);
        assert_eq!(
            due(start, start + Duration::from_secs(300)),
            start + Duration::from_secs(200)
        );
        // a term already over is due at once
        assert_eq!(due(start, start), start);
        assert!(due(start, start + Duration::from_secs(3)) < start + Duration::from_secs(3));
    }
}

//! Leases: `lease list`, `lookup`, `renew`, `revoke`, `revoke-prefix`.
//!
//! Each builds a [`LeaseManager`] over the unsealed store (leases live in
//! the store, so this process sees those an application issued) and acts
//! through the operator's [`LeaseHandle`](strongroom::authorized::LeaseHandle),
//! which writes the operator's records to the audit file; the manager's own
//! records (principal `lease-manager`) go to the same file. The CLI
//! registers no revoker: a lease's engine (a PostgreSQL role, ...) is known
//! only to the application that issued it, so a revocation here is
//! recorded as pending and finished by that application's manager, and a
//! renewal is refused (see the README).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use strongroom::audit::Operation;
use strongroom::clock::SystemClock;
use strongroom::dangerous::Door;
use strongroom::lease::{Lease, LeaseConfig, LeaseError, LeaseManager, LeaseState};
use strongroom::{Error, Handle};

use crate::args::{LeaseCommand, LeaseIdArgs, LeaseListArgs, LeasePrefixArgs, LeaseRenewArgs};
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::json as out;
use crate::store::Open;

/// What is said when a revocation is left pending.
const PENDING_HINT: &str = "the lease is marked as being revoked: this command has no revoker for its engine (or the engine failed), \
     so a lease manager that has one (the application that issued the lease) finishes the revocation when it next runs";

/// `lease ...`.
pub(crate) async fn lease(c: LeaseCommand) -> CliResult {
    match c {
        LeaseCommand::List(a) => list(a).await,
        LeaseCommand::Lookup(a) => lookup(a).await,
        LeaseCommand::Renew(a) => renew(a, false).await,
        LeaseCommand::Revoke(a) => revoke(a, false).await,
        LeaseCommand::RevokePrefix(a) => revoke_prefix(a).await,
    }
}

/// The store's lease manager, its own records in the operator's audit file.
pub(crate) fn manager(sr: &Door, handle: &Handle) -> CliResult<Arc<LeaseManager>> {
    let m = sr
        .lease_manager(Arc::new(SystemClock), LeaseConfig::default())?
        .with_audit(Arc::clone(handle.audit_log()));
    Ok(Arc::new(m))
}

/// Runs `f` as the operator with the lease manager, then closes the store.
async fn with_leases<T>(
    store: &crate::args::StoreArgs,
    who: &crate::args::OperatorArgs,
    f: impl AsyncFnOnce(&Operator, &Open, &Arc<LeaseManager>) -> CliResult<T>,
) -> CliResult<T> {
    with_leases_and(store, who, false, f).await
}

/// [`with_leases`], and with `catalog` the dynamic PostgreSQL engine of
/// the store's role catalog connected first, its revoker registered with
/// the manager (so renewals and revocations of its leases finish here).
pub(crate) async fn with_leases_and<T>(
    store: &crate::args::StoreArgs,
    who: &crate::args::OperatorArgs,
    catalog: bool,
    f: impl AsyncFnOnce(&Operator, &Open, &Arc<LeaseManager>) -> CliResult<T>,
) -> CliResult<T> {
    Operator::run(store, who, true, async |open, op| {
        let m = manager(&open.sr, op.secrets())?;
        let _engine = match catalog {
            true => Some(crate::commands::creds::engine(op, open, &m).await?),
            false => None,
        };
        f(op, open, &m).await
    })
    .await
}

/// `lease list`.
async fn list(a: LeaseListArgs) -> CliResult {
    let prefix = a
        .prefix
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .unwrap_or("");
    let leases = with_leases(&a.store, &a.operator, async |op, _open, m| {
        let ids = if prefix.is_empty() {
            // The handle cannot list every lease: recorded here in its
            // shape (operation `list`, no path).
            let event = op.event(Operation::List)?;
            op.conclude(event, m.list("").await, false, |ev, _| ev)
                .await?
        } else {
            audited(op.secrets().leases(m).list(prefix).await, false)?
        };
        // Details of the leases listed (covered by the `list` record).
        let mut leases = Vec::with_capacity(ids.len());
        for id in ids {
            match m.lookup(id).await {
                Ok(l) => leases.push(l),
                Err(Error::Lease(LeaseError::NotFound { .. })) => {} // revoked meanwhile
                Err(e) => return Err(e.into()),
            }
        }
        Ok(leases)
    })
    .await?;
    if a.json {
        out::print(&json!({
            "prefix": prefix,
            "leases": leases.iter().map(lease_json).collect::<Vec<_>>(),
        }));
    } else {
        for l in &leases {
            println!(
                "{} {} {} expires {}",
                l.id(),
                l.path(),
                state_word(l.state()),
                l.expires_at()
            );
        }
    }
    Ok(())
}

/// `lease lookup`.
async fn lookup(a: LeaseIdArgs) -> CliResult {
    let l = with_leases(&a.store, &a.operator, async |op, _open, m| {
        audited(op.secrets().leases(m).lookup(a.id).await, false)
    })
    .await?;
    print_lease(&l, a.json);
    Ok(())
}

/// `lease renew`; `creds renew` with `catalog`.
pub(crate) async fn renew(a: LeaseRenewArgs, catalog: bool) -> CliResult {
    let l = with_leases_and(&a.store, &a.operator, catalog, async |op, _open, m| {
        let leases = op.secrets().leases(m);
        let increment = match a.increment {
            Some(secs) => Duration::from_secs(secs),
            None => audited(leases.lookup(a.id).await, false)?.ttl(),
        };
        audited(leases.renew(a.id, increment).await, true).map_err(|f| match f {
            Failure::Lib(e @ Error::Lease(LeaseError::NoRevoker { .. })) => Failure::Lease {
                error: e,
                hint: "a lease is renewed through its engine, which only the application that issued it has; \
                       renew it there (nothing was changed)",
            },
            f => f,
        })
    })
    .await?;
    print_lease(&l, a.json);
    Ok(())
}

/// `lease revoke`; `creds revoke` with `catalog`.
pub(crate) async fn revoke(a: LeaseIdArgs, catalog: bool) -> CliResult {
    let l = with_leases_and(&a.store, &a.operator, catalog, async |op, _open, m| {
        audited(op.secrets().leases(m).revoke(a.id).await, true).map_err(|f| match f {
            Failure::Lib(
                e @ Error::Lease(
                    LeaseError::RevocationDeferred { .. } | LeaseError::Irrevocable { .. },
                ),
            ) => Failure::Lease {
                error: e,
                hint: PENDING_HINT,
            },
            f => f,
        })
    })
    .await?;
    print_lease(&l, a.json);
    Ok(())
}

/// `lease revoke-prefix`.
async fn revoke_prefix(a: LeasePrefixArgs) -> CliResult {
    let prefix = a.prefix.trim_matches('/');
    if prefix.is_empty() {
        return Err(Failure::Usage(
            "lease revoke-prefix needs a non-empty prefix (revoke every lease by listing them)"
                .into(),
        ));
    }
    let done = with_leases(&a.store, &a.operator, async |op, _open, m| {
        audited(op.secrets().leases(m).revoke_prefix(prefix).await, true)
    })
    .await?;
    if a.json {
        out::print(&json!({
            "prefix": prefix,
            "revoked": done.revoked.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "pending": done.pending.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else {
        for id in &done.revoked {
            println!("revoked {id}");
        }
        for id in &done.pending {
            println!("pending {id}");
        }
        println!(
            "{} lease(s) revoked, {} pending",
            done.revoked.len(),
            done.pending.len()
        );
    }
    if done.pending.is_empty() {
        Ok(())
    } else {
        Err(Failure::LeasesPending(done.pending.len()))
    }
}

fn print_lease(l: &Lease, as_json: bool) {
    if as_json {
        out::print(&lease_json(l));
        return;
    }
    println!("id: {}", l.id());
    println!("path: {}", l.path());
    println!("engine: {}", l.engine());
    println!("state: {}", l.state());
    println!("issued: {}", l.issued_at());
    println!("ttl: {}s", l.ttl().as_secs());
    println!("max ttl: {}s", l.max_ttl().as_secs());
    println!("expires: {}", l.expires_at());
    println!("max expires: {}", l.max_expires_at());
    println!("renewable: {}", l.renewable());
}

/// One word for the state (`active`, `revoking`, `revoked`, `irrevocable`).
fn state_word(s: &LeaseState) -> &'static str {
    match s {
        LeaseState::Active => "active",
        LeaseState::Revoking { .. } => "revoking",
        LeaseState::Revoked => "revoked",
        LeaseState::Irrevocable { .. } => "irrevocable",
        _ => "unknown",
    }
}

/// A lease as JSON: never its revocation data.
fn lease_json(l: &Lease) -> Value {
    let (attempts, next_try) = match l.state() {
        LeaseState::Revoking { attempts, next_try } => {
            (Some(*attempts), Some(next_try.to_string()))
        }
        LeaseState::Irrevocable { attempts } => (Some(*attempts), None),
        _ => (None, None),
    };
    json!({
        "id": l.id().to_string(),
        "path": l.path(),
        "engine": l.engine(),
        "state": state_word(l.state()),
        "failed_attempts": attempts,
        "next_try": next_try,
        "issued_at": l.issued_at().to_string(),
        "ttl_secs": l.ttl().as_secs(),
        "max_ttl_secs": l.max_ttl().as_secs(),
        "expires_at": l.expires_at().to_string(),
        "max_expires_at": l.max_expires_at().to_string(),
        "renewable": l.renewable(),
    })
}

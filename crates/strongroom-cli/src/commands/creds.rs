//! Dynamic PostgreSQL credentials: `creds configure | show | issue` here,
//! and `creds renew | revoke` (the lease commands with the catalog's
//! engine connected, in `leases`).
//!
//! The role catalog lives in the store (`strongroom_sqlx::dynamic::catalog`):
//! the connection secret's path and the role definitions. Issuing reads the
//! administrative URL from that secret as the operator (a `read` record),
//! then the library records the issue (`lease_issue` on
//! `<mount>/creds/<role>`) before the role exists on the server. The
//! password is printed only with `--reveal`.

use std::time::Duration;

use strongroom::audit::{Operation, Outcome};
use strongroom::lease::LeaseManager;
use strongroom_sqlx::dynamic::catalog::CATALOG_RECORD;
use strongroom_sqlx::dynamic::{PgCatalog, PgDynError, PgDynamicCredentials};

use crate::args::{CredsConfigureArgs, CredsIssueArgs, CredsShowArgs};
use crate::exit::{CliResult, Failure};
use crate::operator::Operator;
use crate::print::json;
use crate::store::Open;

/// The largest catalog file read (1 MiB, as the library takes).
const MAX_FILE_LEN: u64 = strongroom_sqlx::dynamic::catalog::MAX_CATALOG_LEN as u64;

pub(crate) fn no_catalog() -> Failure {
    Failure::Dynamic(PgDynError::InvalidCatalog {
        source_name: CATALOG_RECORD.to_owned(),
        reason: "no role catalog is stored: write one with `strongroom creds configure FILE`"
            .to_owned(),
    })
}

/// The stored catalog, or [`no_catalog`].
async fn stored(open: &Open) -> CliResult<strongroom_sqlx::dynamic::StoredCatalog> {
    PgCatalog::load(&open.sr).await?.ok_or_else(no_catalog)
}

/// The catalog's engine, connected as the operator (the connection URL is
/// read through the operator's handle), its revoker registered with `m`.
pub(crate) async fn engine(
    op: &Operator,
    open: &Open,
    m: &std::sync::Arc<LeaseManager>,
) -> CliResult<PgDynamicCredentials> {
    let catalog = stored(open).await?.catalog;
    Ok(catalog
        .connect(op.secrets(), &open.sr, std::sync::Arc::clone(m))
        .await?)
}

/// `creds configure FILE`: the file is read and checked before the store
/// is opened; the write is audited (intent, then outcome with the new
/// revision) and conditioned on the revision read.
pub(crate) async fn configure(a: CredsConfigureArgs) -> CliResult {
    use std::io::Read as _;
    let shown = a.file.display().to_string();
    let mut text = String::new();
    std::fs::File::open(&a.file)
        .and_then(|f| f.take(MAX_FILE_LEN + 1).read_to_string(&mut text))
        .map_err(|e| Failure::Io(format!("{shown}: {e}")))?;
    let catalog = PgCatalog::from_toml_str(&text, &shown)?;

    let revision = Operator::run(&a.store, &a.operator, true, async |open, op| {
        let current = PgCatalog::load(&open.sr).await?.map(|s| s.revision);
        let event = op
            .event(Operation::WriteMetadata)?
            .with_path(CATALOG_RECORD);
        op.record(event.clone(), true).await?;
        let principal = op.secrets().principal().name().to_owned();
        match catalog.save(&open.sr, current, &principal).await {
            Ok(rev) => {
                op.conclude(event, Ok(rev), true, |ev, rev| ev.with_version(*rev))
                    .await
            }
            Err(PgDynError::Core(e)) => op.conclude(event, Err(e), true, |ev, _| ev).await,
            Err(e) => {
                let kind = match e {
                    PgDynError::CatalogChanged { .. } => "catalog_changed",
                    _ => "pg_dynamic",
                };
                op.record(
                    event.with_outcome(Outcome::Error { kind: kind.into() }),
                    true,
                )
                .await?;
                Err(e.into())
            }
        }
    })
    .await?;
    println!(
        "role catalog revision {revision}: {} role(s) ({})",
        catalog.roles.len(),
        catalog.roles.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// `creds show`.
pub(crate) async fn show(a: CredsShowArgs) -> CliResult {
    let s = Operator::run(&a.store, &a.operator, true, async |open, op| {
        let event = op.event(Operation::ReadMetadata)?.with_path(CATALOG_RECORD);
        op.record(event, false).await?;
        stored(open).await
    })
    .await?;
    let c = &s.catalog;
    if a.json {
        json::print(&serde_json::json!({
            "revision": s.revision,
            "written_by": s.written_by,
            "connection_secret": c.connection_secret,
            "engine": c.engine,
            "mount": c.mount,
            "role_prefix": c.role_prefix,
            "roles": c.roles.iter().map(|(name, spec)| serde_json::json!({
                "name": name,
                "lease_path": format!("{}/creds/{name}", c.mount),
                "grants": spec.grants.len(),
                "default_ttl_secs": spec.default_ttl_secs,
                "max_ttl_secs": spec.max_ttl_secs,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("revision {} written by {}", s.revision, s.written_by);
    println!("connection secret: {}", c.connection_secret);
    println!(
        "engine: {}, leases under {}/creds/, role prefix {}",
        c.engine, c.mount, c.role_prefix
    );
    for name in c.roles.keys() {
        println!("role {name}");
    }
    Ok(())
}

/// `creds issue ROLE`.
pub(crate) async fn issue(a: CredsIssueArgs) -> CliResult {
    let ttl = a.ttl.map(Duration::from_secs);
    let (lease, cred) = crate::commands::leases::with_leases_and(
        &a.store,
        &a.operator,
        false,
        async |op, open, m| {
            let catalog = stored(open).await?.catalog;
            let definition = catalog.definition(&a.role)?;
            let engine = catalog
                .connect(op.secrets(), &open.sr, std::sync::Arc::clone(m))
                .await?;
            Ok(engine.issue_as(op.secrets(), &definition, ttl).await?)
        },
    )
    .await?;
    if a.json {
        let mut v = serde_json::json!({
            "lease_id": lease.id().to_string(),
            "path": lease.path(),
            "username": cred.username,
            "expires_at": lease.expires_at().to_string(),
            "max_expires_at": lease.max_expires_at().to_string(),
        });
        if !a.reveal {
            v["password"] = serde_json::Value::Null;
            json::print(&v);
            return Ok(());
        }
        // The password only ever in wiped buffers: the document is built
        // as text around it, the field appended last.
        let text = v.to_string();
        let Some(head) = text.strip_suffix('}') else {
            return Err(Failure::Io("cannot build the JSON document".into()));
        };
        let mut out = zeroize::Zeroizing::new(String::with_capacity(text.len() + 64));
        out.push_str(head);
        out.push_str(",\"password\":\"");
        // generated passwords are letters and digits: nothing to escape
        out.push_str(cred.password.expose_secret());
        out.push_str("\"}");
        println!("{}", out.as_str());
        return Ok(());
    }
    println!("lease: {}", lease.id());
    println!("path: {}", lease.path());
    println!("username: {}", cred.username);
    println!("expires: {}", lease.expires_at());
    println!("max expires: {}", lease.max_expires_at());
    if a.reveal {
        println!("password: {}", cred.password.expose_secret());
    } else {
        println!("password: (use --reveal to print it)");
    }
    Ok(())
}

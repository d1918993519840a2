//! The statements the engine runs on the server. Every statement is built
//! by the server from a format string (this crate's keywords, or an
//! operator's template from the configured definition) and arguments; every
//! role it names is an [`EngineRole`].

use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use strongroom::SecretString;
use strongroom::clock::Timestamp;

use super::definition::{CompiledDefinition, PgOwnedObjects};
use super::error::{PgDynError, PgDynResult, db};
use super::naming::EngineRole;

/// Creates `role` from `definition`, with its grants, in one transaction.
pub(super) async fn create_role(
    pool: &PgPool,
    definition: &CompiledDefinition,
    role: &EngineRole,
    verifier: &SecretString,
    expiry: Timestamp,
) -> PgDynResult<()> {
    let role = role.as_str();
    let expiry = expiry.to_rfc3339();
    let mut tx = pool.begin().await.map_err(db("cannot begin"))?;
    if definition.creation.is_empty() {
        run_format(
            &mut tx,
            "CREATE ROLE %I LOGIN PASSWORD %L VALID UNTIL %L",
            &[role, verifier.expose_secret(), &expiry],
            "cannot create the role",
        )
        .await?;
    } else {
        for stmt in &definition.creation {
            run_format(
                &mut tx,
                stmt,
                &[role, verifier.expose_secret(), &expiry],
                "a creation statement failed",
            )
            .await?;
        }
    }
    for grant in &definition.def.grants {
        let (sql, args) = grant.statement(role)?;
        run_format(&mut tx, &sql, &args, "a grant failed").await?;
    }
    // A non-superuser administrator (CREATEROLE) must be a member of the
    // role to end its sessions and drop what it owns on revocation.
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot read the administrator's attributes"))?;
    if !superuser {
        run_format(
            &mut tx,
            "GRANT %I TO CURRENT_USER",
            &[role],
            "cannot make the administrator a member of the role",
        )
        .await?;
    }
    tx.commit()
        .await
        .map_err(db("cannot commit the new role"))?;
    Ok(())
}

/// Moves `role`'s `VALID UNTIL` to `at`.
pub(super) async fn set_valid_until(
    pool: &PgPool,
    role: &EngineRole,
    at: Timestamp,
) -> PgDynResult<()> {
    let role = role.as_str();
    let mut conn = pool.acquire().await.map_err(db("cannot connect"))?;
    let r = run_format(
        &mut conn,
        "ALTER ROLE %I VALID UNTIL %L",
        &[role, &at.to_rfc3339()],
        "cannot move valid until",
    )
    .await;
    match r {
        Err(e) if e.sqlstate() == Some("42704") => Err(PgDynError::RoleNotFound {
            role: role.to_owned(),
        }),
        other => other,
    }
}

/// Takes a role back: no new logins, sessions ended, the revocation
/// statements of `definition` (the configured one; `None` for a role whose
/// definition is unknown: no statements, owned objects dropped), owned
/// objects, `DROP ROLE IF EXISTS`. Idempotent.
pub(super) async fn revoke_role(
    pool: &PgPool,
    role: &EngineRole,
    definition: Option<&CompiledDefinition>,
) -> PgDynResult<()> {
    let role = role.as_str();
    let mut conn = pool.acquire().await.map_err(db("cannot connect"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname::text = $1)")
            .bind(role)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("cannot look up the role"))?;
    if !exists {
        return Ok(());
    }
    // Block new logins first (committed, so it holds for other sessions),
    // then end the sessions that exist.
    match run_format(
        &mut conn,
        "ALTER ROLE %I NOLOGIN",
        &[role],
        "cannot disable login",
    )
    .await
    {
        Err(e) if e.sqlstate() == Some("42704") => return Ok(()),
        other => other?,
    }
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename::text = $1 AND pid <> pg_backend_pid()",
    )
    .bind(role)
    .execute(&mut *conn)
    .await
    .map_err(db("cannot terminate the role's sessions"))?;

    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(db("cannot begin"))?;
    let statements = definition.map_or(&[][..], |d| d.revocation.as_slice());
    for stmt in statements {
        run_format(&mut tx, stmt, &[role], "a revocation statement failed").await?;
    }
    if let Some(PgOwnedObjects::ReassignTo(target)) = definition.map(|d| d.owned()) {
        run_format(
            &mut tx,
            "REASSIGN OWNED BY %I TO %I",
            &[role, target],
            "cannot reassign owned objects",
        )
        .await?;
    }
    run_format(
        &mut tx,
        "DROP OWNED BY %I",
        &[role],
        "cannot drop owned objects",
    )
    .await?;
    run_format(
        &mut tx,
        "DROP ROLE IF EXISTS %I",
        &[role],
        "cannot drop the role",
    )
    .await?;
    tx.commit().await.map_err(db("cannot commit revocation"))?;
    Ok(())
}

/// Has the server build a statement from a format string and arguments
/// (`%I` identifiers, `%L` literals), then runs it.
pub(super) async fn run_format(
    conn: &mut PgConnection,
    format_string: &str,
    args: &[&str],
    what: &'static str,
) -> PgDynResult<()> {
    let sql: String = sqlx::query_scalar("SELECT format($1, VARIADIC $2::text[])")
        .bind(format_string)
        .bind(args)
        .fetch_one(&mut *conn)
        .await
        .map_err(db(what))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map_err(db(what))?;
    Ok(())
}

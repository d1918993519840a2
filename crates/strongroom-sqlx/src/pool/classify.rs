//! How a connection error is classified: a rejected login, a lost
//! connection, or something else.

use super::*;

/// How a connection or query error is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The credentials were refused: refresh and retry.
    Credential,
    /// `pg_hba.conf` rejected the connection (`28000`): not a credential
    /// problem, never retried.
    HbaRejected,
    /// Another authorization failure (`28000` without external auth, e.g. a
    /// role without `LOGIN`).
    NotAuthorized,
    /// The database does not exist (`3D000`).
    DatabaseMissing,
    /// Too many connections (`53300`).
    TooManyConnections,
    /// The server cannot accept connections now (`57P03`).
    Unavailable,
    /// The server ended the session (`57P01`, e.g. when a revoked role's
    /// sessions are terminated): the statement was rolled back; retried
    /// (bounded) on a fresh connection.
    Terminated,
    /// A network, TLS or timeout error.
    Network,
    /// Anything else (query errors and the like).
    Other,
}

/// Classifies an error (see the module docs). `external_auth`: the server
/// authenticates this role through an external method (LDAP, PAM, RADIUS,
/// ...), which reports bad credentials as `28000`.
pub fn classify(err: &sqlx::Error, external_auth: bool) -> ErrorClass {
    match err {
        sqlx::Error::Database(d) => {
            let code = d.code();
            classify_code(code.as_deref().unwrap_or(""), d.message(), external_auth)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorClass::Network,
        _ => ErrorClass::Other,
    }
}

/// Classifies a SQLSTATE with its server message (the message only matters
/// for `28000`, to recognise `pg_hba.conf` rejections; servers running with
/// non-English `lc_messages` are treated as if it were one).
pub fn classify_code(code: &str, message: &str, external_auth: bool) -> ErrorClass {
    match code {
        "28P01" => ErrorClass::Credential,
        "28000" if message.contains("pg_hba.conf") => ErrorClass::HbaRejected,
        "28000" if external_auth && message.is_ascii() => ErrorClass::Credential,
        "28000" => ErrorClass::NotAuthorized,
        "3D000" => ErrorClass::DatabaseMissing,
        "53300" => ErrorClass::TooManyConnections,
        "57P03" => ErrorClass::Unavailable,
        "57P01" => ErrorClass::Terminated,
        c if c.starts_with("08") => ErrorClass::Network,
        _ => ErrorClass::Other,
    }
}

//! Mapping sqlx (PostgreSQL) errors to Strongroom's storage error kinds.

use strongroom::{Error, StorageErrorKind};

/// Classifies a PostgreSQL failure by SQLSTATE.
pub(crate) fn pg_kind(e: &sqlx::Error) -> StorageErrorKind {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.get(..2).unwrap_or("") {
                // invalid authorization, insufficient privilege / syntax-or-access class
                "28" => StorageErrorKind::Rejected,
                "42" if code == "42501" => StorageErrorKind::Rejected,
                // disk full, out of memory, too many connections
                "53" if code == "53300" => StorageErrorKind::Unavailable,
                "53" => StorageErrorKind::Rejected,
                // read-only transaction
                "25" if code == "25006" => StorageErrorKind::Rejected,
                // connection exception, operator intervention (shutdown), system error
                "08" | "57" | "58" => StorageErrorKind::Unavailable,
                // invalid catalog name (no such database)
                "3D" => StorageErrorKind::Unavailable,
                // data corrupted, index corrupted
                "XX" if code == "XX001" || code == "XX002" => StorageErrorKind::Corrupt,
                _ => StorageErrorKind::Other,
            }
        }
        // A certificate that does not verify, or TLS required but not
        // offered: only a change of configuration helps.
        sqlx::Error::Tls(_) => StorageErrorKind::Rejected,
        sqlx::Error::Io(io) if tls_failure(io).is_some() => StorageErrorKind::Rejected,
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StorageErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => StorageErrorKind::Rejected,
        _ => StorageErrorKind::Other,
    }
}

/// The TLS error inside an I/O error: sqlx reports a failed rustls
/// handshake (a certificate that does not verify, say) as an I/O error
/// wrapping the rustls error.
fn tls_failure(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A storage error for the PostgreSQL backend.
pub(crate) fn pg(what: &str, e: sqlx::Error) -> Error {
    let kind = pg_kind(&e);
    Error::storage("postgres", kind, format!("{what}: {}", describe(&e)))
}

/// The error's text, with the SQLSTATE for database errors.
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (code {code})", db.message()),
            None => db.message().to_owned(),
        },
        sqlx::Error::PoolTimedOut => {
            "timed out waiting for a database connection (is the server running and reachable?)"
                .to_owned()
        }
        sqlx::Error::Io(io) if tls_failure(io).is_some() => format!(
            "the TLS handshake failed: {io}; check sslmode, sslrootcert and the server's certificate"
        ),
        sqlx::Error::Tls(tls) => {
            format!("TLS failed: {tls}; check sslmode, sslrootcert and the server's TLS settings")
        }
        other => other.to_string(),
    }
}

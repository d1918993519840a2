//! The crate's one error type, [`PkiError`].

use std::time::Duration;

use strongroom::clock::Timestamp;
use strongroom::{ErrorDetails, FieldValue};

/// `vec![(name, FieldValue::from(value)), ...]`.
macro_rules! fields {
    ($($name:literal => $value:expr),* $(,)?) => {
        vec![$(($name, FieldValue::from($value))),*]
    };
}

/// Shorthand for results of this crate.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

/// Everything that can go wrong in the certificate authority.
///
/// Messages are lower-case and say what to change. Nothing here ever holds
/// a private key; names, serials and paths are public.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// An error from the Strongroom core: a policy refusal
    /// (`strongroom::Error::Policy`), an audit sink that accepted nothing,
    /// a storage fault, a lease quota.
    #[error(transparent)]
    Core(#[from] strongroom::Error),

    /// A mount or role name outside `[a-z0-9_-]`, 1 to 64 bytes.
    #[error("invalid {what} name {name:?}: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidName {
        /// "mount" or "role".
        what: &'static str,
        /// The name as given.
        name: String,
    },

    /// The mount already holds a CA (another process may have created it
    /// first); it is never replaced.
    #[error("mount {mount:?} already holds a certificate authority; use it or pick another mount")]
    CaExists {
        /// The mount.
        mount: String,
    },

    /// The mount holds no CA yet.
    #[error(
        "mount {mount:?} holds no certificate authority; create a root or an intermediate first"
    )]
    UnknownCa {
        /// The mount.
        mount: String,
    },

    /// No role of that name on the mount.
    #[error("mount {mount:?} has no role {role:?}; define it first")]
    UnknownRole {
        /// The mount.
        mount: String,
        /// The role.
        role: String,
    },

    /// A role definition that cannot be used.
    #[error("invalid role: {reason}")]
    InvalidRole {
        /// What is wrong with it.
        reason: String,
    },

    /// A requested name the role does not allow.
    #[error("name {name:?} is not allowed by role {role:?}: {reason}")]
    NameNotAllowed {
        /// The role.
        role: String,
        /// The requested name (DNS name or IP address).
        name: String,
        /// Why.
        reason: &'static str,
    },

    /// A requested TTL over the role's maximum.
    #[error("ttl {requested:?} is over role {role:?}'s max_ttl {max:?}; ask for at most the max")]
    TtlOverMax {
        /// The role.
        role: String,
        /// The requested TTL.
        requested: Duration,
        /// The role's maximum.
        max: Duration,
    },

    /// The certificate would outlive the CA that signs it.
    #[error(
        "a certificate until {requested} would outlive its CA (valid until {ca_not_after}); ask for a shorter ttl"
    )]
    OutlivesCa {
        /// The requested end of validity.
        requested: Timestamp,
        /// The CA certificate's end of validity.
        ca_not_after: Timestamp,
    },

    /// A key type the role does not allow.
    #[error("key type {requested} is not allowed by role {role:?} (allowed: {allowed})")]
    KeyTypeNotAllowed {
        /// The role.
        role: String,
        /// The requested key type.
        requested: crate::KeyType,
        /// The allowed ones, comma-separated.
        allowed: String,
    },

    /// A usage (server or client authentication) the role does not allow.
    #[error("usage {requested} is not allowed by role {role:?}")]
    UsageNotAllowed {
        /// The role.
        role: String,
        /// The requested usage.
        requested: crate::Usage,
    },

    /// A request that makes no sense whatever the role says (no names, a
    /// zero TTL, a malformed serial).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },

    /// No certificate of that serial is live on the mount (never issued,
    /// already revoked, or expired and removed).
    #[error("mount {mount:?} has no live certificate with serial {serial}")]
    UnknownCertificate {
        /// The mount.
        mount: String,
        /// The serial in hex.
        serial: String,
    },

    /// A stored record failed authentication (edited, moved, forged) or
    /// does not decode.
    #[error("record {key} is unusable: {reason}")]
    BadRecord {
        /// The storage key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Building, signing or parsing a certificate or CRL failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),

    /// rustls refused a key, chain or verifier configuration.
    #[error("tls configuration failed: {0}")]
    Tls(String),

    /// A compare-and-set kept losing to other writers.
    #[error("record {key} kept changing under {attempts} attempts; retry later")]
    Contended {
        /// The storage key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl PkiError {
    /// A short stable name for the error, e.g. `name_not_allowed`; core
    /// errors give their own (`policy_denied`, `storage`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Core(e) => e.kind(),
            Self::InvalidName { .. } => "pki_invalid_name",
            Self::CaExists { .. } => "pki_ca_exists",
            Self::UnknownCa { .. } => "pki_unknown_ca",
            Self::UnknownRole { .. } => "pki_unknown_role",
            Self::InvalidRole { .. } => "pki_invalid_role",
            Self::NameNotAllowed { .. } => "pki_name_not_allowed",
            Self::TtlOverMax { .. } => "pki_ttl_over_max",
            Self::OutlivesCa { .. } => "pki_outlives_ca",
            Self::KeyTypeNotAllowed { .. } => "pki_key_type_not_allowed",
            Self::UsageNotAllowed { .. } => "pki_usage_not_allowed",
            Self::InvalidRequest { .. } => "pki_invalid_request",
            Self::UnknownCertificate { .. } => "pki_unknown_certificate",
            Self::BadRecord { .. } => "pki_bad_record",
            Self::Certificate(_) => "pki_certificate",
            Self::Tls(_) => "pki_tls",
            Self::Contended { .. } => "pki_contended",
        }
    }

    /// This error as a stable code and named fields, for language bindings
    /// and structured logs: core errors give the core's
    /// [`details`](strongroom::Error::details); the CA's own give their
    /// `pki.*` row of [`strongroom::ERROR_CODES`] (class `Pki...`, parent
    /// `PkiError`), durations in whole seconds (`_secs`). No field holds a
    /// secret.
    ///
    /// ```
    /// use strongroom_pki::PkiError;
    /// let e = PkiError::UnknownRole { mount: "pki".into(), role: "web".into() };
    /// let d = e.details();
    /// assert_eq!(d.code, "pki.unknown_role");
    /// assert_eq!((d.class, d.parent), ("PkiUnknownRole", "PkiError"));
    /// ```
    pub fn details(&self) -> ErrorDetails {
        let (code, fields) = match self {
            Self::Core(e) => return e.details(),
            Self::InvalidName { what, name } => (
                "pki.invalid_name",
                fields!["what" => *what, "given_name" => name],
            ),
            Self::CaExists { mount } => ("pki.ca_exists", fields!["mount" => mount]),
            Self::UnknownCa { mount } => ("pki.unknown_ca", fields!["mount" => mount]),
            Self::UnknownRole { mount, role } => (
                "pki.unknown_role",
                fields!["mount" => mount, "role" => role],
            ),
            Self::InvalidRole { reason } => ("pki.invalid_role", fields!["reason" => reason]),
            Self::NameNotAllowed { role, name, reason } => (
                "pki.name_not_allowed",
                fields!["role" => role, "requested_name" => name, "reason" => *reason],
            ),
            Self::TtlOverMax {
                role,
                requested,
                max,
            } => (
                "pki.ttl_over_max",
                fields![
                    "role" => role,
                    "requested_secs" => requested.as_secs(),
                    "max_secs" => max.as_secs(),
                ],
            ),
            Self::OutlivesCa {
                requested,
                ca_not_after,
            } => (
                "pki.outlives_ca",
                fields!["requested" => *requested, "ca_not_after" => *ca_not_after],
            ),
            Self::KeyTypeNotAllowed {
                role,
                requested,
                allowed,
            } => (
                "pki.key_type_not_allowed",
                fields![
                    "role" => role,
                    "requested" => requested.to_string(),
                    "allowed" => allowed,
                ],
            ),
            Self::UsageNotAllowed { role, requested } => (
                "pki.usage_not_allowed",
                fields!["role" => role, "requested" => requested.to_string()],
            ),
            Self::InvalidRequest { reason } => ("pki.invalid_request", fields!["reason" => reason]),
            Self::UnknownCertificate { mount, serial } => (
                "pki.unknown_certificate",
                fields!["mount" => mount, "serial" => serial],
            ),
            Self::BadRecord { key, reason } => {
                ("pki.bad_record", fields!["key" => key, "reason" => reason])
            }
            Self::Certificate(detail) => ("pki.certificate", fields!["detail" => detail]),
            Self::Tls(detail) => ("pki.tls", fields!["detail" => detail]),
            Self::Contended { key, attempts } => (
                "pki.contended",
                fields!["key" => key, "attempts" => *attempts],
            ),
        };
        ErrorDetails::from_row(code, self.to_string(), fields)
    }

    pub(crate) fn cert(e: impl std::fmt::Display) -> Self {
        Self::Certificate(e.to_string())
    }

    pub(crate) fn tls(e: impl std::fmt::Display) -> Self {
        Self::Tls(e.to_string())
    }
}

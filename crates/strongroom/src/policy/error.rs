//! The policy errors.

use super::*;

/// Errors of the path policies and principals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The principal's policies do not grant the capability on the path.
    #[error("principal {principal:?} may not {capability} {path:?}")]
    Denied {
        /// The principal's name.
        principal: String,
        /// The capability asked for.
        capability: Capability,
        /// The path (paths are not secret).
        path: String,
    },

    /// A policy file is wrong at this place.
    #[error("policy {source_name}:{line}:{column}: {message}")]
    Parse {
        /// Where the text came from: a file path, or `<string>`.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong there.
        message: String,
    },

    /// A pattern given in code is invalid.
    #[error("invalid policy pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A capability name is not one of the known ones.
    #[error(
        "unknown capability {0:?} (expected read, create, update, delete, list, rotate, lease, sudo, sign or deny)"
    )]
    UnknownCapability(String),

    /// A principal names a policy that is not loaded.
    #[error("no policy named {0:?} is loaded")]
    UnknownPolicy(String),

    /// A policy file could not be read.
    #[error("cannot read policy file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

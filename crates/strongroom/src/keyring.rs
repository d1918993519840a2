//! The versioned keyring.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The lifecycle state of a keyring key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyState {
    /// Seals new values and opens old ones. Exactly one key is primary.
    Primary,
    /// Opens values; does not seal.
    Active,
    /// Below the minimum decryption version: opens nothing, still stored.
    Retired,
    /// Key material erased. Final.
    Destroyed,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Destroyed => "destroyed",
        })
    }
}

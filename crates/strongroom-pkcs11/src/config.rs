//! What the protector is told (the token, the PIN, the key label, the
//! wrapping mechanism) and what it reports of a token key.

use std::fmt;
use std::path::PathBuf;

use cryptoki::mechanism::MechanismType;
use strongroom::{ProtectorErrorKind, Result, SecretString};

use crate::error::err;

/// How the token key wraps the root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrapMechanism {
    /// `CKM_AES_GCM` through `C_Encrypt`/`C_Decrypt`, with a random 96-bit IV
    /// and the blob header as associated data.
    AesGcm,
    /// `CKM_AES_KEY_WRAP_PAD` (RFC 5649) through `C_WrapKey`/`C_UnwrapKey`.
    AesKeyWrapPad,
}

impl WrapMechanism {
    pub(crate) fn id(self) -> u8 {
        match self {
            Self::AesGcm => 1,
            Self::AesKeyWrapPad => 2,
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::AesGcm),
            2 => Some(Self::AesKeyWrapPad),
            _ => None,
        }
    }

    pub(crate) fn mechanism_type(self) -> MechanismType {
        match self {
            Self::AesGcm => MechanismType::AES_GCM,
            Self::AesKeyWrapPad => MechanismType::AES_KEY_WRAP_PAD,
        }
    }
}

impl fmt::Display for WrapMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AesGcm => "CKM_AES_GCM",
            Self::AesKeyWrapPad => "CKM_AES_KEY_WRAP_PAD",
        })
    }
}

/// Where the token key lives and how to reach it.
///
/// The PIN comes from the caller (a secret store, a prompt, a file the
/// operator chose); it is never read from the environment and never logged.
/// `Debug` redacts it.
#[derive(Clone)]
pub struct Pkcs11Config {
    pub(crate) module_path: PathBuf,
    pub(crate) token_label: String,
    pub(crate) pin: SecretString,
    pub(crate) key_label: String,
    pub(crate) mechanism: Option<WrapMechanism>,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module_path", &self.module_path)
            .field("token_label", &self.token_label)
            .field("pin", &"[REDACTED]")
            .field("key_label", &self.key_label)
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

impl Pkcs11Config {
    /// A configuration: the module library, the token's label (not a slot
    /// id, which may change), the user PIN, and the label of the token key.
    pub fn new(
        module_path: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: SecretString,
        key_label: impl Into<String>,
    ) -> Self {
        Self {
            module_path: module_path.into(),
            token_label: token_label.into(),
            pin,
            key_label: key_label.into(),
            mechanism: None,
        }
    }

    /// Forces a wrapping mechanism for keys this protector generates
    /// (default: AES-GCM when offered, else AES key wrap with padding).
    pub fn with_mechanism(mut self, mechanism: WrapMechanism) -> Self {
        self.mechanism = Some(mechanism);
        self
    }

    /// The module path.
    pub fn module_path(&self) -> &std::path::Path {
        &self.module_path
    }

    /// The token label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The token key's label.
    pub fn key_label(&self) -> &str {
        &self.key_label
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.token_label.is_empty() || self.token_label.len() > 32 {
            return Err(err(
                ProtectorErrorKind::Config,
                "the token label must be 1 to 32 characters",
            ));
        }
        if self.key_label.is_empty() || self.key_label.len() > 255 {
            return Err(err(
                ProtectorErrorKind::Config,
                "the key label must be 1 to 255 bytes",
            ));
        }
        if self.pin.expose_secret().is_empty() {
            return Err(err(ProtectorErrorKind::Config, "the PIN is empty"));
        }
        Ok(())
    }
}

/// Attributes of a token key as the token reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenKeyInfo {
    /// `CKA_LABEL`.
    pub label: String,
    /// The key version (`CKA_ID`, 4 bytes big-endian).
    pub version: u32,
    /// `CKA_TOKEN`: stored on the token (not a session object).
    pub token: bool,
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL`: generated on the token.
    pub local: bool,
    /// `CKA_VALUE_LEN` in bytes.
    pub value_len: u64,
    /// The mechanism the key's usage attributes allow.
    pub mechanism: WrapMechanism,
}

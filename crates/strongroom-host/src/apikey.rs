//! An API-key rotation as the bindings offer it: a [`RotationEngine`]
//! driving an [`ApiKeyRotator`] and the [`ApiKeyVerifier`] it keeps in
//! step, with one set of rules for the key format.

use std::sync::Arc;

use strongroom::SecretBytes;
use strongroom::dangerous::Door;
use strongroom::rotation::{
    ApiKeyFormat, ApiKeyRotator, ApiKeyVerifier, Matched, RotationEngine, RotationOptions,
    StagedCredentials,
};

/// The fewest random bits a generated key may carry: 16 base62 characters
/// (95.3 bits) or 12 random bytes (96 bits) in hex.
pub const MIN_BASE62_CHARS: usize = 16;
/// See [`MIN_BASE62_CHARS`].
pub const MIN_HEX_BYTES: usize = 12;
/// The most random characters (base62) or bytes (hex) a key may have.
pub const MAX_RANDOM: usize = 1024;
/// The longest prefix.
pub const MAX_PREFIX: usize = 64;

/// How generated keys look, checked by the one set of rules every binding
/// uses: a prefix of at most [`MAX_PREFIX`] printable ASCII characters
/// without spaces, and a random part of [`MIN_BASE62_CHARS`] to
/// [`MAX_RANDOM`] base62 characters or [`MIN_HEX_BYTES`] to [`MAX_RANDOM`]
/// bytes as lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySpec {
    format: ApiKeyFormat,
}

fn invalid(msg: String) -> strongroom::Error {
    strongroom::Error::InvalidArgument(msg)
}

fn check_prefix(prefix: &str) -> strongroom::Result<()> {
    if prefix.len() > MAX_PREFIX || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "an API key prefix must be at most {MAX_PREFIX} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

impl ApiKeySpec {
    /// `prefix` followed by `chars` characters from `0-9A-Za-z`.
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] outside the rules above.
    pub fn base62(prefix: &str, chars: usize) -> strongroom::Result<Self> {
        check_prefix(prefix)?;
        if !(MIN_BASE62_CHARS..=MAX_RANDOM).contains(&chars) {
            return Err(invalid(format!(
                "an API key needs {MIN_BASE62_CHARS} to {MAX_RANDOM} random base62 characters, got {chars}"
            )));
        }
        Ok(Self {
            format: ApiKeyFormat::base62(prefix, chars),
        })
    }

    /// `prefix` followed by `bytes` random bytes as lower-case hex.
    ///
    /// # Errors
    ///
    /// [`strongroom::Error::InvalidArgument`] outside the rules above.
    pub fn hex(prefix: &str, bytes: usize) -> strongroom::Result<Self> {
        check_prefix(prefix)?;
        if !(MIN_HEX_BYTES..=MAX_RANDOM).contains(&bytes) {
            return Err(invalid(format!(
                "an API key needs {MIN_HEX_BYTES} to {MAX_RANDOM} random bytes in hex, got {bytes}"
            )));
        }
        Ok(Self {
            format: ApiKeyFormat::hex(prefix, bytes),
        })
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.format.prefix
    }

    /// The core's format.
    #[must_use]
    pub fn format(&self) -> &ApiKeyFormat {
        &self.format
    }
}

/// One rotated API key: its engine and the verifier that accepts the
/// current key and, during the grace period, the previous one. Cheap to
/// clone.
#[derive(Clone)]
pub struct ApiKeyRotation {
    engine: Arc<RotationEngine>,
    verifier: Arc<ApiKeyVerifier>,
    /// The identity of every version (the core's rotator records the prefix).
    prefix: Arc<str>,
}

impl std::fmt::Debug for ApiKeyRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRotation")
            .field("name", &self.engine.name())
            .finish_non_exhaustive()
    }
}

impl ApiKeyRotation {
    /// Opens the rotation of credential `name` in `door`'s store. The
    /// verifier starts with the versions already stored, so a second
    /// rotation over the same store (another process) accepts the same
    /// keys. Does not rotate.
    ///
    /// # Errors
    ///
    /// As for [`Door::rotation_engine`] (a bad name is
    /// [`strongroom::Error::InvalidPath`]) and [`ApiKeyVerifier::new`].
    pub async fn open(
        door: &Door,
        name: &str,
        spec: ApiKeySpec,
        options: RotationOptions,
    ) -> strongroom::Result<Self> {
        Self::open_with(door, name, spec, options, Arc::new(ApiKeyVerifier::new()?)).await
    }

    /// As [`ApiKeyRotation::open`], keeping `verifier` (which the host may
    /// hold elsewhere, such as in a request handler) in step.
    ///
    /// # Errors
    ///
    /// As for [`ApiKeyRotation::open`].
    pub async fn open_with(
        door: &Door,
        name: &str,
        spec: ApiKeySpec,
        options: RotationOptions,
        verifier: Arc<ApiKeyVerifier>,
    ) -> strongroom::Result<Self> {
        let prefix: Arc<str> = Arc::from(spec.prefix());
        let rotator = ApiKeyRotator::new(spec.format, verifier.clone());
        let engine = door
            .rotation_engine(name, Arc::new(rotator), options)
            .await?;
        verifier.sync(&engine.staged().await?)?;
        Ok(Self {
            engine: Arc::new(engine),
            verifier,
            prefix,
        })
    }

    /// The engine (rotate, status, staged, revoke).
    #[must_use]
    pub fn engine(&self) -> &Arc<RotationEngine> {
        &self.engine
    }

    /// The credential name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.engine.name()
    }

    /// Checks a presented key in constant time.
    #[must_use]
    pub fn verify(&self, presented: &[u8]) -> Matched {
        self.verifier.verify(presented)
    }

    /// The stored versions.
    ///
    /// # Errors
    ///
    /// As for [`RotationEngine::staged`].
    pub async fn staged(&self) -> strongroom::Result<StagedCredentials> {
        self.engine.staged().await
    }

    /// Imports an existing key (any format, not empty) as the current
    /// version; refused once a current version exists. Returns its version.
    ///
    /// # Errors
    ///
    /// As for [`RotationEngine::import_current`].
    pub async fn import_current(&self, key: SecretBytes) -> strongroom::Result<u64> {
        let v = self
            .engine
            .import_current(self.prefix.to_string(), key)
            .await?;
        self.refresh().await?;
        Ok(v)
    }

    /// Reloads the verifier from the stored versions (after another process
    /// rotated).
    ///
    /// # Errors
    ///
    /// As for [`RotationEngine::staged`].
    pub async fn refresh(&self) -> strongroom::Result<()> {
        self.verifier.sync(&self.engine.staged().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_set_of_rules() {
        assert!(ApiKeySpec::base62("sk_live_", 32).is_ok());
        assert!(ApiKeySpec::hex("", 16).is_ok());
        for bad in [
            ApiKeySpec::base62("sk_", 15),
            ApiKeySpec::base62("sk_", 1025),
            ApiKeySpec::hex("hk_", 11),
            ApiKeySpec::base62("has space", 32),
            ApiKeySpec::base62(&"p".repeat(65), 32),
        ] {
            assert!(
                matches!(bad, Err(strongroom::Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}

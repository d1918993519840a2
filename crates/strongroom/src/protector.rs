//! The key-protector seam: what guards the root key.
//!
//! The keyring is stored sealed under a random 256-bit root key. A
//! [`KeyProtector`] wraps that root key for storage and unwraps it at unseal
//! time. [`SoftwareProtector`] does so with a key-encryption key from a file
//! or from the caller; the `strongroom-pkcs11` crate does so inside an HSM so
//! the wrapping key never enters the process.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::seal::{Algorithm, DataKey, SealContext, SealedValue};
use crate::{Error, KeyFileError, ProtectorErrorKind, Result, SecretBytes};

/// Wraps and unwraps the root key.
#[async_trait]
pub trait KeyProtector: Send + Sync + fmt::Debug {
    /// A short name for errors and audit records ("software", "pkcs11").
    fn kind(&self) -> &'static str;

    /// Wraps `root_key` for storage. The result is opaque and safe to store.
    async fn wrap(&self, root_key: &SecretBytes) -> Result<Vec<u8>>;

    /// Unwraps what [`KeyProtector::wrap`] produced. A blob made by another
    /// protector, another key or tampered with fails with
    /// [`ProtectorErrorKind::UnwrapFailed`].
    async fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes>;
}

/// The associated-data context for wrapped root keys.
const ROOT_WRAP_CONTEXT: &str = "sys/root-key";

/// A protector holding a 256-bit key-encryption key in process memory.
///
/// The key comes from the caller or from a key file that only its owner can
/// read. Its `Debug` shows no key material.
pub struct SoftwareProtector {
    kek: DataKey,
    source: Option<PathBuf>,
}

impl fmt::Debug for SoftwareProtector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareProtector")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SoftwareProtector {
    /// From 32 key bytes supplied by the caller.
    pub fn from_key(key: SecretBytes) -> Result<Self> {
        Ok(Self {
            kek: DataKey::new(Algorithm::Aes256Gcm, key)?,
            source: None,
        })
    }

    /// Reads a key file written by [`SoftwareProtector::generate_key_file`]:
    /// one line of base64 holding 32 bytes. The file must not be readable or
    /// writable by group or others.
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let fail = |reason| Error::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        check_owner_only(path).map_err(fail)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| fail(KeyFileError::Io(e.to_string())))?,
        );
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| fail(KeyFileError::BadContent))?,
        );
        if bytes.len() != 32 {
            return Err(fail(KeyFileError::BadContent));
        }
        Ok(Self {
            kek: DataKey::new(Algorithm::Aes256Gcm, SecretBytes::copy_from(&bytes))?,
            source: Some(path.to_owned()),
        })
    }

    /// Creates a new key file with mode 0600 holding a fresh random key.
    /// Refuses to overwrite an existing file.
    pub fn generate_key_file(path: impl AsRef<Path>) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = path.as_ref();
        let fail = |reason| Error::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let key = SecretBytes::random(32)?;
        let text = Zeroizing::new(format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(key.expose_secret())
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => fail(KeyFileError::Exists),
                _ => fail(KeyFileError::Io(e.to_string())),
            })?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| fail(KeyFileError::Io(e.to_string())))
    }
}

fn check_owner_only(path: &Path) -> std::result::Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| KeyFileError::Io(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::LoosePermissions { mode });
    }
    Ok(())
}

#[async_trait]
impl KeyProtector for SoftwareProtector {
    fn kind(&self) -> &'static str {
        "software"
    }

    async fn wrap(&self, root_key: &SecretBytes) -> Result<Vec<u8>> {
        wrap_root_key(&self.kek, root_key)
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        unwrap_root_key(
            &self.kek,
            wrapped,
            "software",
            "the wrapped root key does not open with this key (wrong key file?)",
        )
    }
}

/// Wraps the root key under an in-memory key-encryption key (the format
/// shared by the software and Shamir protectors).
pub(crate) fn wrap_root_key(kek: &DataKey, root_key: &SecretBytes) -> Result<Vec<u8>> {
    let sealed = kek.seal(
        0,
        root_key.expose_secret(),
        &SealContext::new(ROOT_WRAP_CONTEXT, 0),
    )?;
    Ok(sealed.into_bytes())
}

/// Reverses [`wrap_root_key`]; any failure is one opaque
/// [`ProtectorErrorKind::UnwrapFailed`] naming `protector`, with `hint`.
pub(crate) fn unwrap_root_key(
    kek: &DataKey,
    wrapped: &[u8],
    protector: &'static str,
    hint: &'static str,
) -> Result<SecretBytes> {
    let unwrap_failed = || Error::protector(protector, ProtectorErrorKind::UnwrapFailed, hint);
    let sealed = SealedValue::parse(wrapped).map_err(|_| unwrap_failed())?;
    kek.open(&sealed, &SealContext::new(ROOT_WRAP_CONTEXT, 0))
        .map_err(|_| unwrap_failed())
}

/// The conformance suite every [`KeyProtector`] runs.
#[cfg(any(test, feature = "testing"))]
#[allow(clippy::unwrap_used, missing_docs)]
pub mod conformance {
    use super::*;

    /// Runs every check. `a` and `b` must be two protectors with different keys.
    pub async fn run_all(a: &dyn KeyProtector, b: &dyn KeyProtector) {
        round_trip(a).await;
        wrapped_bytes_hide_the_key(a).await;
        tampering_is_detected(a).await;
        other_protector_cannot_unwrap(a, b).await;
    }

    pub async fn round_trip(p: &dyn KeyProtector) {
        let root = SecretBytes::random(32).unwrap();
        let w = p.wrap(&root).await.unwrap();
        assert_eq!(p.unwrap(&w).await.unwrap(), root);
        // wrapping twice gives different blobs (fresh nonce or IV) or at least both unwrap
        let w2 = p.wrap(&root).await.unwrap();
        assert_eq!(p.unwrap(&w2).await.unwrap(), root);
    }

    pub async fn wrapped_bytes_hide_the_key(p: &dyn KeyProtector) {
        let root = SecretBytes::random(32).unwrap();
        let w = p.wrap(&root).await.unwrap();
        assert!(
            !w.windows(8)
                .any(|win| root.expose_secret().windows(8).any(|r| r == win))
        );
    }

    pub async fn tampering_is_detected(p: &dyn KeyProtector) {
        let root = SecretBytes::random(32).unwrap();
        let w = p.wrap(&root).await.unwrap();
        for i in [0, w.len() / 2, w.len() - 1] {
            let mut t = w.clone();
            t[i] ^= 0x01;
            let e = p.unwrap(&t).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Protector {
                        kind: ProtectorErrorKind::UnwrapFailed,
                        ..
                    }
                ),
                "flip at {i}: {e:?}"
            );
        }
        let e = p.unwrap(&w[..w.len() - 1]).await.unwrap_err();
        assert!(matches!(
            e,
            Error::Protector {
                kind: ProtectorErrorKind::UnwrapFailed,
                ..
            }
        ));
        let e = p.unwrap(&[]).await.unwrap_err();
        assert!(matches!(
            e,
            Error::Protector {
                kind: ProtectorErrorKind::UnwrapFailed,
                ..
            }
        ));
    }

    pub async fn other_protector_cannot_unwrap(a: &dyn KeyProtector, b: &dyn KeyProtector) {
        let root = SecretBytes::random(32).unwrap();
        let w = a.wrap(&root).await.unwrap();
        let e = b.unwrap(&w).await.unwrap_err();
        assert!(matches!(
            e,
            Error::Protector {
                kind: ProtectorErrorKind::UnwrapFailed,
                ..
            }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw() -> SoftwareProtector {
        SoftwareProtector::from_key(SecretBytes::random(32).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn software_conformance() {
        conformance::run_all(&sw(), &sw()).await;
    }

    #[test]
    fn key_file_permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        SoftwareProtector::generate_key_file(&path).unwrap();
        SoftwareProtector::from_key_file(&path).unwrap();
        assert!(matches!(
            SoftwareProtector::generate_key_file(&path),
            Err(Error::KeyFile {
                reason: KeyFileError::Exists,
                ..
            })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SoftwareProtector::from_key_file(&path).unwrap_err();
        assert!(matches!(
            e,
            Error::KeyFile {
                reason: KeyFileError::LoosePermissions { mode: 0o644 },
                ..
            }
        ));
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn key_file_content_is_checked() {
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).mode(0o600);
        std::io::Write::write_all(&mut o.open(&path).unwrap(), b"not base64!!").unwrap();
        assert!(matches!(
            SoftwareProtector::from_key_file(&path),
            Err(Error::KeyFile {
                reason: KeyFileError::BadContent,
                ..
            })
        ));
        assert!(matches!(
            SoftwareProtector::from_key_file(dir.path().join("missing")),
            Err(Error::KeyFile {
                reason: KeyFileError::Io(_),
                ..
            })
        ));
    }

    #[test]
    fn debug_has_no_key() {
        let p = sw();
        let d = format!("{p:?}");
        assert!(d.starts_with("SoftwareProtector"), "{d}");
        assert!(!d.contains("kek"));
    }
}

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
    /// one line of base64 holding 32 bytes.
    ///
    /// Before the key is used the file must pass these checks, each failing
    /// with its own [`KeyFileError`] inside [`Error::KeyFile`]:
    ///
    /// - it belongs to the user this process runs as (its effective uid;
    ///   [`KeyFileError::WrongOwner`]);
    /// - it is not readable or writable by group or others
    ///   ([`KeyFileError::LoosePermissions`]);
    /// - the directory holding it is not writable by group or others, with
    ///   or without the sticky bit, so a key file directly in `/tmp` is
    ///   refused ([`KeyFileError::UnsafeDirectory`]). When the path is a
    ///   symbolic link, the directory of the file it resolves to is checked
    ///   too. Directories further up are not checked;
    /// - it is at most [`MAX_KEY_FILE_LEN`] bytes; a longer file (or an
    ///   endless source such as a device) is refused after reading at most
    ///   one byte more than that ([`KeyFileError::TooLarge`]).
    ///
    /// The owner, mode and size are read from the opened file, so the file
    /// checked is the file read.
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let fail = |reason| Error::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let bytes = read_key_file(path).map_err(fail)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| fail(KeyFileError::BadContent))?;
        let key = parse_key_file_text(text).map_err(fail)?;
        Ok(Self {
            kek: DataKey::new(Algorithm::Aes256Gcm, key)?,
            source: Some(path.to_owned()),
        })
    }

    /// Creates a new key file with mode 0600 holding a fresh random key.
    /// Refuses to overwrite an existing file, and to write into a directory
    /// that group or others can write ([`KeyFileError::UnsafeDirectory`]),
    /// where [`SoftwareProtector::from_key_file`] would refuse to read it.
    pub fn generate_key_file(path: impl AsRef<Path>) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = path.as_ref();
        let fail = |reason| Error::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        check_directory(&parent_dir(path)).map_err(fail)?;
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

/// The key in a key file's text: one line of standard base64 holding 32
/// bytes; surrounding whitespace is ignored.
pub(crate) fn parse_key_file_text(text: &str) -> std::result::Result<SecretBytes, KeyFileError> {
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyFileError::BadContent)?,
    );
    if bytes.len() != 32 {
        return Err(KeyFileError::BadContent);
    }
    Ok(SecretBytes::copy_from(&bytes))
}

/// The most bytes a key file may have. A key file is 45 bytes (44 of
/// base64 and a newline); the slack allows for surrounding whitespace.
pub const MAX_KEY_FILE_LEN: u64 = 4096;

/// Opens the key file, checks it (see [`SoftwareProtector::from_key_file`])
/// and reads its bytes, at most [`MAX_KEY_FILE_LEN`] of them.
fn read_key_file(path: &Path) -> std::result::Result<Zeroizing<Vec<u8>>, KeyFileError> {
    use std::io::Read as _;
    let io = |e: std::io::Error| KeyFileError::Io(e.to_string());
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_owner_only(&meta)?;
    check_directory(&parent_dir(path))?;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        // A link to something without a directory (a pipe under /dev/fd)
        // does not resolve; there is no other directory to check then.
        && let Ok(target) = std::fs::canonicalize(path)
    {
        check_directory(&parent_dir(&target))?;
    }
    let too_large = KeyFileError::TooLarge {
        limit: MAX_KEY_FILE_LEN,
    };
    if meta.is_file() && meta.len() > MAX_KEY_FILE_LEN {
        return Err(too_large);
    }
    // The size may change after the check, and a device or pipe has none:
    // read at most one byte more than allowed, to tell a file that is too
    // long. One buffer of that size, never grown, so no copy of the key is
    // left behind in a freed allocation; it is wiped on drop.
    let mut bytes = Zeroizing::new(vec![0u8; MAX_KEY_FILE_LEN as usize + 1]);
    let mut len = 0;
    let mut reader = file.take(MAX_KEY_FILE_LEN + 1);
    while len < bytes.len() {
        match reader.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    if len as u64 > MAX_KEY_FILE_LEN {
        return Err(too_large);
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// The key file must belong to this process's effective user and be
/// readable and writable by nobody else.
fn check_owner_only(meta: &std::fs::Metadata) -> std::result::Result<(), KeyFileError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let expected = effective_uid().map_err(|e| {
        KeyFileError::Io(format!(
            "cannot tell which user this process runs as, to check the key file's owner: {e}"
        ))
    })?;
    if meta.uid() != expected {
        return Err(KeyFileError::WrongOwner {
            uid: meta.uid(),
            expected,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::LoosePermissions { mode });
    }
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Refuses a directory that its group or others can write. The sticky bit
/// (as on `/tmp`) does not make it acceptable: other users can still create
/// names there, and a key belongs in a directory of its own.
fn check_directory(dir: &Path) -> std::result::Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(dir)
        .map_err(|e| KeyFileError::Io(format!("directory {}: {e}", dir.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(KeyFileError::UnsafeDirectory {
            dir: dir.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// The effective user id of this process.
///
/// The standard library has no `geteuid`, and this crate has no `unsafe`
/// to call libc's. On Linux the `Uid:` line of `/proc/self/status` lists
/// the real, effective, saved and file-system uids the kernel keeps for
/// this process; the second is the effective uid, read from the kernel's
/// own record and not from anything another user controls. Where that file
/// cannot be read (no `/proc`, or not Linux), the owner of a file this
/// process creates (exclusively, mode 0600) in the temporary directory and
/// removes again is used: on every Unix the kernel gives a new file the
/// creating process's effective uid (on Linux, its file-system uid, which
/// is the effective uid unless the process changed it on purpose), and the
/// owner is read from the open file, not looked up by name.
fn effective_uid() -> std::io::Result<u32> {
    match uid_from_proc() {
        Ok(uid) => Ok(uid),
        Err(_) => uid_from_new_file(),
    }
}

fn uid_from_proc() -> std::io::Result<u32> {
    use std::io::Read as _;
    let mut status = String::new();
    std::fs::File::open("/proc/self/status")?
        .take(64 * 1024)
        .read_to_string(&mut status)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| std::io::Error::other("/proc/self/status has no effective uid"))
}

fn uid_from_new_file() -> std::io::Result<u32> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = std::io::Error::other("no attempt");
    for attempt in 0..8u32 {
        let probe = dir.join(format!(
            ".strongroom-uid-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe)
        {
            Ok(file) => {
                let uid = file.metadata().map(|m| m.uid());
                let _ = std::fs::remove_file(&probe);
                return uid;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
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

    /// Writes `content` to a new 0600 file at `path`.
    fn write_owner_only(path: &Path, content: &[u8]) {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true).mode(0o600);
        std::io::Write::write_all(&mut o.open(path).unwrap(), content).unwrap();
    }

    fn reason(r: Result<SoftwareProtector>) -> KeyFileError {
        match r {
            Err(Error::KeyFile { reason, .. }) => reason,
            other => panic!("expected a key file error, got {other:?}"),
        }
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn key_file_in_a_world_or_group_writable_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let path = shared.join("root.key");
        SoftwareProtector::generate_key_file(&path).unwrap();
        SoftwareProtector::from_key_file(&path).unwrap();
        for mode in [0o777, 0o1777, 0o770, 0o730, 0o702] {
            set_mode(&shared, mode);
            let e = SoftwareProtector::from_key_file(&path).unwrap_err();
            assert!(e.to_string().contains("chmod go-w"), "{e}");
            match e {
                Error::KeyFile {
                    reason: KeyFileError::UnsafeDirectory { dir, mode: m },
                    ..
                } => {
                    assert_eq!(m, mode);
                    assert_eq!(dir, shared.display().to_string());
                }
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        // nor does generate_key_file write a key there
        assert!(matches!(
            SoftwareProtector::generate_key_file(shared.join("new.key")),
            Err(Error::KeyFile {
                reason: KeyFileError::UnsafeDirectory { .. },
                ..
            })
        ));
        assert!(!shared.join("new.key").exists());
        set_mode(&shared, 0o750);
        SoftwareProtector::from_key_file(&path).unwrap();
    }

    #[test]
    fn symbolic_link_to_a_key_in_an_unsafe_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let target = shared.join("root.key");
        SoftwareProtector::generate_key_file(&target).unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        set_mode(&private, 0o700);
        let link = private.join("root.key");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        SoftwareProtector::from_key_file(&link).unwrap();
        set_mode(&shared, 0o1777);
        assert!(matches!(
            reason(SoftwareProtector::from_key_file(&link)),
            KeyFileError::UnsafeDirectory { mode: 0o1777, .. }
        ));
    }

    #[test]
    fn oversized_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.key");
        write_owner_only(&path, &vec![b'A'; 1 << 20]);
        let e = SoftwareProtector::from_key_file(&path).unwrap_err();
        assert!(matches!(
            e,
            Error::KeyFile {
                reason: KeyFileError::TooLarge {
                    limit: MAX_KEY_FILE_LEN
                },
                ..
            }
        ));
        assert!(e.to_string().contains("larger than 4096 bytes"), "{e}");
        // one byte over the limit too; a valid key padded with whitespace
        // up to the limit still reads
        let over = dir.path().join("over.key");
        write_owner_only(&over, &vec![b' '; MAX_KEY_FILE_LEN as usize + 1]);
        assert!(matches!(
            reason(SoftwareProtector::from_key_file(&over)),
            KeyFileError::TooLarge { .. }
        ));
        let good = dir.path().join("good.key");
        SoftwareProtector::generate_key_file(&good).unwrap();
        let mut text = std::fs::read(&good).unwrap();
        text.resize(MAX_KEY_FILE_LEN as usize, b'\n');
        let padded = dir.path().join("padded.key");
        write_owner_only(&padded, &text);
        SoftwareProtector::from_key_file(&padded).unwrap();
    }

    #[test]
    fn effective_uid_is_the_owner_of_new_files() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe");
        std::fs::write(&path, b"").unwrap();
        let owner = std::fs::metadata(&path).unwrap().uid();
        assert_eq!(effective_uid().unwrap(), owner);
        assert_eq!(uid_from_proc().unwrap(), owner);
        assert_eq!(uid_from_new_file().unwrap(), owner);
    }

    /// The owner check. The positive case runs for everyone; a file owned by
    /// another user can be made only as root (chown), so a non-root run
    /// uses `/etc/passwd`, which root owns.
    #[test]
    fn key_file_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        SoftwareProtector::generate_key_file(&path).unwrap();
        SoftwareProtector::from_key_file(&path).unwrap();
        let euid = effective_uid().unwrap();
        if euid == 0 {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let e = SoftwareProtector::from_key_file(&path).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::KeyFile {
                        reason: KeyFileError::WrongOwner {
                            uid: 65534,
                            expected: 0
                        },
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        } else {
            assert_eq!(
                reason(SoftwareProtector::from_key_file("/etc/passwd")),
                KeyFileError::WrongOwner {
                    uid: 0,
                    expected: euid
                }
            );
        }
    }

    #[test]
    fn relative_key_file_path_checks_the_current_directory() {
        assert_eq!(parent_dir(Path::new("root.key")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/root.key")), PathBuf::from("a"));
        assert_eq!(parent_dir(Path::new("/root.key")), PathBuf::from("/"));
    }

    #[test]
    fn debug_has_no_key() {
        let p = sw();
        let d = format!("{p:?}");
        assert!(d.starts_with("SoftwareProtector"), "{d}");
        assert!(!d.contains("kek"));
    }
}

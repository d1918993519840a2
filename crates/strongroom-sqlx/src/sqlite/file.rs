//! The store file itself: the header check made before SQLite opens an
//! existing file, and the owner-only creation of a new one.

use std::io::Read;
use std::path::{Path, PathBuf};

use strongroom::{Error, Result, StorageErrorKind};

/// An error for a file that is damaged or not a Strongroom store.
pub(super) fn corrupt(path: &Path, reason: &str) -> Error {
    Error::storage(
        "sqlite",
        StorageErrorKind::Corrupt,
        format!(
            "{}: {reason}; the file was left untouched: restore it from a backup or point Strongroom at another file",
            path.display()
        ),
    )
}

fn be32(header: &[u8], at: usize) -> u32 {
    header
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Checks an existing file's header before SQLite touches it, so a file that
/// is not a database, or a truncated one, is refused without being modified.
/// A missing file is created (empty, mode 0600).
pub(crate) fn check_file(path: &Path) -> Result<()> {
    check(path, true)
}

/// [`check_file`] for a read-only open: a missing file is an error.
pub(super) fn check_file_read_only(path: &Path) -> Result<()> {
    check(path, false)
}

fn check(path: &Path, create: bool) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => return create_file(path),
        Err(e) => {
            return Err(Error::storage(
                "sqlite",
                StorageErrorKind::Unavailable,
                format!("{}: cannot read: {e}", path.display()),
            ));
        }
    };
    if !meta.is_file() {
        return Err(Error::storage(
            "sqlite",
            StorageErrorKind::Rejected,
            format!("{}: is not a regular file", path.display()),
        ));
    }
    warn_if_loose(path, &meta);
    for suffix in ["-wal", "-shm"] {
        if let Ok(m) = std::fs::metadata(sibling(path, suffix)) {
            warn_if_loose(&sibling(path, suffix), &m);
        }
    }
    let len = meta.len();
    if len == 0 {
        // SQLite treats an empty file as a new database.
        return Ok(());
    }
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| {
            Error::storage(
                "sqlite",
                StorageErrorKind::Unavailable,
                format!("{}: cannot read: {e}", path.display()),
            )
        })?;
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(corrupt(path, "is not an SQLite database"));
    }
    let raw_page = u32::from(u16::from_be_bytes([header[16], header[17]]));
    let page_size = if raw_page == 1 { 65_536 } else { raw_page };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(corrupt(path, "has an invalid SQLite header (page size)"));
    }
    let wal = sibling(path, "-wal");
    let wal_has_frames = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if wal_has_frames {
        // Pages may still live in the write-ahead log; SQLite checks the rest.
        return Ok(());
    }
    if len % u64::from(page_size) != 0 {
        return Err(corrupt(
            path,
            &format!("is truncated ({len} bytes is not a whole number of {page_size}-byte pages)"),
        ));
    }
    let pages = be32(&header, 28);
    let header_valid = pages > 0 && be32(&header, 24) == be32(&header, 92);
    let expected = u64::from(pages) * u64::from(page_size);
    if header_valid && len < expected {
        return Err(corrupt(
            path,
            &format!("is truncated (the header says {expected} bytes, the file has {len})"),
        ));
    }
    Ok(())
}

/// The permission bits a store file may have: read and write for its owner.
const FILE_MODE: u32 = 0o600;

/// `path` with `suffix` appended (`-wal`, `-shm`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Creates a new, empty store file with mode 0600 whatever the umask, so
/// that SQLite (which gives its `-journal`, `-wal` and `-shm` files the
/// database file's mode) never creates a file another user can read. An
/// empty file is a new database to SQLite. If another process created the
/// file meanwhile, its file is used as it is.
fn create_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path);
    match created {
        // The mode given to open(2) is filtered through the umask, which can
        // only take bits away; set it exactly anyway, in case a default ACL
        // on the directory granted more.
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| {
                Error::storage(
                    "sqlite",
                    StorageErrorKind::Rejected,
                    format!(
                        "{}: cannot set the file's mode to 0600: {e}",
                        path.display()
                    ),
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
                StorageErrorKind::Rejected
            } else {
                StorageErrorKind::Unavailable
            };
            Err(Error::storage(
                "sqlite",
                kind,
                format!("{}: cannot create: {e}", path.display()),
            ))
        }
    }
}

/// Warns (without changing anything) when a store file existed before with
/// permissions for its group or other users.
fn warn_if_loose(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & !FILE_MODE != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:04o}"),
            "the store file can be accessed by users other than its owner; Strongroom leaves an existing file's mode as it is: run `chmod 600` on it (and its -wal and -shm files) unless the group access is intended"
        );
    }
}

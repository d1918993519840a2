//! The private directory `--file` secrets are written to: created mode
//! 0700 on a tmpfs where there is one, each file mode 0600 and replaced
//! atomically, the whole directory removed when it is dropped.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::exit::{CliResult, Failure};

/// The variable that tells the command where its files are.
pub(crate) const DIR_VAR: &str = "STRONGROOM_SECRETS_DIR";

/// What temporary files (written, then renamed into place) start with;
/// no `--file` destination may.
pub(crate) const TEMP_PREFIX: &str = ".strongroom-tmp";

/// `statfs` `f_type` of a tmpfs.
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The private directory; removed (with everything in it) on drop.
pub(crate) struct SecretsDir {
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for SecretsDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsDir")
            .field("path", &self.dir.path())
            .finish()
    }
}

/// Whether `dir` is a directory on a tmpfs.
fn is_tmpfs(dir: &Path) -> bool {
    dir.is_dir()
        && rustix::fs::statfs(dir).is_ok_and(|s| {
            // f_type is signed on some targets; the magic fits either way
            #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
            let kind = s.f_type as u64;
            kind == TMPFS_MAGIC
        })
}

/// Where the directory goes: `$XDG_RUNTIME_DIR` if it is a tmpfs, else
/// `/dev/shm` if it is one, else the temporary directory.
fn base_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && xdg.is_absolute()
        && is_tmpfs(&xdg)
    {
        return xdg;
    }
    let shm = Path::new("/dev/shm");
    if is_tmpfs(shm) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

impl SecretsDir {
    /// A new private directory (mode 0700) under [`base_dir`].
    pub(crate) fn create() -> CliResult<Self> {
        let base = base_dir();
        let fail = |e: std::io::Error| {
            Failure::Io(format!(
                "cannot create the private directory for --file secrets in {}: {e}",
                base.display()
            ))
        };
        let dir = tempfile::Builder::new()
            .prefix("strongroom-run-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(fail)?;
        // Whatever the umask did: only the owner may enter.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(fail)?;
        Ok(Self { dir })
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `value` to the file `dest` (a name checked by the spec parser)
    /// atomically: a new file mode 0600 is written and synced under a
    /// temporary name, then renamed over `dest`, so a reader sees the old
    /// value or the new one, never a part.
    pub(crate) fn write(&self, dest: &str, value: &[u8]) -> CliResult {
        let target = self.dir.path().join(dest);
        let temp = self.dir.path().join(format!("{TEMP_PREFIX}-{dest}"));
        let fail = |e: std::io::Error| {
            let _ = std::fs::remove_file(&temp);
            Failure::Io(format!(
                "cannot write the secret file {}: {e}",
                target.display()
            ))
        };
        // A temporary file left by a failed write before is replaced.
        match std::fs::remove_file(&temp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(fail)?;
        file.write_all(value)
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        drop(file);
        std::fs::rename(&temp, &target).map_err(fail)
    }

    /// Removes the directory now, reporting a failure (dropping it removes
    /// it too, silently).
    pub(crate) fn remove(self) -> CliResult {
        let path = self.dir.path().to_path_buf();
        self.dir.close().map_err(|e| {
            Failure::Io(format!(
                "cannot remove the secrets directory {}: {e}",
                path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = SecretsDir::create().unwrap();
        let path = dir.path().to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
        dir.write("token", b"one").unwrap();
        dir.write("token", b"two").unwrap();
        let file = path.join("token");
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        // only the file itself: no temporary left behind
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 1);
        dir.remove().unwrap();
        assert!(!path.exists());
    }
}

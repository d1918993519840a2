//! Checks arbitrary bytes, written to a file, as `SqliteStore::open` checks
//! an existing store file before SQLite touches it. Must never panic; an
//! empty file passes (SQLite's new database), and a non-empty file without
//! a whole 100-byte SQLite header fails.
//!
//! The first input byte says whether a `-wal` file with frames sits beside
//! it (bit 0); the rest is the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_sqlx::fuzzing::check_sqlite_file;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("strongroom-fuzz-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let path = dir().join("store.db");
    let wal = dir().join("store.db-wal");
    std::fs::write(&path, file).unwrap();
    if flags & 1 == 1 {
        std::fs::write(&wal, b"frames").unwrap();
    } else {
        let _ = std::fs::remove_file(&wal);
    }
    let result = check_sqlite_file(&path);
    if file.is_empty() {
        assert!(result.is_ok());
    } else if file.len() < 100 || !file.starts_with(b"SQLite format 3\0") {
        assert!(result.is_err());
    }
});

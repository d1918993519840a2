//! Watching secrets for changes made by any process sharing the store.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::Result;
use crate::changes::{ChangeWatcher, DEFAULT_FALLBACK, StorageEvent};
use crate::path::SecretPath;

use super::{METADATA_PREFIX, SecretsStore};

/// What [`SecretWatch::next`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// These secrets (paths under the watched prefix) were written, deleted,
    /// undeleted, destroyed or had their metadata changed.
    Changed(Vec<String>),
    /// Changes may have happened that could not be named (a backend that
    /// only says "something changed", lost notices, or the polling
    /// fallback): re-read what you hold.
    Resync,
}

/// A subscription to changes of the secrets under a prefix, made by this
/// process or any other sharing the store. Notices come from the storage
/// backend ([`crate::storage::Storage::watch`]: PostgreSQL `LISTEN/NOTIFY`,
/// SQLite `PRAGMA data_version`); when the backend cannot name the change or
/// a notice is lost, [`SecretChange::Resync`] is reported, and at the latest
/// every fallback interval (default 5 s). Reports carry paths, never values.
pub struct SecretWatch {
    watcher: ChangeWatcher,
    key_prefix: String,
    /// Which changed paths may be reported (all when `None`).
    visible: Option<Visible>,
}

/// Decides whether a changed path may be reported.
type Visible = Box<dyn Fn(&SecretPath) -> bool + Send + Sync>;

impl std::fmt::Debug for SecretWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWatch")
            .field("watcher", &self.watcher)
            .field("key_prefix", &self.key_prefix)
            .field("filtered", &self.visible.is_some())
            .finish()
    }
}

impl SecretWatch {
    /// The next change under the watched prefix (waits for one).
    pub async fn next(&mut self) -> SecretChange {
        loop {
            match self.watcher.next().await {
                StorageEvent::Unknown => return SecretChange::Resync,
                StorageEvent::Changed(keys) => {
                    let paths: BTreeSet<String> = keys
                        .iter()
                        .filter(|k| k.starts_with(&self.key_prefix))
                        .filter_map(|k| k.strip_prefix(METADATA_PREFIX))
                        .filter(|p| {
                            self.visible.as_ref().is_none_or(|visible| {
                                SecretPath::parse(p).is_ok_and(|p| visible(&p))
                            })
                        })
                        .map(str::to_owned)
                        .collect();
                    if !paths.is_empty() {
                        return SecretChange::Changed(paths.into_iter().collect());
                    }
                }
            }
        }
    }

    /// Reports only the changed paths `visible` admits (a principal's
    /// watch hides paths it has no capability on).
    pub(crate) fn filtered(mut self, visible: Visible) -> Self {
        self.visible = Some(visible);
        self
    }

    /// Whether the backend announces changes (otherwise only the polling
    /// fallback reports [`SecretChange::Resync`]).
    pub fn is_notified(&self) -> bool {
        self.watcher.is_notified()
    }
}

impl SecretsStore {
    /// Watches the secrets whose path starts with `prefix` (`""` for all;
    /// otherwise a valid path or path prefix such as `prod/` is checked like
    /// a path), with the default polling fallback.
    pub fn watch(&self, prefix: &str) -> Result<SecretWatch> {
        self.watch_with_fallback(prefix, DEFAULT_FALLBACK)
    }

    /// [`SecretsStore::watch`] with another polling fallback.
    pub fn watch_with_fallback(&self, prefix: &str, fallback: Duration) -> Result<SecretWatch> {
        let trimmed = prefix.trim_end_matches('/');
        if !trimmed.is_empty() {
            SecretPath::parse(trimmed)?;
        }
        Ok(SecretWatch {
            watcher: ChangeWatcher::new(self.sr.storage().watch(), fallback),
            key_prefix: format!("{METADATA_PREFIX}{prefix}"),
            visible: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protector::SoftwareProtector;
    use crate::storage::MemoryStorage;
    use crate::{Options, SecretBytes, Strongroom};

    #[tokio::test]
    async fn a_write_through_another_store_instance_is_reported_by_path() {
        let mem = MemoryStorage::new();
        let p = SoftwareProtector::from_key(SecretBytes::new(vec![9; 32])).unwrap();
        let a = Strongroom::init(Arc::new(mem.clone()), &p, Options::default())
            .await
            .unwrap();
        let b = Strongroom::unseal(Arc::new(mem.clone()), &p, Options::default())
            .await
            .unwrap();
        let mut w = b.secrets().watch("prod/").unwrap();
        assert!(w.is_notified());
        a.secrets().put("dev/x", b"1", None).await.unwrap();
        a.secrets().put("prod/db", b"2", None).await.unwrap();
        assert_eq!(
            w.next().await,
            SecretChange::Changed(vec!["prod/db".into()])
        );
        a.secrets().delete("prod/db", &[1]).await.unwrap();
        assert_eq!(
            w.next().await,
            SecretChange::Changed(vec!["prod/db".into()])
        );
        assert!(b.secrets().watch("../etc").is_err());
    }
}

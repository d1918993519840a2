//! Change notification: how one process learns what another wrote.
//!
//! A [`Storage`](crate::storage::Storage) backend that can announce commits
//! returns a [`ChangeFeed`] from [`Storage::watch`](crate::storage::Storage::watch):
//! PostgreSQL through `LISTEN/NOTIFY` (the keys a batch wrote, sent in the
//! same transaction, so a notice arrives only after its commit), SQLite
//! through `PRAGMA data_version` (a cheap check that says only that another
//! connection committed), the memory store directly. [`ChangeWatcher`]
//! wraps a feed with the polling fallback every consumer needs: a notice can
//! be lost (a dropped connection, a lagging receiver), so a watcher also wakes
//! on a timer and reports [`StorageEvent::Unknown`], which means "reread what
//! you cache".

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};

/// What a store announces after a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageEvent {
    /// A committed batch wrote or deleted these keys.
    Changed(Vec<String>),
    /// Something may have changed, and the backend cannot say what (or
    /// notices were lost): reread whatever you cache.
    Unknown,
}

impl StorageEvent {
    /// Whether this event may concern a key starting with `prefix`.
    pub fn touches(&self, prefix: &str) -> bool {
        match self {
            Self::Changed(keys) => keys.iter().any(|k| k.starts_with(prefix)),
            Self::Unknown => true,
        }
    }
}

/// A subscription to a store's change notices.
pub type ChangeFeed = broadcast::Receiver<StorageEvent>;

/// The capacity backends give their notice channels. A receiver that falls
/// further behind than this gets [`StorageEvent::Unknown`] from a
/// [`ChangeWatcher`].
pub const FEED_CAPACITY: usize = 1024;

/// The default polling fallback of a [`ChangeWatcher`].
pub const DEFAULT_FALLBACK: Duration = Duration::from_secs(5);

/// A change feed with a polling fallback.
///
/// [`ChangeWatcher::next`] returns the next notice, or
/// [`StorageEvent::Unknown`] when `fallback` passes without one (and at once
/// after notices were lost). Without a feed (a backend that cannot
/// announce), it simply wakes every `fallback`.
#[derive(Debug)]
pub struct ChangeWatcher {
    feed: Option<ChangeFeed>,
    fallback: Duration,
}

impl ChangeWatcher {
    /// A watcher over `feed` (if any) that polls every `fallback`.
    pub fn new(feed: Option<ChangeFeed>, fallback: Duration) -> Self {
        Self {
            feed,
            fallback: fallback.max(Duration::from_millis(1)),
        }
    }

    /// Whether notices come from the backend (otherwise only the fallback
    /// timer wakes this watcher).
    pub fn is_notified(&self) -> bool {
        self.feed.is_some()
    }

    /// The next change: a notice, or [`StorageEvent::Unknown`] after lost
    /// notices or when the fallback interval passes without one.
    pub async fn next(&mut self) -> StorageEvent {
        let Some(feed) = self.feed.as_mut() else {
            tokio::time::sleep(self.fallback).await;
            return StorageEvent::Unknown;
        };
        match tokio::time::timeout(self.fallback, feed.recv()).await {
            Ok(Ok(event)) => event,
            Ok(Err(RecvError::Lagged(_))) | Err(_) => StorageEvent::Unknown,
            Ok(Err(RecvError::Closed)) => {
                // The backend stopped announcing: polling only from now on.
                self.feed = None;
                StorageEvent::Unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn notices_then_fallback_then_lag() {
        let (tx, rx) = broadcast::channel(2);
        let mut w = ChangeWatcher::new(Some(rx), Duration::from_secs(5));
        tx.send(StorageEvent::Changed(vec!["a".into()])).unwrap();
        assert_eq!(w.next().await, StorageEvent::Changed(vec!["a".into()]));
        // nothing sent: the fallback fires
        assert_eq!(w.next().await, StorageEvent::Unknown);
        // overflow: lost notices are reported as Unknown
        for i in 0..4 {
            tx.send(StorageEvent::Changed(vec![format!("k{i}")]))
                .unwrap();
        }
        assert_eq!(w.next().await, StorageEvent::Unknown);
        drop(tx);
        w.next().await;
        w.next().await;
        assert_eq!(w.next().await, StorageEvent::Unknown);
        assert!(!w.is_notified());
    }

    #[test]
    fn touches_prefixes() {
        let e = StorageEvent::Changed(vec!["sys/keyring-generation".into()]);
        assert!(e.touches("sys/keyring"));
        assert!(!e.touches("s/"));
        assert!(StorageEvent::Unknown.touches("anything"));
    }
}

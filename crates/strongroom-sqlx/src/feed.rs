//! The change feed one store instance (and its clones) hands out: commits
//! made through the instance are announced directly; a background task
//! (the PostgreSQL listener, the SQLite `data_version` watcher) announces
//! what other processes commit.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use strongroom::changes::{ChangeFeed, FEED_CAPACITY, StorageEvent};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The sender every feed of one store instance subscribes to, and the task
/// that fills it from other processes' commits.
pub(crate) struct ChangeHub {
    /// `None` once the store is closed.
    sender: Mutex<Option<broadcast::Sender<StorageEvent>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here can be left half-updated by a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ChangeHub {
    pub(crate) fn new() -> Self {
        Self {
            sender: Mutex::new(Some(broadcast::channel(FEED_CAPACITY).0)),
            task: Mutex::new(None),
        }
    }

    /// Sends `event` to every feed (having none is fine).
    pub(crate) fn announce(&self, event: StorageEvent) {
        if let Some(tx) = lock(&self.sender).as_ref() {
            let _ = tx.send(event);
        }
    }

    /// A new feed; starts the background task `start` builds (given the
    /// sender to announce through) if none is running. `None` when the store
    /// is closed or no tokio runtime is there to run the task.
    pub(crate) fn subscribe<F, Fut>(&self, start: F) -> Option<ChangeFeed>
    where
        F: FnOnce(broadcast::Sender<StorageEvent>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let sender = lock(&self.sender).clone()?;
        // Subscribed before the task starts: its first event (`Unknown`,
        // "commits before now were not watched") must reach this feed even
        // if the task sends it before this thread runs again.
        let feed = sender.subscribe();
        let mut task = lock(&self.task);
        if task.as_ref().is_none_or(JoinHandle::is_finished) {
            // A finished task ran on a runtime that has shut down.
            let runtime = tokio::runtime::Handle::try_current().ok()?;
            *task = Some(runtime.spawn(start(sender.clone())));
        }
        Some(feed)
    }

    /// The background task, taken out so the caller can stop it its own
    /// way and wait for it (then [`ChangeHub::close`]).
    pub(crate) fn take_task(&self) -> Option<JoinHandle<()>> {
        lock(&self.task).take()
    }

    /// Stops the task; the feeds then close.
    pub(crate) fn close(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        // With the task's copy gone too, subscribers see the feed close.
        lock(&self.sender).take();
    }
}

impl Drop for ChangeHub {
    fn drop(&mut self) {
        self.close();
    }
}

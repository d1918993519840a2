//! The change watcher: announces commits made by other connections to the
//! file, found through `PRAGMA data_version`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use strongroom::backoff::Backoff;
use strongroom::storage::StorageEvent;
use tokio::sync::{Notify, broadcast, oneshot};

use super::conn::{Access, data_version, open_connection};
use super::writer::Request;

/// How often the change watcher checks `PRAGMA data_version`.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// The longest wait before the change watcher reopens its connection.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The writer connection's `data_version`: it moves only when a connection
/// other than the writer commits. `None` if it cannot be read, or for a
/// read-only store (which has no writer: every commit is another's).
async fn writer_version(writer: Option<&mpsc::Sender<Request>>) -> Option<i64> {
    let (reply, answer) = oneshot::channel();
    writer?.send(Request::DataVersion { reply }).ok()?;
    answer.await.ok().flatten()
}

/// `PRAGMA data_version` on the watcher's connection, off the async threads;
/// the connection comes back with the answer (`None`: it failed).
async fn poll(conn: Connection) -> Option<(Connection, i64)> {
    tokio::task::spawn_blocking(move || {
        let v = data_version(&conn).ok()?;
        Some((conn, v))
    })
    .await
    .ok()
    .flatten()
}

/// The watcher task: watches through a read-only connection of its own
/// until that fails, then opens another, until aborted or the store closes.
pub(super) async fn watch_file(
    path: PathBuf,
    access: Access,
    writer: Option<mpsc::Sender<Request>>,
    closed: Arc<AtomicBool>,
    stop: Arc<Notify>,
    tx: broadcast::Sender<StorageEvent>,
) {
    let mut waits = Backoff::new(WATCH_INTERVAL, WATCH_BACKOFF_MAX).retries();
    loop {
        if let Some(conn) = open(&path, access).await
            && watch_with(conn, writer.as_ref(), &closed, &stop, &tx).await
        {
            waits.reset();
        }
        if closed.load(Ordering::Acquire) {
            return;
        }
        // The file may be unreadable for a moment; once the watcher is back
        // it says Unknown for whatever happened meanwhile.
        tokio::select! {
            () = tokio::time::sleep(waits.next_delay()) => {}
            () = stop.notified() => return,
        }
    }
}

async fn open(path: &Path, access: Access) -> Option<Connection> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || open_connection(&path, access).ok())
        .await
        .ok()
        .flatten()
}

/// Every [`WATCH_INTERVAL`] checks on `conn` whether any connection
/// committed, and if one other than the writer did sends
/// [`StorageEvent::Unknown`]; returns when `conn` fails (`true` if it had
/// worked) or the store closes (`conn` closed on the way out). A baseline is always read before the `Unknown` that covers what
/// it absorbed is sent, so no commit goes unannounced.
async fn watch_with(
    conn: Connection,
    writer: Option<&mpsc::Sender<Request>>,
    closed: &AtomicBool,
    stop: &Notify,
    tx: &broadcast::Sender<StorageEvent>,
) -> bool {
    let Some((mut conn, mut seen)) = poll(conn).await else {
        return false;
    };
    let mut writer_seen = writer_version(writer).await;
    // Commits before now were not watched.
    let _ = tx.send(StorageEvent::Unknown);
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.notified() => return true,
        }
        let Some((c, now)) = poll(conn).await else {
            return true;
        };
        conn = c;
        if closed.load(Ordering::Acquire) {
            return true;
        }
        if now == seen {
            continue;
        }
        seen = now;
        // Someone committed: this store's writer, or another connection,
        // which the writer's data_version tells.
        let writer_now = writer_version(writer).await;
        let foreign = writer_now.is_none() || writer_now != writer_seen;
        writer_seen = writer_now;
        if foreign {
            let _ = tx.send(StorageEvent::Unknown);
        }
    }
}

//! Change notices: the `pg_notify` payload a batch sends, and the listener
//! that turns other stores' notices into change events.

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use strongroom::storage::{ChangeFeed, StorageEvent};
use tokio::sync::broadcast;

use super::batch::sha256_prefix;
use super::{CHANNEL, CONNECT_TIMEOUT, LISTEN_BACKOFF, MAX_PAYLOAD, NOTICE_VERSION};
use crate::errors::describe;
use crate::feed::ChangeHub;

/// The change feeds of one store and its clones, and the listener task
/// filling them from other stores' notices.
pub(super) struct PgChanges {
    /// Names this store (and its clones) in its notices, so its listener
    /// skips the commits it already announced itself.
    pub(super) origin: String,
    hub: ChangeHub,
}

impl PgChanges {
    pub(super) fn new() -> Self {
        Self {
            origin: new_origin(),
            hub: ChangeHub::new(),
        }
    }

    pub(super) fn announce(&self, event: StorageEvent) {
        self.hub.announce(event);
    }

    /// A new feed; starts the listener if it is not running. `None` when the
    /// store is closed or no tokio runtime is there to run the listener.
    pub(super) fn subscribe(&self, pool: &PgPool) -> Option<ChangeFeed> {
        let (pool, origin) = (pool.clone(), self.origin.clone());
        self.hub.subscribe(|sender| listen(pool, origin, sender))
    }

    pub(super) fn close(&self) {
        self.hub.close();
    }
}

/// A value unique to one store instance (random; a fallback from the process
/// id and the clock if the system's random source fails).
pub(super) fn new_origin() -> String {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = (u128::from(std::process::id()) << 64) ^ nanos;
        b = sha256_prefix(&mixed.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `pg_notify` payload announcing `keys` (format `sr1`, see [`PgStore`]).
pub(super) fn notice_payload(origin: &str, keys: &[String]) -> String {
    let mut out = format!("{NOTICE_VERSION} {origin}");
    for key in keys {
        out.push('\n');
        for &b in key.as_bytes() {
            if (0x21..=0x7e).contains(&b) && b != b'%' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        if out.len() > MAX_PAYLOAD {
            return format!("{NOTICE_VERSION} {origin} unknown");
        }
    }
    out
}

/// The event a notice payload announces; `None` for this store's own
/// notices (`own_origin`), which it announced when it committed.
pub(super) fn parse_notice(payload: &str, own_origin: &str) -> Option<StorageEvent> {
    let mut lines = payload.split('\n');
    let header = lines.next().unwrap_or("");
    let mut words = header.split(' ');
    if words.next() != Some(NOTICE_VERSION) {
        // Another format (a newer Strongroom, or not ours at all).
        return Some(StorageEvent::Unknown);
    }
    let origin = words.next().unwrap_or("");
    if origin == own_origin {
        return None;
    }
    if words.next().is_some() {
        return Some(StorageEvent::Unknown);
    }
    let keys: Option<Vec<String>> = lines.map(decode_key).collect();
    match keys {
        Some(keys) if !keys.is_empty() => Some(StorageEvent::Changed(keys)),
        _ => Some(StorageEvent::Unknown),
    }
}

fn decode_key(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The listener task: relays other stores' notices to `tx` until aborted,
/// reconnecting (with the pool's current connect options) when the
/// connection is lost.
async fn listen(pool: PgPool, origin: String, tx: broadcast::Sender<StorageEvent>) {
    let mut waits = LISTEN_BACKOFF.retries();
    loop {
        match open_listener(&pool).await {
            Ok(mut listener) => {
                waits.reset();
                // Commits made before LISTEN took effect were not heard.
                let _ = tx.send(StorageEvent::Unknown);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notice)) => {
                            if let Some(event) = parse_notice(notice.payload(), &origin) {
                                let _ = tx.send(event);
                            }
                        }
                        // The connection was lost and made again: notices
                        // sent in between are gone.
                        Ok(None) => {
                            let _ = tx.send(StorageEvent::Unknown);
                        }
                        Err(e) => {
                            tracing::debug!(error = %describe(&e), "strongroom_kv listener lost its connection");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %describe(&e), "cannot listen on strongroom_kv; change notices from other processes are late until it can");
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(waits.next_delay()).await;
    }
}

async fn open_listener(pool: &PgPool) -> std::result::Result<PgListener, sqlx::Error> {
    // A pool of its own (one connection, never recycled) made from the
    // store pool's current options.
    let options = (*pool.connect_options()).clone();
    let own = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

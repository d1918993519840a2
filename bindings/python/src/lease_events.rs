//! Lease events: a subscription read with `async for`, `for`, `wait` or
//! `drain`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use strongroom::lease::{LeaseEvent as CoreEvent, LeaseManager as CoreManager};
use tokio::sync::broadcast;

use crate::lease::{invalid, seconds};
use crate::{Life, runtime};

/// What happened to a lease. Never carries revocation data.
#[pyclass(module = "strongroom", frozen, get_all)]
pub struct LeaseEvent {
    /// "issued", "renewed", "expiring_soon", "revoked", "irrevocable" (or
    /// "other" for kinds this binding does not know yet).
    kind: &'static str,
    /// The lease id.
    id: Option<String>,
    /// The lease's path.
    path: Option<String>,
    /// The (new) expiry for issued / renewed / expiring_soon (ms).
    expires_at: Option<u64>,
    /// Renewed: whether the max TTL cut the renewal short.
    capped: bool,
    /// Revoked: whether it was forced.
    forced: bool,
    /// Irrevocable: failed attempts.
    attempts: Option<u32>,
    /// Irrevocable: the engine's last error message.
    reason: Option<String>,
}

impl From<CoreEvent> for LeaseEvent {
    fn from(e: CoreEvent) -> Self {
        let mut out = Self {
            kind: "other",
            id: None,
            path: None,
            expires_at: None,
            capped: false,
            forced: false,
            attempts: None,
            reason: None,
        };
        let (id, path) = match e {
            CoreEvent::Issued {
                id,
                path,
                expires_at,
            } => {
                out.kind = "issued";
                out.expires_at = Some(expires_at.as_millis());
                (id, path)
            }
            CoreEvent::Renewed {
                id,
                path,
                expires_at,
                capped,
            } => {
                out.kind = "renewed";
                out.expires_at = Some(expires_at.as_millis());
                out.capped = capped;
                (id, path)
            }
            CoreEvent::ExpiringSoon {
                id,
                path,
                expires_at,
            } => {
                out.kind = "expiring_soon";
                out.expires_at = Some(expires_at.as_millis());
                (id, path)
            }
            CoreEvent::Revoked { id, path, forced } => {
                out.kind = "revoked";
                out.forced = forced;
                (id, path)
            }
            CoreEvent::Irrevocable {
                id,
                path,
                attempts,
                reason,
            } => {
                out.kind = "irrevocable";
                out.attempts = Some(attempts);
                out.reason = Some(reason);
                (id, path)
            }
            _ => return out,
        };
        out.id = Some(id.to_string());
        out.path = Some(path);
        out
    }
}

#[pymethods]
impl LeaseEvent {
    fn __repr__(&self) -> String {
        format!(
            "LeaseEvent(kind={:?}, id={:?}, path={:?})",
            self.kind, self.id, self.path
        )
    }
}

/// A subscription to lease events, from `manager.subscribe()`: events from
/// then on, oldest first. `async for ev in events` (asyncio), `for ev in
/// events` (blocks, GIL released), `events.wait(timeout)` or
/// `events.drain()` (what has arrived, without waiting). A subscriber that
/// falls more than the manager's `event_capacity` behind misses the oldest.
#[pyclass(module = "strongroom", frozen)]
pub struct LeaseEvents {
    rx: Arc<tokio::sync::Mutex<broadcast::Receiver<CoreEvent>>>,
    /// The store's open/closed state: the subscription ends when it closes.
    life: Life,
}

/// The next event; `None` once the manager is gone or the store closed.
async fn next_event(
    rx: Arc<tokio::sync::Mutex<broadcast::Receiver<CoreEvent>>>,
    life: Life,
) -> Option<LeaseEvent> {
    if life.is_closed() {
        return None;
    }
    let closed = life.closed();
    let next = async move {
        let mut rx = rx.lock().await;
        loop {
            match rx.recv().await {
                Ok(e) => return Some(e.into()),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    };
    tokio::select! {
        e = next => e,
        () = closed => None,
    }
}

/// How often a blocking wait for events checks for signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

impl LeaseEvents {
    /// Waits up to `limit` (forever if `None`) in slices, checking for
    /// signals between them: `None` on timeout, `Some(None)` once the
    /// manager is gone. Receiving is cancel-safe, so no event is lost
    /// between slices.
    fn wait_for(
        &self,
        py: Python<'_>,
        limit: Option<Duration>,
    ) -> PyResult<Option<Option<LeaseEvent>>> {
        let deadline = limit.map(|d| std::time::Instant::now() + d);
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(SIGNAL_CHECK),
                None => SIGNAL_CHECK,
            };
            let (rx, life) = (self.rx.clone(), self.life.clone());
            let got = py.detach(|| {
                runtime().block_on(async move {
                    tokio::time::timeout(slice, next_event(rx, life)).await
                })
            });
            if let Ok(ev) = got {
                return Ok(Some(ev));
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl LeaseEvents {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (rx, life) = (self.rx.clone(), self.life.clone());
        crate::lifetime::awaitable(py, None, async move {
            next_event(rx, life)
                .await
                .ok_or_else(|| PyStopAsyncIteration::new_err(()))
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Blocks (GIL released) until the next event; stops once the manager
    /// is gone. Ctrl-C (any pending signal handler) interrupts it.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<LeaseEvent>> {
        Ok(self.wait_for(py, None)?.flatten())
    }

    /// Waits up to `timeout` seconds (forever if `None`) for the next
    /// event; `None` if none came or the manager is gone. Blocks with the
    /// GIL released; signals (Ctrl-C) interrupt it.
    #[pyo3(signature = (timeout = None))]
    fn wait(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<LeaseEvent>> {
        let limit = timeout.map(|t| seconds("timeout", t)).transpose()?;
        Ok(self.wait_for(py, limit)?.flatten())
    }

    /// The events that have arrived, without waiting.
    fn drain(&self) -> PyResult<Vec<LeaseEvent>> {
        if self.life.is_closed() {
            return Ok(Vec::new());
        }
        let mut rx = self
            .rx
            .try_lock()
            .map_err(|_| invalid("another call is waiting on these lease events"))?;
        let mut out = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(e) => out.push(e.into()),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return Ok(out),
            }
        }
    }

    fn __repr__(&self) -> String {
        "LeaseEvents()".into()
    }
}

/// A subscription to `m`'s events from now on, ending when `life` closes.
pub(crate) fn subscribe(m: &CoreManager, life: &Life) -> LeaseEvents {
    LeaseEvents {
        rx: Arc::new(tokio::sync::Mutex::new(m.subscribe())),
        life: life.clone(),
    }
}

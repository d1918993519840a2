//! Lifetimes: when the runtime's threads may enter Python, how awaitables
//! hand their results back, how a store is closed, and what happens when
//! the interpreter exits.
//!
//! The runtime's threads are not Python threads. CPython 3.11 (and pyo3 on
//! it) gives no safe way for such a thread to take the GIL once
//! finalization has begun: `PyGILState_Ensure` then kills or hangs the
//! thread, and a thread that releases the GIL inside Python code (a socket
//! write in `call_soon_threadsafe`) dies when it takes it back
//! (`PyGILState_Release ... must be current`, or a segfault in a
//! deallocator). So every entry into Python from a runtime thread goes
//! through [`attach`], a gate that an `atexit` hook ([`_shutdown`]) closes
//! while the interpreter is still whole: it refuses new entries, cancels
//! every pending awaitable, and waits (GIL released) until the threads
//! already inside have left. Python objects a runtime thread drops later
//! are only queued by pyo3 (never touched) and stay alive until the
//! process ends.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;
use tokio::sync::{oneshot, watch};

use crate::errors::Closed;
use crate::runtime;

// ---------------------------------------------------------------------------
// The gate

struct Gate {
    /// Closed by the exit hook: no runtime thread enters Python again.
    closed: bool,
    /// Runtime threads inside Python now.
    inside: usize,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    closed: false,
    inside: 0,
});
static LEFT: Condvar = Condvar::new();

/// How long the exit hook waits for runtime threads still inside Python
/// (a revoker's Python code, a result being handed over).
const EXIT_WAIT: Duration = Duration::from_secs(10);

fn gate() -> std::sync::MutexGuard<'static, Gate> {
    GATE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` with the GIL from a thread that is not Python's (a runtime
/// worker or blocking thread); `None`, without touching Python, once the
/// interpreter is exiting.
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    {
        let mut g = gate();
        if g.closed {
            return None;
        }
        g.inside += 1;
    }
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let mut g = gate();
            g.inside -= 1;
            if g.inside == 0 {
                LEFT.notify_all();
            }
        }
    }
    let _leave = Leave;
    Some(Python::attach(f))
}

/// Whether the interpreter is exiting (the exit hook has run).
pub(crate) fn exiting() -> bool {
    gate().closed
}

/// The process-wide stop signal, sent by the exit hook.
fn exit_signal() -> &'static watch::Sender<bool> {
    static EXIT: OnceLock<watch::Sender<bool>> = OnceLock::new();
    EXIT.get_or_init(|| watch::channel(false).0)
}

/// Registered with `atexit` when the module is imported; atexit hooks run
/// before CPython starts finalizing, while other threads may still take the
/// GIL. Also callable by hand (idempotent).
#[pyfunction]
pub(crate) fn _shutdown(py: Python<'_>) {
    gate().closed = true;
    exit_signal().send_replace(true);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        let mut g = gate();
        while g.inside > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            g = LEFT
                .wait_timeout(g, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    });
}

/// Registers [`_shutdown`] with `atexit`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_shutdown, m)?;
    m.add_function(hook.clone())?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Closing one store

/// The open/closed state shared by a store and everything made from it
/// (lease managers, rotations, handles, event subscriptions).
#[derive(Clone)]
pub(crate) struct Life(Arc<watch::Sender<bool>>);

impl Default for Life {
    fn default() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }
}

impl std::fmt::Debug for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Life").field(&self.is_closed()).finish()
    }
}

impl Life {
    /// Marks it closed and wakes everything waiting on it. Returns whether
    /// this call closed it.
    pub(crate) fn close(&self) -> bool {
        !self.0.send_replace(true)
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.0.borrow()
    }

    /// `Closed` if closed (or the interpreter is exiting).
    pub(crate) fn check(&self) -> PyResult<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        if exiting() {
            return Err(exiting_error());
        }
        Ok(())
    }

    /// Resolves once closed.
    pub(crate) fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}

pub(crate) fn closed_error() -> PyErr {
    Closed::new_err("the store is closed")
}

fn exiting_error() -> PyErr {
    Closed::new_err("the Python interpreter is exiting")
}

/// Resolves once the interpreter is exiting.
fn exit_signalled() -> impl Future<Output = ()> + Send + 'static {
    let mut rx = exit_signal().subscribe();
    async move {
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// Runs `fut` on the runtime unless `life` is closed first or the
/// interpreter starts exiting (then `Closed`); for blocking calls.
pub(crate) async fn guarded<T>(
    life: Option<Life>,
    fut: impl Future<Output = PyResult<T>>,
) -> PyResult<T> {
    let closed = async move {
        match life {
            Some(l) => l.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = fut => r,
        () = closed => Err(closed_error()),
        () = exit_signalled() => Err(exiting_error()),
    }
}

// ---------------------------------------------------------------------------
// Awaitables

/// An error that becomes a Python exception (with the GIL, when handed over).
pub(crate) trait IntoPyErr: Send + 'static {
    fn into_py_err(self) -> PyErr;
}

impl IntoPyErr for PyErr {
    fn into_py_err(self) -> PyErr {
        self
    }
}

impl IntoPyErr for strongroom::Error {
    fn into_py_err(self) -> PyErr {
        crate::to_py(self)
    }
}

/// Cancels the Rust side when the asyncio future is done first (cancelled).
#[pyclass(module = "strongroom")]
struct Done {
    tx: Option<oneshot::Sender<()>>,
}

#[pymethods]
impl Done {
    fn __call__(&mut self, _fut: &Bound<'_, PyAny>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(());
        }
    }
}

/// Sets an asyncio future's result on its loop (unless it is done already).
#[pyfunction]
fn _deliver(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("done")?.extract::<bool>()? {
        return Ok(());
    }
    if ok {
        fut.call_method1("set_result", (value,))?;
    } else {
        fut.call_method1("set_exception", (value,))?;
    }
    Ok(())
}

fn deliver_fn(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static DELIVER: OnceLock<Py<PyAny>> = OnceLock::new();
    if let Some(f) = DELIVER.get() {
        return Ok(f.bind(py).clone());
    }
    let f = wrap_pyfunction!(_deliver, py)?.into_any().unbind();
    Ok(DELIVER.get_or_init(|| f).bind(py).clone())
}

/// Wraps `fut` as an asyncio awaitable on the running loop (the binding's
/// own `future_into_py`). The future runs on the runtime; it ends early
/// with `Closed` when `life` closes or the interpreter starts exiting, and
/// is dropped when the awaitable is cancelled. Its result is handed back
/// through [`attach`], so never once the interpreter is exiting.
pub(crate) fn awaitable<'py, T, E>(
    py: Python<'py>,
    life: Option<&Life>,
    fut: impl Future<Output = Result<T, E>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    E: IntoPyErr,
{
    if let Some(l) = life {
        l.check()?;
    } else if exiting() {
        return Err(exiting_error());
    }
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let event_loop = locals.event_loop(py);
    let py_fut = event_loop.call_method0("create_future")?;
    let (cancel_tx, cancel_rx) = oneshot::channel();
    py_fut.call_method1(
        "add_done_callback",
        (Done {
            tx: Some(cancel_tx),
        },),
    )?;
    let target = py_fut.clone().unbind();
    let event_loop = event_loop.unbind();
    let life = life.cloned();
    runtime().spawn(async move {
        // Errors stay Rust values until handed over: making the Python
        // exception takes the GIL.
        let out = tokio::select! {
            r = guarded(life, async move { Ok(fut.await) }) => r,
            _ = cancel_rx => return,
        };
        // Handing over takes the GIL: on a blocking thread, not a worker.
        let _ = tokio::task::spawn_blocking(move || {
            attach(|py| {
                let result = match out {
                    Ok(Ok(v)) => v.into_bound_py_any(py),
                    Ok(Err(e)) => Err(e.into_py_err()),
                    Err(e) => Err(e),
                };
                let (ok, value) = match result {
                    Ok(v) => (true, v.into_any().unbind()),
                    Err(e) => (false, e.into_value(py).into_any()),
                };
                // A closed loop refuses (RuntimeError): nobody is waiting.
                let _ = deliver_fn(py).and_then(|d| {
                    event_loop
                        .bind(py)
                        .call_method1("call_soon_threadsafe", (d, target.bind(py), ok, value))
                });
            });
        })
        .await;
    });
    Ok(py_fut)
}

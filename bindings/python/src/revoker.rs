//! Python revokers: a Python callable called when a lease is revoked. An
//! async revoker's coroutine runs on the event loop of the async call that
//! revokes (or with `asyncio.run` on a blocking-pool thread for the
//! blocking API).
//!
//! Nothing here takes the GIL on a runtime thread except through
//! [`attach`], the gate the exit hook closes: a coroutine's outcome is read
//! on the loop's own thread and sent back as plain Rust values, and a loop
//! that closes before running it only drops the sender. (pyo3-async-runtimes'
//! `into_future_with_locals` takes the GIL on the awaiting thread when its
//! sender is dropped; with the interpreter exiting that killed the process.)

use std::future::Future;

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::TaskLocals;
use strongroom::Error;
use strongroom::lease::{Lease as CoreLease, LeaseError as CoreLeaseError, Revoker};
use tokio::sync::oneshot;

use crate::Life;
use crate::lease::Lease;
use crate::lifetime::attach;

tokio::task_local! {
    /// The asyncio loop of the async call a core future runs for, so that
    /// async Python revokers run on it.
    static PY_LOOP: TaskLocals;
}

/// Wraps a lease future as an awaitable whose Python revokers run their
/// coroutines on the caller's event loop.
pub(crate) fn awaitable_on_loop<'py, T>(
    py: Python<'py>,
    life: &Life,
    fut: impl Future<Output = strongroom::Result<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    crate::lifetime::awaitable(py, Some(life), PY_LOOP.scope(locals, fut))
}

/// Why a Python revoker failed, for `LeaseError::RevokerFailed`: the
/// exception's type and message, cut to 300 characters.
fn describe_exception(exc: &Bound<'_, PyAny>) -> String {
    let name = exc
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let message = exc.str().map(|s| s.to_string()).unwrap_or_default();
    let mut text = format!("the Python revoker raised {name}: {message}");
    if text.chars().count() > 300 {
        text = text.chars().take(300).collect::<String>() + "...";
    }
    text
}

/// [`describe_exception`] of a `PyErr`, from any thread (through the gate).
fn describe(e: &PyErr) -> String {
    attach(|py| describe_exception(e.value(py))).unwrap_or_else(|| {
        "the Python revoker raised an exception as the interpreter exited".into()
    })
}

/// What a revoker's coroutine came to, read on the loop's thread.
type Outcome = Result<(), String>;

/// Schedules `awaitable` on the loop of `locals` (in its context) and gives
/// the receiver of its outcome. The receiver fails (its sender dropped) if
/// the loop closes before the coroutine is done.
fn start_on_loop(
    locals: &TaskLocals,
    awaitable: Bound<'_, PyAny>,
) -> PyResult<oneshot::Receiver<Outcome>> {
    let py = awaitable.py();
    let (tx, rx) = oneshot::channel();
    let start = StartOnLoop {
        awaitable: Some(awaitable.unbind()),
        tx: Some(tx),
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("context", locals.context(py))?;
    locals
        .event_loop(py)
        .call_method("call_soon_threadsafe", (start,), Some(&kwargs))?;
    Ok(rx)
}

/// Called on the loop: wraps the awaitable in a task and has [`Finished`]
/// report its outcome.
#[pyclass(module = "strongroom")]
struct StartOnLoop {
    awaitable: Option<Py<PyAny>>,
    tx: Option<oneshot::Sender<Outcome>>,
}

#[pymethods]
impl StartOnLoop {
    fn __call__(&mut self, py: Python<'_>) {
        let (Some(awaitable), Some(tx)) = (self.awaitable.take(), self.tx.take()) else {
            return;
        };
        let task = match py
            .import("asyncio")
            .and_then(|a| a.call_method1("ensure_future", (awaitable,)))
        {
            Ok(task) => task,
            Err(e) => {
                let _ = tx.send(Err(describe_exception(e.value(py))));
                return;
            }
        };
        // If this fails, `Finished` (and its sender) is dropped, and the
        // revoke reports that the coroutine did not finish.
        let _ = task.call_method1("add_done_callback", (Finished { tx: Some(tx) },));
    }
}

/// The task's done callback, on the loop: sends its outcome.
#[pyclass(module = "strongroom")]
struct Finished {
    tx: Option<oneshot::Sender<Outcome>>,
}

#[pymethods]
impl Finished {
    fn __call__(&mut self, task: &Bound<'_, PyAny>) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        let cancelled = task
            .call_method0("cancelled")
            .and_then(|c| c.extract::<bool>())
            .unwrap_or(false);
        let outcome = if cancelled {
            Err("the Python revoker's coroutine was cancelled".into())
        } else {
            match task.call_method0("exception") {
                Ok(exc) if exc.is_none() => Ok(()),
                Ok(exc) => Err(describe_exception(&exc)),
                Err(e) => Err(describe_exception(e.value(task.py()))),
            }
        };
        let _ = tx.send(outcome);
    }
}

/// A revoker that calls a Python callable (sync or async) with the lease.
pub(crate) struct PyRevoker {
    pub(crate) engine: String,
    pub(crate) callable: Py<PyAny>,
}

impl std::fmt::Debug for PyRevoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRevoker")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// How a revoker's coroutine is run.
enum Pending {
    /// On the asyncio loop of the async call that revokes.
    OnLoop(oneshot::Receiver<Outcome>),
    /// With `asyncio.run` on a blocking-pool thread (the blocking API: the
    /// caller's thread is waiting, and may itself be inside a running loop).
    OnThread(Py<PyAny>),
}

#[async_trait]
impl Revoker for PyRevoker {
    async fn revoke(&self, lease: &CoreLease) -> strongroom::Result<()> {
        let failed = |reason: String| {
            Error::from(CoreLeaseError::RevokerFailed {
                engine: self.engine.clone(),
                reason,
            })
        };
        let exiting = || failed("the Python interpreter is exiting".into());
        let pending = attach(|py| {
            let r = self.callable.bind(py).call1((Lease::from(lease),))?;
            let inspect = py.import("inspect")?;
            if !inspect
                .call_method1("isawaitable", (&r,))?
                .extract::<bool>()?
            {
                return Ok(None);
            }
            Ok(Some(match PY_LOOP.try_with(Clone::clone) {
                Ok(locals) => Pending::OnLoop(start_on_loop(&locals, r)?),
                Err(_) => Pending::OnThread(r.unbind()),
            }))
        })
        .ok_or_else(exiting)?
        .map_err(|e| failed(describe(&e)))?;
        match pending {
            None => Ok(()),
            Some(Pending::OnLoop(outcome)) => match outcome.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(failed(reason)),
                Err(_) => Err(failed(
                    "the event loop closed before the Python revoker's coroutine finished".into(),
                )),
            },
            Some(Pending::OnThread(coro)) => tokio::task::spawn_blocking(move || {
                attach(|py| py.import("asyncio")?.call_method1("run", (coro,)).map(drop))
            })
            .await
            .map_err(|_| failed("the Python revoker's thread stopped unexpectedly".into()))?
            .ok_or_else(exiting)?
            .map_err(|e| failed(describe(&e))),
        }
    }
}

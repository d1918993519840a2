//! Metrics through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Strongroom records; the application chooses where the figures go by
//! installing a recorder (Prometheus with `metrics-exporter-prometheus`,
//! OpenTelemetry with `metrics-exporter-opentelemetry`, StatsD, ...). With
//! no recorder installed every call is a no-op costing an atomic load. The
//! facade was chosen over the OpenTelemetry SDK because an embedded library
//! should not pick the exporter, start threads or pull an HTTP stack into
//! every application that links it; OpenTelemetry is one recorder away.
//! `examples/metrics.rs` serves the Prometheus text format.
//!
//! Labels are operation names, outcomes, engine and pool names and key
//! versions: never a path, a principal, a secret or anything derived from
//! one (paths and principals are unbounded and would make every series a
//! fingerprint of the store's contents).
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | [`OPERATIONS`] | counter | `operation`, `outcome` | operations through a principal's [`Handle`](crate::Handle) (and every authorised handle), counted when their outcome is on record; `outcome` is `allowed`, `denied` or the error's kind |
//! | [`OPERATION_SECONDS`] | histogram | `operation`, `outcome` | the same operations' duration, from the call to its outcome record |
//! | [`KEYRING_ENCRYPTIONS`] | gauge | `version` | encryptions reserved under each keyring key version, as of this process's last reservation |
//! | [`KEYRING_ROTATION_LIMIT`] | gauge | | the reservation count at which the keyring rotates itself |
//! | [`LEASES`] | gauge | `state` | `live`: live leases in the store; `indexed`: expiry index entries in memory; as of the last [`LeaseManager::record_metrics`](crate::lease::LeaseManager::record_metrics) |
//! | [`ROTATION_STEP_SECONDS`] | histogram | `step`, `outcome` | rotation steps' duration |
//!
//! `strongroom-sqlx` adds the pool's refreshes and refused logins (see its
//! `pool` module).
//!
//! # Traces
//!
//! Every public operation of a principal's [`Handle`](crate::Handle) and of
//! the authorised handles ([`LeaseHandle`](crate::authorized::LeaseHandle),
//! [`RotationHandle`](crate::authorized::RotationHandle),
//! [`KeyAdmin`](crate::authorized::KeyAdmin),
//! [`AuditTrail`](crate::authorized::AuditTrail),
//! [`SigningHandle`](crate::authorized::SigningHandle)) runs in a `tracing`
//! span at level `DEBUG` named after the method (`Handle::read`,
//! `LeaseHandle::issue`, ...) with two fields, `principal` and
//! `request_id`: the same request id as the operation's audit records, so a
//! trace and its audit records join on it. Spans record no arguments (no
//! path, no value).

use std::time::Instant;

use crate::audit::{AuditEvent, Outcome};

/// Counter: operations through a principal's handle, by outcome.
pub const OPERATIONS: &str = "strongroom_operations_total";
/// Histogram (seconds): the same operations' duration.
pub const OPERATION_SECONDS: &str = "strongroom_operation_duration_seconds";
/// Gauge: encryptions reserved under a keyring key version.
pub const KEYRING_ENCRYPTIONS: &str = "strongroom_keyring_encryptions_reserved";
/// Gauge: the reservation count at which the keyring rotates itself.
pub const KEYRING_ROTATION_LIMIT: &str = "strongroom_keyring_rotation_limit";
/// Gauge: leases by state.
pub const LEASES: &str = "strongroom_leases";
/// Histogram (seconds): rotation steps' duration.
pub const ROTATION_STEP_SECONDS: &str = "strongroom_rotation_step_duration_seconds";

/// An operation ended and its outcome record was accepted. The labels
/// borrow static names (only an error's kind is copied), so with no
/// recorder installed this allocates nothing.
pub(crate) fn operation_finished(event: &AuditEvent) {
    let outcome: ::metrics::SharedString = match &event.outcome {
        Outcome::Allowed => "allowed".into(),
        Outcome::Denied => "denied".into(),
        Outcome::Error { kind } => kind.clone().into(),
    };
    let operation = event.operation.as_str();
    ::metrics::counter!(OPERATIONS, "operation" => operation, "outcome" => outcome.clone())
        .increment(1);
    if let Some(started) = event.started {
        ::metrics::histogram!(OPERATION_SECONDS, "operation" => operation, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
    }
}

/// Names the principal and request id of `event` on the current span (the
/// span every public operation of a handle opens, see "Traces" above), so
/// traces and audit records join on the request id.
pub(crate) fn trace_request(event: &AuditEvent) {
    let span = tracing::Span::current();
    span.record("principal", event.principal.as_str());
    span.record("request_id", event.request_id.as_str());
}

/// The reservations of keyring key `version` are now `reserved`.
pub(crate) fn keyring_reserved(version: u32, reserved: u64, limit: u64) {
    ::metrics::gauge!(KEYRING_ENCRYPTIONS, "version" => version.to_string()).set(reserved as f64);
    ::metrics::gauge!(KEYRING_ROTATION_LIMIT).set(limit as f64);
}

/// A rotation step that began at `started` ended with `outcome`.
pub(crate) fn rotation_step(step: &'static str, started: Instant, outcome: &str) {
    ::metrics::histogram!(
        ROTATION_STEP_SECONDS,
        "step" => step,
        "outcome" => outcome.to_owned()
    )
    .record(started.elapsed().as_secs_f64());
}

/// `count` leases are in `state`.
pub(crate) fn leases(state: &'static str, count: u64) {
    ::metrics::gauge!(LEASES, "state" => state).set(count as f64);
}

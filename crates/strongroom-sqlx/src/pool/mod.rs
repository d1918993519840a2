//! The self-healing PostgreSQL pool: a [`sqlx::PgPool`] whose login
//! credentials come from a rotated credential (or, through
//! [`CredentialSource`], from a dynamic lease).
//!
//! - **Proactive**: when the source reports a change, the pool's connect
//!   options are swapped (`Pool::set_connect_options`). A [`RotatedSource`]
//!   watches the credential's rotation record in storage
//!   ([`strongroom::storage::Storage::watch`]: PostgreSQL `LISTEN/NOTIFY`,
//!   SQLite `data_version`, or polling where the store cannot announce), so
//!   a rotation done by another process reaches the pool within about a
//!   second, before any login fails. When the login role changes
//!   (alternating users, a new dynamic role), connections opened before the
//!   swap are closed gradually as they are released after use (each at a
//!   jittered point within [`HealingOptions::recycle_window`], at most one
//!   per window / pool size), never while in use. A new password for the
//!   same role (single-user rotation) leaves open sessions valid, so they
//!   are kept and only new logins use the new password. If the current
//!   version stops logging in without a promotion (a single-user rotation
//!   just set the pending password), the pool moves to whichever stored
//!   version works.
//! - **Reactive**: when a login fails with a credential error, one refresh
//!   runs for all waiting callers (single flight): it reads the stored
//!   versions (a consistent snapshot of the rotation record), tries them in
//!   the order pending, current, previous, reads again if the rotation moved
//!   on meanwhile, swaps to the first that logs in, and the callers retry
//!   their operation. After a refresh that found nothing working, callers
//!   try again when the source reports a change, when another caller's
//!   refresh swaps, or after a short backoff (100 ms doubling to 1 s),
//!   whichever comes first. The whole operation, retries included, is
//!   bounded by [`HealingOptions::budget`].
//!
//! What is a credential failure ([`classify`]): SQLSTATE `28P01` (wrong or
//! expired password, dropped role). `28000` only when
//! [`HealingOptions::external_auth`] is set (LDAP, PAM, ... report bad
//! credentials that way), and never when it is a `pg_hba.conf` rejection.
//! `3D000` (no such database), `53300` (too many connections), `57P03`
//! (starting up), network and TLS errors are returned as they are, with no
//! refresh. A `28000` for a role that may not log in (how a revoked dynamic
//! role looks while it is dropped) gets one refresh per operation and pool
//! generation (a swap since the last one means the next login uses other
//! credentials): the pool moves to another stored version if one logs in,
//! and returns the error at once if every stored version is refused that
//! way. (sqlx's pool itself waits out `53300` and `57P03` until its acquire
//! timeout; the healing pool caps that timeout at the budget.)
//!
//! Files: `classify` (error classes), `source` (credential sources and the
//! rotation engine's), `lease_source` (leased dynamic credentials),
//! `options` (options, errors, metrics, events), `healing` (the pool) and
//! `follow` (swapping credentials when a source announces new ones).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use strongroom::changes::{ChangeWatcher, DEFAULT_FALLBACK, StorageEvent};
use strongroom::dangerous::Door;
use strongroom::rotation::{
    Credential, RotationEngine, RotationEvent, RotationStep, STATE_PREFIX, StagedCredentials,
    StepOutcome,
};
use tokio::sync::{broadcast, watch};

/// The sqlx this pool is built on, for the operations given to
/// [`HealingPool::run`] (they receive its [`PgPool`]) by crates that do not
/// depend on sqlx themselves.
pub use sqlx;

mod classify;
mod follow;
mod healing;
mod lease_source;
mod options;
mod source;
#[cfg(test)]
mod tests;

pub use classify::{ErrorClass, classify, classify_code};
pub use healing::{HealingPool, POOL_LOGIN_REFUSALS, POOL_REFRESHES, POOL_SWAPS};
pub use lease_source::LeaseSource;
pub use options::{HealingError, HealingOptions, PoolEvent, PoolMetrics};
pub use source::{CredentialSource, POLL_WITHOUT_NOTICES, RotatedSource};

use follow::watch_source;
use healing::{Inner, Search, find_working, options_for, swap_inner};

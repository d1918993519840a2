//! Configuration as code: a declared state of policies, principals, naming
//! rules and secret metadata, planned against the store and applied in one
//! step (as `terraform plan` and `terraform apply` do).
//!
//! # The files
//!
//! One TOML file, or a directory of `*.toml` files merged (a name declared
//! in two files is a [`DeclarativeError::Duplicate`] naming both):
//!
//! ```toml
//! [[policy]]                      # the policy file shape, as a list
//! name = "payments"
//! [[policy.path]]
//! pattern = "prod/payments/*"
//! capabilities = ["read", "list"]
//!
//! [principals]                    # principal = its policies
//! payment-svc = ["payments"]
//!
//! [secrets."prod/payments/db"]    # a secret's metadata, never its value
//! owner = "payments-team"
//! environment = "prod"
//! tags = ["pci"]
//! rotation_interval = "30d"       # <n>s, <n>m, <n>h or <n>d
//! max_versions = 5
//! generate = { length = 32 }      # optional: random value if missing
//!
//! [naming.services]               # a path must match at least one rule
//! pattern = "{env}/{service}/{type}"
//! allowed = { env = ["prod", "staging"] }
//!
//! [rotation."payments/api-key"]   # a rotated credential's schedule
//! interval = "30d"
//! grace_period = "1h"
//!
//! [alerts.sensitive_read]         # alert rules, as AlertConfig::from_toml
//! patterns = ["prod/admin/*"]     # takes them (without the alerts. prefix)
//!
//! [dynamic.postgres]              # a section another crate keeps
//! connection_secret = "infra/pg/admin-url"
//! [dynamic.postgres.roles.readonly]
//! grants = [{ privileges = ["Connect"], object = { Database = { name = "app" } } }]
//! ```
//!
//! A `value` key in a secret is refused ([`DeclarativeError::ValueInFile`]);
//! every other mistake inside a file is a [`DeclarativeError::Parse`]
//! naming the file, line and column; a name declared in two files is a
//! [`DeclarativeError::Duplicate`] and a principal naming an undeclared
//! policy a [`DeclarativeError::UnknownPolicy`]. A secret's five metadata fields are all managed: one
//! left out is cleared on apply. Custom key-values are not managed, and
//! secrets the files do not name are left alone (never deleted).
//!
//! # Rotation schedules
//!
//! A `[rotation."<credential>"]` table gives a rotated credential's
//! `interval` and `grace_period` (either or both). They are kept in the
//! applied record, and a [`RotationEngine`](crate::rotation::RotationEngine)
//! reads them from the store whenever it schedules or promotes: a declared
//! field wins over the engine's own
//! [`RotationOptions`](crate::rotation::RotationOptions), one left out
//! falls back to them. A running schedule looks again at least every
//! [`SCHEDULE_RECHECK`](crate::rotation::SCHEDULE_RECHECK) of the store's
//! clock, so a schedule applied by another process takes effect within it.
//!
//! # Alert rules
//!
//! The `[alerts]` table is an [`AlertConfig`](crate::alerts::AlertConfig)
//! (its rules, limits and delivery settings, checked as
//! [`AlertConfig::from_toml`](crate::alerts::AlertConfig::from_toml) checks
//! them). It is kept in the applied record, and an application starts its
//! [`AlertEngine`](crate::alerts::AlertEngine) with [`Applied::alerts`]. A
//! running engine keeps the rules it started with.
//!
//! # Sections of other crates
//!
//! A `[dynamic.<name>]` table belongs to a [`Section`]: a part of the
//! declared state another crate defines and stores in a barrier record of
//! its own, such as `strongroom-sqlx`'s PostgreSQL role catalog
//! (`PgCatalogSection`, name `postgres`, record `pgdyn/catalog`). Plan,
//! apply and drift take the sections the program knows ([`plan_with`],
//! [`apply_with`], [`drift_with`]); a declared table with none of its name
//! is [`DeclarativeError::UnknownSection`]. Its items (for the catalog: its
//! settings and one `role <name>` per definition) are compared like
//! policies, and apply writes the section's record in the same atomic
//! batch, conditioned on the record as the plan read it. A section the
//! files do not declare is left alone.
//!
//! # Plan, apply, drift
//!
//! - [`plan`] compares the files with the store: policies, principals,
//!   naming rules, rotation schedules and alert rules against the applied
//!   record, each
//!   declared section against its record, each declared secret's metadata
//!   against the store. It records what it read (the applied
//!   record's revision and digest, each declared secret's metadata digest).
//!   A [`Plan`] prints like Terraform's (`+`, `~`, `-`) and serialises to
//!   JSON ([`Plan::to_json`], [`Plan::from_json`]).
//! - [`apply`] writes the plan as one atomic storage batch conditioned on
//!   everything the plan read; if anything changed since, it returns
//!   [`DeclarativeError::StoreChangedSincePlan`] and writes nothing.
//!   Generated values come from the library's random source and appear in
//!   no output, report or error.
//! - [`drift`] reports where the store differs from the files.
//!
//! # The applied record
//!
//! Policies, principals, naming rules, rotation schedules and alert rules
//! live in one record at
//! [`DECLARED_RECORD`] (`sys/declared`), sealed by the barrier like every
//! record, with a revision counting applies. [`Applied::load`] reads it
//! back, so an application can build its principals from it.
//!
//! # Naming rules
//!
//! [`NamingRules::check`] says whether a path follows them. Every write
//! through a principal's handle ([`Handle::put`](crate::Handle::put), and
//! so the CLI's `put` and `import`) reads the applied rules first (one
//! storage read per write, so rules applied by another process hold for
//! the next write) and refuses a path that follows none of them with
//! [`Error::Naming`](crate::Error::Naming), audited, before anything is
//! written. The door's unchecked
//! [`SecretsStore::put`](crate::secrets::SecretsStore::put) does not check
//! them.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use strongroom::declarative::{self, Applied, Declared};
//! use strongroom::protector::SoftwareProtector;
//! use strongroom::storage::MemoryStorage;
//! use strongroom::{Options, SecretBytes, Strongroom};
//!
//! let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32]))?;
//! let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &protector, Options::default()).await?;
//! let door = sr.dangerous_traced("deploy").await?;
//! let declared = Declared::from_toml_str(r#"
//!     [[policy]]
//!     name = "payments"
//!     [[policy.path]]
//!     pattern = "prod/payments/*"
//!     capabilities = ["read"]
//!     [principals]
//!     payment-svc = ["payments"]
//!     [secrets."prod/payments/db"]
//!     owner = "payments-team"
//!     generate = { length = 32 }
//! "#, "example.toml").unwrap();
//!
//! let plan = declarative::plan(&door, &declared).await.unwrap();
//! assert!(plan.to_string().contains("+ policy \"payments\""));
//! let report = declarative::apply(&door, &plan, door.handle()).await.unwrap();
//! assert_eq!(report.generated, ["prod/payments/db"]);
//! assert!(declarative::plan(&door, &declared).await.unwrap().is_empty());
//!
//! let applied = Applied::load(&door).await.unwrap().unwrap();
//! assert_eq!(applied.revision, 1);
//! let svc = applied.principal("payment-svc").unwrap();
//! assert_eq!(svc.policies(), ["payments"]);
//! # Ok::<(), strongroom::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Files
//!
//! `document` (the TOML format and merging), `naming` (naming rules),
//! `state` (the applied record), `section` (sections of other crates),
//! `plan` (plans and drift), `apply`, `error`.

mod apply;
mod document;
mod error;
mod naming;
mod plan;
mod section;
mod state;
#[cfg(test)]
mod tests;

pub use apply::{ApplyReport, apply, apply_reporting, apply_with};
pub use document::{
    Declared, Generate, MAX_FILE_LEN, MAX_GENERATE_LENGTH, PolicySpec, RotationSpec, RuleSpec,
    SecretSpec, format_interval, parse_interval,
};
pub use error::{DeclarativeError, NamingViolation};
pub use naming::{NamingRule, NamingRules};
pub use plan::{
    Action, Change, Drift, FieldChange, Kind, PLAN_FORMAT, Plan, SecretAction, SecretChange,
    SecretRead, drift, drift_with, plan, plan_reporting, plan_with,
};
pub use section::{Section, SectionRead};
pub use state::{APPLIED_FORMAT, Applied, DECLARED_RECORD};
pub(crate) use state::{applied_rotation, check_naming};

//! Role definitions kept in the store, so that every process sharing it
//! (the operator's `strongroom creds` and `strongroom run`, the service's
//! replicas) configures the same engine with the same definitions.
//!
//! A [`PgCatalog`] names the secret that holds the administrative
//! connection URL (the URL, with its password, stays an ordinary secret:
//! sealed, versioned, rotatable, audited when read) and the role
//! definitions, written in TOML:
//!
//! ```toml
//! connection_secret = "infra/pg/admin-url"   # its value: postgres://admin:...@host/db
//! role_prefix = "sr_"                        # optional (default "sr_"); also engine, mount
//!
//! [roles.readonly]
//! default_ttl_secs = 3600
//! max_ttl_secs = 86400
//! grants = [
//!   { privileges = ["Connect"], object = { Database = { name = "app" } } },
//!   { privileges = ["Select"], object = { AllTablesInSchema = { schema = "public" } } },
//! ]
//! # creation_statements, revocation_statements, reassign_owned_to: as in PgRoleDefinition
//! ```
//!
//! It is stored as one barrier record, [`CATALOG_RECORD`]: sealed under the
//! keyring and bound to its key, so it is authenticated as well as
//! secret. That matters because its statements are run: the rest of this
//! module runs nothing read from storage (see the [module docs](super)),
//! and the catalog is the one exception, trusted because no one can write
//! it without the keyring, which already opens every secret. Write it only
//! through a principal with `sudo` (the CLI's operator).
//!
//! A catalog is replaced whole, with a compare-and-set on the record read:
//! two writers cannot both succeed from the same starting point.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strongroom::dangerous::Door;
use strongroom::lease::LeaseManager;
use strongroom::storage::BatchOp;

use super::definition::{PgGrant, PgOwnedObjects, PgRoleDefinition};
use super::engine::{PgDynamicConfig, PgDynamicCredentials};
use super::error::{PgDynError, PgDynResult};

/// The storage key of the catalog (a barrier record).
pub const CATALOG_RECORD: &str = "pgdyn/catalog";
/// Format version of the stored catalog.
pub const CATALOG_FORMAT: u8 = 1;
/// The largest catalog text read, in bytes (1 MiB).
pub const MAX_CATALOG_LEN: usize = 1 << 20;

/// One role definition as written in the catalog (see the module docs);
/// [`PgRoleSpec::definition`] checks it and makes the engine's form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgRoleSpec {
    /// Grants the new role receives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<PgGrant>,
    /// Operator-written creation statements (`{{name}}`, `{{password}}`,
    /// `{{expiration}}`); empty: the default `CREATE ROLE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub creation_statements: Vec<String>,
    /// Statements run before the role is dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_statements: Vec<String>,
    /// Give what the role owns to this role on revocation (default: drop it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassign_owned_to: Option<String>,
    /// TTL when the caller asks for none, in seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_ttl_secs: Option<u64>,
    /// The longest a lease may live, renewals included, in seconds
    /// (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl_secs: Option<u64>,
}

impl PgRoleSpec {
    /// The definition named `name` this spec makes, checked as
    /// [`PgDynamicCredentials::define`] would.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidDefinitionName`] and the definition's other
    /// checks.
    pub fn definition(&self, name: &str) -> PgDynResult<PgRoleDefinition> {
        let mut d = PgRoleDefinition::new(name)?;
        for g in &self.grants {
            d = d.grant(g.clone());
        }
        if !self.creation_statements.is_empty() {
            d = d.creation_statements(self.creation_statements.clone());
        }
        if !self.revocation_statements.is_empty() {
            d = d.revocation_statements(self.revocation_statements.clone());
        }
        if let Some(to) = &self.reassign_owned_to {
            d = d.owned_objects(PgOwnedObjects::ReassignTo(to.clone()));
        }
        if let Some(s) = self.default_ttl_secs {
            d = d.default_ttl(Duration::from_secs(s));
        }
        if let Some(s) = self.max_ttl_secs {
            d = d.max_ttl(Duration::from_secs(s));
        }
        d.check()?;
        Ok(d)
    }
}

fn default_engine() -> String {
    PgDynamicConfig::default().engine
}
fn default_mount() -> String {
    PgDynamicConfig::default().mount
}
fn default_prefix() -> String {
    PgDynamicConfig::default().role_prefix
}

/// The administrative connection's secret, the engine's names and the role
/// definitions (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgCatalog {
    /// The path of the secret whose value is the administrative connection
    /// URL (a role with `CREATEROLE` and the privileges it grants).
    pub connection_secret: String,
    /// The lease engine name (default `postgres`).
    #[serde(default = "default_engine")]
    pub engine: String,
    /// The first segment of lease paths (default `database`): leases are
    /// issued under `<mount>/creds/<role>`.
    #[serde(default = "default_mount")]
    pub mount: String,
    /// The prefix of generated role names (default `sr_`).
    #[serde(default = "default_prefix")]
    pub role_prefix: String,
    /// The role definitions, by name.
    #[serde(default)]
    pub roles: BTreeMap<String, PgRoleSpec>,
}

/// The stored record: the catalog, its revision and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogRecord {
    format: u8,
    revision: u64,
    written_by: String,
    catalog: PgCatalog,
}

/// A catalog read from the store, with what a replacement must name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCatalog {
    /// The catalog.
    pub catalog: PgCatalog,
    /// 1 for the first catalog written, then one more per replacement.
    pub revision: u64,
    /// The principal that wrote it.
    pub written_by: String,
}

fn invalid(source: &str, reason: impl Into<String>) -> PgDynError {
    PgDynError::InvalidCatalog {
        source_name: source.to_owned(),
        reason: reason.into(),
    }
}

impl PgCatalog {
    /// Parses and checks catalog TOML (`source` names it in errors).
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidCatalog`] for text that is too long, not TOML
    /// of this shape, or whose definitions or names do not check.
    pub fn from_toml_str(text: &str, source: &str) -> PgDynResult<Self> {
        if text.len() > MAX_CATALOG_LEN {
            return Err(invalid(
                source,
                format!("longer than {MAX_CATALOG_LEN} bytes"),
            ));
        }
        // The parser's own message quotes the offending line, which could
        // hold a value pasted by mistake: only its message and line number.
        let catalog: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1);
            let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
            invalid(source, format!("{at}{}", redact_strings(e.message())))
        })?;
        catalog.check(source)?;
        Ok(catalog)
    }

    /// Checks the names and every definition.
    fn check(&self, source: &str) -> PgDynResult<()> {
        strongroom::path::SecretPath::parse(&self.connection_secret)
            .map_err(|e| invalid(source, format!("connection_secret: {e}")))?;
        self.config().map_err(|e| invalid(source, e.to_string()))?;
        for (name, spec) in &self.roles {
            spec.definition(name)
                .map_err(|e| invalid(source, format!("role {name:?}: {e}")))?;
        }
        Ok(())
    }

    /// The engine settings this catalog names.
    fn config(&self) -> PgDynResult<PgDynamicConfig> {
        let mut config = PgDynamicConfig::default();
        config.engine.clone_from(&self.engine);
        config.mount.clone_from(&self.mount);
        config.role_prefix.clone_from(&self.role_prefix);
        super::engine::check_config(&config)?;
        Ok(config)
    }

    /// The definition of role `name`.
    ///
    /// # Errors
    ///
    /// [`PgDynError::UnknownDefinition`] if the catalog has no such role.
    pub fn definition(&self, name: &str) -> PgDynResult<PgRoleDefinition> {
        let spec = self
            .roles
            .get(name)
            .ok_or_else(|| PgDynError::UnknownDefinition {
                key: CATALOG_RECORD.to_owned(),
                definition: name.to_owned(),
            })?;
        spec.definition(name)
    }

    /// Reads the stored catalog (`None`: none was written).
    ///
    /// # Errors
    ///
    /// [`PgDynError::CorruptRecord`] for a record that does not decode,
    /// and storage or barrier errors (a record tampered with at rest does
    /// not open).
    pub async fn load(door: &Door) -> PgDynResult<Option<StoredCatalog>> {
        Ok(read(door).await?.map(|(rec, _)| StoredCatalog {
            catalog: rec.catalog,
            revision: rec.revision,
            written_by: rec.written_by,
        }))
    }

    /// Stores this catalog in place of the one at `expected_revision`
    /// (`None`: there must be none yet), as `written_by`; the new revision.
    ///
    /// # Errors
    ///
    /// [`PgDynError::CatalogChanged`] if the stored revision is not the one
    /// expected (another writer came first; nothing was written), and
    /// storage errors.
    pub async fn save(
        &self,
        door: &Door,
        expected_revision: Option<u64>,
        written_by: &str,
    ) -> PgDynResult<u64> {
        self.check(CATALOG_RECORD)?;
        let current = read(door).await?;
        let found = current.as_ref().map(|(rec, _)| rec.revision);
        if found != expected_revision {
            return Err(PgDynError::CatalogChanged {
                expected: expected_revision,
                found,
            });
        }
        let revision = found.unwrap_or(0) + 1;
        let record = CatalogRecord {
            format: CATALOG_FORMAT,
            revision,
            written_by: written_by.to_owned(),
            catalog: self.clone(),
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| invalid(CATALOG_RECORD, format!("does not encode: {e}")))?;
        let ops = vec![
            BatchOp::expect(CATALOG_RECORD, current.map(|(_, raw)| raw)),
            BatchOp::put(CATALOG_RECORD, bytes),
        ];
        match door.barrier().batch(ops).await {
            Ok(()) => Ok(revision),
            Err(strongroom::Error::StorageConflict { .. }) => {
                let found = read(door).await?.map(|(rec, _)| rec.revision);
                Err(PgDynError::CatalogChanged {
                    expected: expected_revision,
                    found,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An engine for this catalog: reads the connection URL from its
    /// secret as `reader` (checked for `read` and audited, like any read of
    /// a secret), connects, and configures every definition. The engine
    /// acts on `door`'s store and registers its revoker with `leases`.
    ///
    /// # Errors
    ///
    /// A core error if the connection secret cannot be read (a policy
    /// denial included),
    /// [`PgDynError::InvalidCatalog`] if its value is not UTF-8,
    /// [`PgDynError::Database`] if the server cannot be reached or refuses
    /// the login.
    pub async fn connect(
        &self,
        reader: &strongroom::Handle,
        door: &Door,
        leases: Arc<LeaseManager>,
    ) -> PgDynResult<PgDynamicCredentials> {
        let url = reader.read(&self.connection_secret).await?;
        let url = std::str::from_utf8(url.value.expose_secret()).map_err(|_| {
            invalid(
                &self.connection_secret,
                "the connection secret is not a UTF-8 URL",
            )
        })?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .map_err(super::error::db(
                "connecting to the administrative database",
            ))?;
        let engine = PgDynamicCredentials::new(
            pool,
            leases,
            door.clone(),
            door.clock().clone(),
            self.config()?,
        )?;
        for name in self.roles.keys() {
            engine.define(&self.definition(name)?)?;
        }
        Ok(engine)
    }
}

/// The catalog as a [`Section`](strongroom::declarative::Section) of the
/// declaration files: the same TOML under `[dynamic.postgres]`, planned,
/// applied and checked for drift with the rest of the files (`strongroom
/// plan`, `apply` and `drift`), and kept in [`CATALOG_RECORD`] as
/// [`PgCatalog::save`] keeps it:
///
/// ```toml
/// [dynamic.postgres]
/// connection_secret = "infra/pg/admin-url"
///
/// [dynamic.postgres.roles.readonly]
/// default_ttl_secs = 600
/// grants = [{ privileges = ["Connect"], object = { Database = { name = "app" } } }]
/// ```
///
/// Its items are the catalog's settings (`connection_secret`, `engine`,
/// `mount`, `role_prefix`) and one `role <name>` per definition, so a plan
/// names the roles that are added, changed or removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgCatalogSection;

/// The name of the catalog's section under `[dynamic]`.
pub const SECTION_NAME: &str = "postgres";

impl PgCatalog {
    /// The catalog's items as a declaration section names them.
    fn items(&self) -> BTreeMap<String, serde_json::Value> {
        let mut items = BTreeMap::new();
        for (name, value) in [
            ("connection_secret", &self.connection_secret),
            ("engine", &self.engine),
            ("mount", &self.mount),
            ("role_prefix", &self.role_prefix),
        ] {
            items.insert(name.to_owned(), serde_json::Value::from(value.as_str()));
        }
        for (name, spec) in &self.roles {
            let value = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
            items.insert(format!("role {name}"), value);
        }
        items
    }

    /// A catalog from a section's JSON, checked; errors never quote a value.
    fn from_section(declared: &serde_json::Value) -> PgDynResult<Self> {
        let catalog: Self = serde::Deserialize::deserialize(declared)
            .map_err(|e| invalid(SECTION_NAME, redact_strings(&e.to_string())))?;
        catalog.check(SECTION_NAME)?;
        Ok(catalog)
    }
}

impl strongroom::declarative::Section for PgCatalogSection {
    fn name(&self) -> &str {
        SECTION_NAME
    }

    fn record_key(&self) -> &str {
        CATALOG_RECORD
    }

    fn items(
        &self,
        declared: &serde_json::Value,
    ) -> Result<BTreeMap<String, serde_json::Value>, String> {
        PgCatalog::from_section(declared)
            .map(|c| c.items())
            .map_err(|e| e.to_string())
    }

    fn stored_items(&self, raw: &[u8]) -> Result<BTreeMap<String, serde_json::Value>, String> {
        decode(raw)
            .map(|rec| rec.catalog.items())
            .map_err(|e| e.to_string())
    }

    fn encode(
        &self,
        declared: &serde_json::Value,
        stored: Option<&[u8]>,
        written_by: &str,
    ) -> Result<Vec<u8>, String> {
        let catalog = PgCatalog::from_section(declared).map_err(|e| e.to_string())?;
        let revision = match stored {
            Some(raw) => decode(raw).map_err(|e| e.to_string())?.revision + 1,
            None => 1,
        };
        let record = CatalogRecord {
            format: CATALOG_FORMAT,
            revision,
            written_by: written_by.to_owned(),
            catalog,
        };
        serde_json::to_vec(&record).map_err(|e| format!("does not encode: {e}"))
    }
}

/// `message` with the text of every double-quoted string left out (a
/// type error quotes the value it found: `invalid type: string "..."`);
/// names in backticks stay.
fn redact_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push_str("...\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// The stored record and its raw plaintext (for the compare-and-set).
async fn read(door: &Door) -> PgDynResult<Option<(CatalogRecord, Vec<u8>)>> {
    let Some(raw) = door.barrier().get(CATALOG_RECORD).await? else {
        return Ok(None);
    };
    Ok(Some((decode(&raw)?, raw)))
}

/// The stored record from its plaintext.
fn decode(raw: &[u8]) -> PgDynResult<CatalogRecord> {
    let corrupt = |reason: String| PgDynError::CorruptRecord {
        key: CATALOG_RECORD.to_owned(),
        reason,
    };
    let rec: CatalogRecord = serde_json::from_slice(raw).map_err(|e| corrupt(e.to_string()))?;
    if rec.format != CATALOG_FORMAT {
        return Err(corrupt(format!("unsupported format {}", rec.format)));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
connection_secret = "infra/pg/admin-url"

[roles.readonly]
default_ttl_secs = 600
max_ttl_secs = 3600
grants = [
  { privileges = ["Connect"], object = { Database = { name = "app" } } },
  { privileges = ["Select"], object = { AllTablesInSchema = { schema = "public" } } },
]

[roles.writer]
creation_statements = ["CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}"]
reassign_owned_to = "app_owner"
"#;

    #[test]
    fn parses_with_defaults_and_makes_definitions() {
        let c = PgCatalog::from_toml_str(TEXT, "t.toml").unwrap();
        assert_eq!(c.engine, "postgres");
        assert_eq!(c.mount, "database");
        assert_eq!(c.role_prefix, "sr_");
        let d = c.definition("readonly").unwrap();
        assert_eq!(d.grants().len(), 2);
        assert!(c.definition("writer").is_ok());
        assert!(matches!(
            c.definition("nope"),
            Err(PgDynError::UnknownDefinition { .. })
        ));
    }

    /// The catalog of `TEXT`, declared as a section of the files.
    fn files(extra: &str) -> String {
        let body = TEXT.replace("[roles.", "[dynamic.postgres.roles.");
        format!("[dynamic.postgres]\n{body}\n{extra}")
    }

    #[tokio::test]
    async fn the_catalog_is_planned_applied_and_drift_checked_with_the_files() {
        use strongroom::declarative::{self, Action, DeclarativeError, Declared, Kind};
        let storage = Arc::new(strongroom::storage::MemoryStorage::new());
        let protector = strongroom::protector::SoftwareProtector::from_key(
            strongroom::SecretBytes::new(vec![7; 32]),
        )
        .unwrap();
        let sr = strongroom::Strongroom::init(storage, &protector, Default::default())
            .await
            .unwrap();
        let door = sr.dangerous_traced("test").await.unwrap();
        let sections: [&dyn declarative::Section; 1] = [&PgCatalogSection];
        let declared = Declared::from_toml_str(&files(""), "f.toml").unwrap();

        // without the section, the files are refused
        assert!(matches!(
            declarative::plan(&door, &declared).await,
            Err(DeclarativeError::UnknownSection { name }) if name == "postgres"
        ));
        let plan = declarative::plan_with(&door, &declared, &sections)
            .await
            .unwrap();
        let text = plan.to_string();
        assert!(
            text.contains("+ dynamic \"postgres: role readonly\""),
            "{text}"
        );
        assert!(
            text.contains("+ dynamic \"postgres: connection_secret\""),
            "{text}"
        );
        declarative::apply_with(&door, &plan, door.handle(), &sections)
            .await
            .unwrap();
        // the engine's own reader sees what the files declared
        let stored = PgCatalog::load(&door).await.unwrap().unwrap();
        assert_eq!(stored.catalog, PgCatalog::from_toml_str(TEXT, "t").unwrap());
        assert_eq!(
            (stored.revision, stored.written_by.as_str()),
            (1, "dangerous:test")
        );
        assert!(
            declarative::plan_with(&door, &declared, &sections)
                .await
                .unwrap()
                .is_empty()
        );

        // a change made outside the files (`creds configure`) is drift
        let mut other = stored.catalog.clone();
        other.roles.remove("writer");
        other.save(&door, Some(1), "someone").await.unwrap();
        let drift = declarative::drift_with(&door, &declared, &sections)
            .await
            .unwrap();
        assert_eq!(drift.changes.len(), 1, "{drift}");
        let c = &drift.changes[0];
        assert_eq!((c.kind, c.action), (Kind::Dynamic, Action::Create));
        assert_eq!(c.name, "postgres: role writer");

        // a plan made before another writer's change is refused whole
        let plan = declarative::plan_with(&door, &declared, &sections)
            .await
            .unwrap();
        other.save(&door, Some(2), "someone").await.unwrap();
        assert!(matches!(
            declarative::apply_with(&door, &plan, door.handle(), &sections).await,
            Err(DeclarativeError::StoreChangedSincePlan { what }) if what == CATALOG_RECORD
        ));
        assert_eq!(PgCatalog::load(&door).await.unwrap().unwrap().revision, 3);

        // planned again, the files win; then a role removed from the files
        // is removed from the store
        let plan = declarative::plan_with(&door, &declared, &sections)
            .await
            .unwrap();
        declarative::apply_with(&door, &plan, door.handle(), &sections)
            .await
            .unwrap();
        assert!(
            PgCatalog::load(&door)
                .await
                .unwrap()
                .unwrap()
                .catalog
                .roles
                .contains_key("writer")
        );
        let full = files("");
        let fewer = &full[..full.find("[dynamic.postgres.roles.writer]").unwrap()];
        let declared = Declared::from_toml_str(fewer, "f.toml").unwrap();
        let plan = declarative::plan_with(&door, &declared, &sections)
            .await
            .unwrap();
        assert!(
            plan.to_string()
                .contains("- dynamic \"postgres: role writer\""),
            "{plan}"
        );
        declarative::apply_with(&door, &plan, door.handle(), &sections)
            .await
            .unwrap();
        let stored = PgCatalog::load(&door).await.unwrap().unwrap();
        assert_eq!(stored.revision, 5);
        assert!(!stored.catalog.roles.contains_key("writer"));

        // a mistake is refused naming the section, never quoting the value
        let bad = files("").replace("max_ttl_secs = 3600", "max_ttl_secs = \"hunter2\"");
        let declared = Declared::from_toml_str(&bad, "f.toml").unwrap();
        let err = declarative::plan_with(&door, &declared, &sections)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("[dynamic.postgres]") && !msg.contains("hunter2"),
            "{msg}"
        );
    }

    #[test]
    fn bad_catalogs_are_refused_with_the_reason() {
        let reason = |text: &str| match PgCatalog::from_toml_str(text, "t.toml") {
            Err(PgDynError::InvalidCatalog { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason("roles = {}").contains("connection_secret"));
        assert!(reason("connection_secret = \"Bad Path\"").contains("connection_secret"));
        let unknown = "connection_secret = \"a/b\"\nsecret_value = \"x\"";
        assert!(reason(unknown).contains("unknown field"));
        assert!(reason(unknown).starts_with("line 2: "));
        // the offending line is never quoted back
        let pasted = "connection_secret = \"a/b\"\npassword = \"hunter2\"";
        assert!(!reason(pasted).contains("hunter2"));
        let mistyped = "connection_secret = \"a/b\"\n[roles.r]\nmax_ttl_secs = \"hunter2\"";
        let why = reason(mistyped);
        assert!(why.contains("line 3") && !why.contains("hunter2"), "{why}");
        let bad_name = "connection_secret = \"a/b\"\n[roles.\"Bad Name\"]";
        assert!(reason(bad_name).contains("Bad Name"));
        let bad_tpl = "connection_secret = \"a/b\"\n[roles.r]\ncreation_statements = [\"CREATE ROLE {{nme}}\"]";
        assert!(reason(bad_tpl).contains("role \"r\""));
        let bad_ttl =
            "connection_secret = \"a/b\"\n[roles.r]\ndefault_ttl_secs = 100\nmax_ttl_secs = 10";
        assert!(reason(bad_ttl).contains("role \"r\""));
        let bad_prefix = "connection_secret = \"a/b\"\nrole_prefix = \"X-\"";
        assert!(!reason(bad_prefix).is_empty());
        assert!(reason(&"#".repeat(MAX_CATALOG_LEN + 1)).contains("longer"));
    }
}

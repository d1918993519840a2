//! Role definitions: what a dynamic role may do and how it is taken back,
//! as the process is configured; and the checked, compiled form the engine
//! keeps (statement templates turned into `format()` strings, and the
//! digest of the revocation).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{PgDynError, PgDynResult};
use super::{MAX_DEFINITION_NAME, MAX_IDENTIFIER_BYTES};

/// A privilege in a [`PgGrant`]. The SQL keyword comes from this enum, never
/// from caller text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PgPrivilege {
    /// `SELECT`
    Select,
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `TRUNCATE`
    Truncate,
    /// `REFERENCES`
    References,
    /// `TRIGGER`
    Trigger,
    /// `USAGE`
    Usage,
    /// `CREATE`
    Create,
    /// `CONNECT`
    Connect,
    /// `TEMPORARY`
    Temporary,
    /// `EXECUTE`
    Execute,
    /// `ALL PRIVILEGES`
    All,
}

impl PgPrivilege {
    pub(super) fn keyword(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::References => "REFERENCES",
            Self::Trigger => "TRIGGER",
            Self::Usage => "USAGE",
            Self::Create => "CREATE",
            Self::Connect => "CONNECT",
            Self::Temporary => "TEMPORARY",
            Self::Execute => "EXECUTE",
            Self::All => "ALL PRIVILEGES",
        }
    }
}

/// What a [`PgGrant`] is on. Names are quoted by the server (`%I`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PgObject {
    /// `TABLE schema.name` (also views).
    Table {
        /// Schema name.
        schema: String,
        /// Table name.
        name: String,
    },
    /// `SEQUENCE schema.name`.
    Sequence {
        /// Schema name.
        schema: String,
        /// Sequence name.
        name: String,
    },
    /// `ALL TABLES IN SCHEMA schema`.
    AllTablesInSchema {
        /// Schema name.
        schema: String,
    },
    /// `ALL SEQUENCES IN SCHEMA schema`.
    AllSequencesInSchema {
        /// Schema name.
        schema: String,
    },
    /// `SCHEMA name`.
    Schema {
        /// Schema name.
        name: String,
    },
    /// `DATABASE name`.
    Database {
        /// Database name.
        name: String,
    },
    /// Membership in an existing role (`GRANT role TO new_role`); the
    /// grant's privileges are ignored.
    RoleMembership {
        /// The role granted.
        role: String,
    },
}

impl PgObject {
    /// A table (or view) in a schema.
    pub fn table(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self::Table {
            schema: schema.into(),
            name: name.into(),
        }
    }
    /// A sequence in a schema.
    pub fn sequence(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self::Sequence {
            schema: schema.into(),
            name: name.into(),
        }
    }
    /// Every table in a schema (existing now).
    pub fn all_tables_in_schema(schema: impl Into<String>) -> Self {
        Self::AllTablesInSchema {
            schema: schema.into(),
        }
    }
    /// Every sequence in a schema (existing now).
    pub fn all_sequences_in_schema(schema: impl Into<String>) -> Self {
        Self::AllSequencesInSchema {
            schema: schema.into(),
        }
    }
    /// A schema.
    pub fn schema(name: impl Into<String>) -> Self {
        Self::Schema { name: name.into() }
    }
    /// A database.
    pub fn database(name: impl Into<String>) -> Self {
        Self::Database { name: name.into() }
    }
    /// Membership in an existing role.
    pub fn role(role: impl Into<String>) -> Self {
        Self::RoleMembership { role: role.into() }
    }

    /// The `ON ...` clause as a format string, and its identifier arguments.
    pub(super) fn clause(&self) -> PgDynResult<(&'static str, Vec<&str>)> {
        Ok(match self {
            Self::Table { schema, name } => {
                check_ident("schema", schema)?;
                check_ident("table", name)?;
                ("TABLE %I.%I", vec![schema, name])
            }
            Self::Sequence { schema, name } => {
                check_ident("schema", schema)?;
                check_ident("sequence", name)?;
                ("SEQUENCE %I.%I", vec![schema, name])
            }
            Self::AllTablesInSchema { schema } => {
                check_ident("schema", schema)?;
                ("ALL TABLES IN SCHEMA %I", vec![schema])
            }
            Self::AllSequencesInSchema { schema } => {
                check_ident("schema", schema)?;
                ("ALL SEQUENCES IN SCHEMA %I", vec![schema])
            }
            Self::Schema { name } => {
                check_ident("schema", name)?;
                ("SCHEMA %I", vec![name])
            }
            Self::Database { name } => {
                check_ident("database", name)?;
                ("DATABASE %I", vec![name])
            }
            Self::RoleMembership { role } => {
                check_ident("role", role)?;
                ("", vec![role])
            }
        })
    }
}

/// One grant a new role receives: privileges on an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgGrant {
    /// The privileges (ignored for [`PgObject::RoleMembership`]).
    pub privileges: Vec<PgPrivilege>,
    /// What they are on.
    pub object: PgObject,
}

impl PgGrant {
    /// `GRANT privileges ON object TO <role>`.
    pub fn new(privileges: impl IntoIterator<Item = PgPrivilege>, object: PgObject) -> Self {
        Self {
            privileges: privileges.into_iter().collect(),
            object,
        }
    }

    /// The statement as a format string and its arguments; the new role's
    /// name is the last argument.
    pub(super) fn statement<'a>(&'a self, role: &'a str) -> PgDynResult<(String, Vec<&'a str>)> {
        let (clause, mut args) = self.object.clause()?;
        let sql = if let PgObject::RoleMembership { .. } = self.object {
            "GRANT %I TO %I".to_owned()
        } else {
            if self.privileges.is_empty() {
                return Err(PgDynError::InvalidIdentifier {
                    what: "grant",
                    name: String::new(),
                    reason: "a grant needs at least one privilege",
                });
            }
            let privs: Vec<&str> = self.privileges.iter().map(|p| p.keyword()).collect();
            format!("GRANT {} ON {clause} TO %I", privs.join(", "))
        };
        args.push(role);
        Ok((sql, args))
    }
}

/// What happens to objects a dynamic role owns when it is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PgOwnedObjects {
    /// `DROP OWNED BY role` (the default): its objects are dropped and its
    /// privileges revoked.
    Drop,
    /// `REASSIGN OWNED BY role TO target`, then `DROP OWNED BY role` (which
    /// then only revokes privileges).
    ReassignTo(String),
}

/// How to create and revoke one kind of dynamic role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRoleDefinition {
    pub(super) name: String,
    pub(super) creation: Vec<String>,
    pub(super) grants: Vec<PgGrant>,
    pub(super) revocation: Vec<String>,
    pub(super) owned: PgOwnedObjects,
    pub(super) default_ttl: Duration,
    pub(super) max_ttl: Duration,
}

impl PgRoleDefinition {
    /// A definition with the safe defaults: `CREATE ROLE <name> LOGIN
    /// PASSWORD <pw> VALID UNTIL <lease end>`, no grants, owned objects
    /// dropped on revocation, default TTL one hour, max TTL one day.
    ///
    /// # Errors
    ///
    /// [`PgDynError::InvalidDefinitionName`] unless `name` is 1 to 64
    /// characters from `a-z`, `0-9`, `_`, `-` (it becomes part of role names
    /// and of the lease path).
    pub fn new(name: impl Into<String>) -> PgDynResult<Self> {
        let name = name.into();
        validate_definition_name(&name)?;
        Ok(Self {
            name,
            creation: Vec::new(),
            grants: Vec::new(),
            revocation: Vec::new(),
            owned: PgOwnedObjects::Drop,
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(24 * 3600),
        })
    }

    /// Adds a grant (run after the creation statements, in the same
    /// transaction).
    #[must_use]
    pub fn grant(mut self, grant: PgGrant) -> Self {
        self.grants.push(grant);
        self
    }

    /// Replaces the default `CREATE ROLE` with these statements, run in
    /// order in one transaction. `{{name}}`, `{{password}}` and
    /// `{{expiration}}` are substituted by the server as a quoted identifier
    /// and quoted literals. The statements must create the role with
    /// `VALID UNTIL {{expiration}}` for the database to refuse it on time.
    #[must_use]
    pub fn creation_statements(mut self, statements: impl IntoIterator<Item = String>) -> Self {
        self.creation = statements.into_iter().collect();
        self
    }

    /// Statements run on revocation, before owned objects are handled and
    /// the role is dropped; `{{name}}` is the only placeholder. They are
    /// taken from the definition the engine is configured with when the
    /// role is revoked, never from storage; changing them (or
    /// [`PgRoleDefinition::owned_objects`]) makes a different revocation,
    /// which leases issued under the old one refuse
    /// ([`PgDynError::DefinitionChanged`]).
    #[must_use]
    pub fn revocation_statements(mut self, statements: impl IntoIterator<Item = String>) -> Self {
        self.revocation = statements.into_iter().collect();
        self
    }

    /// What happens to objects the role owns.
    #[must_use]
    pub fn owned_objects(mut self, owned: PgOwnedObjects) -> Self {
        self.owned = owned;
        self
    }

    /// The TTL when the caller asks for none.
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest a role may live, renewals included.
    #[must_use]
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The definition's name.
    /// Checks the definition as [`PgDynamicCredentials::define`](super::PgDynamicCredentials::define)
    /// and [`PgDynamicCredentials::issue`](super::PgDynamicCredentials::issue)
    /// would (name, templates, identifiers, grants, positive TTLs), without
    /// an engine.
    ///
    /// # Errors
    ///
    /// As those: [`PgDynError::InvalidTtl`], [`PgDynError::InvalidTemplate`],
    /// [`PgDynError::InvalidIdentifier`], [`PgDynError::InvalidDefinitionName`].
    pub fn check(&self) -> PgDynResult<()> {
        if self.default_ttl.is_zero() || self.max_ttl.is_zero() {
            return Err(PgDynError::InvalidTtl {
                reason: "ttl and max ttl must be positive",
            });
        }
        if self.default_ttl > self.max_ttl {
            return Err(PgDynError::InvalidTtl {
                reason: "the default ttl is longer than the max ttl",
            });
        }
        CompiledDefinition::new(self).map(drop)
    }

    /// The definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The grants.
    pub fn grants(&self) -> &[PgGrant] {
        &self.grants
    }
}

/// Domain label of [`CompiledDefinition::digest`].
pub(super) const DIGEST_LABEL: &[u8] = b"strongroom/pgdyn/revocation-digest/v1\0";

/// A definition as the engine holds it: checked, its templates turned into
/// `format()` strings, and the digest of what its revocation does.
#[derive(Debug, Clone)]
pub(super) struct CompiledDefinition {
    pub(super) def: PgRoleDefinition,
    /// Creation statements as format strings (empty: the default `CREATE ROLE`).
    pub(super) creation: Vec<String>,
    /// Revocation statements as format strings.
    pub(super) revocation: Vec<String>,
    /// SHA-256 over [`DIGEST_LABEL`] and the postcard encoding of
    /// `(revocation, owned)`: what revoking a role of this definition runs.
    pub(super) digest: [u8; 32],
}

impl CompiledDefinition {
    /// Checks `def` (templates, identifiers, grants) and compiles it.
    pub(super) fn new(def: &PgRoleDefinition) -> PgDynResult<Self> {
        validate_definition_name(&def.name)?;
        let creation = def
            .creation
            .iter()
            .enumerate()
            .map(|(i, s)| template_to_format(def, "creation", i, s, true))
            .collect::<PgDynResult<Vec<_>>>()?;
        let revocation = def
            .revocation
            .iter()
            .enumerate()
            .map(|(i, s)| template_to_format(def, "revocation", i, s, false))
            .collect::<PgDynResult<Vec<_>>>()?;
        if let PgOwnedObjects::ReassignTo(target) = &def.owned {
            check_ident("reassign-to role", target)?;
        }
        for g in &def.grants {
            g.object.clause()?;
        }
        let digest = revocation_digest(&revocation, &def.owned)?;
        Ok(Self {
            def: def.clone(),
            creation,
            revocation,
            digest,
        })
    }

    /// What happens to the objects a role of this definition owns.
    pub(super) fn owned(&self) -> &PgOwnedObjects {
        &self.def.owned
    }
}

/// The digest of a revocation: SHA-256(label || postcard((statements, owned))).
pub(super) fn revocation_digest(
    revocation: &[String],
    owned: &PgOwnedObjects,
) -> PgDynResult<[u8; 32]> {
    let body = postcard::to_allocvec(&(revocation, owned)).map_err(|e| {
        PgDynError::Core(strongroom::Error::InvalidArgument(format!(
            "a role definition does not encode: {e}"
        )))
    })?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(DIGEST_LABEL);
    ctx.update(&body);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// Turns a statement template into a `format()` string: `%` is escaped,
/// `{{name}}` becomes `%1$I`, `{{password}}` `%2$L`, `{{expiration}}` `%3$L`.
pub(super) fn template_to_format(
    definition: &PgRoleDefinition,
    kind: &'static str,
    index: usize,
    template: &str,
    creation: bool,
) -> PgDynResult<String> {
    let bad = |reason: String| PgDynError::InvalidTemplate {
        definition: definition.name.clone(),
        kind,
        index,
        reason,
    };
    if template.contains('\0') {
        return Err(bad("contains a NUL character".to_owned()));
    }
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, tail) = rest.split_at(start);
        out.push_str(&before.replace('%', "%%"));
        let Some(end) = tail.find("}}") else {
            return Err(bad("'{{' without a closing '}}'".to_owned()));
        };
        let key = tail.get(2..end).unwrap_or_default().trim();
        out.push_str(match (key, creation) {
            ("name", _) => "%1$I",
            ("password", true) => "%2$L",
            ("expiration", true) => "%3$L",
            (other, _) => {
                return Err(bad(format!(
                    "unknown placeholder {{{{{}}}}} (allowed: {})",
                    other.chars().take(40).collect::<String>(),
                    if creation {
                        "{{name}}, {{password}}, {{expiration}}"
                    } else {
                        "{{name}}"
                    }
                )));
            }
        });
        rest = tail.get(end + 2..).unwrap_or_default();
    }
    if rest.contains("}}") {
        return Err(bad("'}}' without an opening '{{'".to_owned()));
    }
    out.push_str(&rest.replace('%', "%%"));
    Ok(out)
}

pub(super) fn validate_definition_name(name: &str) -> PgDynResult<()> {
    let bad = |reason| {
        Err(PgDynError::InvalidDefinitionName {
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_DEFINITION_NAME {
        return bad("it is too long");
    }
    if !name
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    {
        return bad("it has a character outside the allowed set");
    }
    if name.starts_with('-') {
        return bad("it starts with '-'");
    }
    Ok(())
}

/// Object names are quoted by the server, so any text is safe in SQL; these
/// checks refuse names the server would change (truncation past 63 bytes) or
/// cannot carry (NUL).
pub(super) fn check_ident(what: &'static str, name: &str) -> PgDynResult<()> {
    let bad = |reason| {
        Err(PgDynError::InvalidIdentifier {
            what,
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return bad("it is longer than 63 bytes, which postgres would silently truncate");
    }
    if name.contains('\0') {
        return bad("it contains a NUL character");
    }
    Ok(())
}

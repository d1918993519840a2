//! The errors of declared state: reading the files, planning, applying and
//! the naming rules. None of them ever holds a secret value.

/// Errors of [`declarative`](super). Messages are lower-case and name the
/// file, line, secret path or record concerned; never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeclarativeError {
    /// A declaration file is wrong at this place.
    #[error("{source_name}:{line}:{column}: {message}")]
    Parse {
        /// The file (or `<string>`).
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong there.
        message: String,
    },

    /// A declaration file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's message.
        message: String,
    },

    /// A secret in a declaration file has a `value` key: values never go
    /// in these files.
    #[error(
        "{source_name}:{line}: secret {path:?} has a `value` key; secret values never go in declaration files (use `generate = {{ length = N }}`, or write the value with `strongroom put`)"
    )]
    ValueInFile {
        /// The file.
        source_name: String,
        /// 1-based line of the `value` key.
        line: usize,
        /// The secret's path.
        path: String,
    },

    /// Two files declare the same name.
    #[error("{kind} {name:?} is declared in both {first} and {second}")]
    Duplicate {
        /// `policy`, `principal`, `secret` or `naming rule`.
        kind: &'static str,
        /// The name declared twice.
        name: String,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },

    /// A principal names a policy that no file declares.
    #[error("principal {principal:?} names policy {policy:?}, which no file declares")]
    UnknownPolicy {
        /// The principal.
        principal: String,
        /// The missing policy.
        policy: String,
    },

    /// A write's path does not follow the applied naming rules.
    #[error(transparent)]
    Naming(#[from] NamingViolation),

    /// The store changed after the plan was made (the applied record or a
    /// secret's metadata the plan read): nothing was written. Plan again.
    #[error("the store changed since the plan was made ({what}); nothing was written: plan again")]
    StoreChangedSincePlan {
        /// What changed: `sys/declared` or a secret's path.
        what: String,
    },

    /// A saved plan was made from other declaration files than the ones
    /// given.
    #[error(
        "the plan was made from other declaration files (digest {plan} in the plan, {files} for the files given); nothing was written"
    )]
    PlanDoesNotMatchFiles {
        /// The digest recorded in the plan.
        plan: String,
        /// The digest of the files given.
        files: String,
    },

    /// A saved plan or the applied record cannot be read.
    #[error("{what} cannot be read: {reason}")]
    BadRecord {
        /// `plan` or `sys/declared`.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// The files declare `[dynamic.<name>]` but the program planning or
    /// applying them was given no [`Section`](super::Section) of that name.
    #[error(
        "the files declare [dynamic.{name}], which this program does not manage; nothing was written"
    )]
    UnknownSection {
        /// The section's name.
        name: String,
    },

    /// A `[dynamic.<name>]` section (or the record it keeps) does not check.
    #[error("[dynamic.{name}]: {reason}")]
    Section {
        /// The section's name.
        name: String,
        /// Why (never quoting a value).
        reason: String,
    },

    /// An error of the store.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// A path that follows none of the applied naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path:?} does not follow the naming rules: {reason}")]
pub struct NamingViolation {
    /// The path as given.
    pub path: String,
    /// Why, naming the rules (e.g. `rule "services" ({env}/{service}/{type}): env must be one of prod, staging`).
    pub reason: String,
}

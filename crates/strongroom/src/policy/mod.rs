//! Least-privilege path policies and the principals they bind to.
//!
//! A [`Policy`] is a named list of [`Rule`]s; each rule maps a path pattern
//! to a set of [`Capability`]s, or to `deny`. A [`Principal`] (a service
//! identity) holds the policies it was given, compiled once into a
//! [`PolicySet`], and every operation asks [`authorize`] first. Nothing is
//! allowed unless a rule allows it (default deny).
//!
//! The capabilities, as written in policy files: `read`, `create`,
//! `update`, `delete`, `list`, `rotate`, `lease`, `sudo` and `sign`
//! (signing with a [signing key](crate::signing), whose name is the path);
//! `deny` stands alone.
//!
//! # Patterns
//!
//! | pattern            | matches                                          | does not match              |
//! |--------------------|--------------------------------------------------|-----------------------------|
//! | `prod/app/db`      | exactly `prod/app/db`                            | `prod/app/db/x`             |
//! | `prod/app/*`       | every path below `prod/app`                      | `prod/app` itself           |
//! | `prod/app*`        | `prod/app`, `prod/apple`, `prod/app/x/y`         | `prod/ap`                   |
//! | `prod/+/db`        | `prod/<any one segment>/db`                      | `prod/db`, `prod/a/b/db`    |
//! | `+/app/*`          | `<any env>/app/<anything>`                       | `prod/other/x`              |
//! | `*`                | every path                                       |                             |
//!
//! `*` may appear only at the very end of a pattern and matches any run of
//! characters, `/` included (a string-prefix glob, as in Vault). `+` must be
//! a whole segment and matches exactly one segment. In a **deny** rule a
//! pattern ending in `/*` also covers the path it is the inside of:
//! `prod/app/admin/*` = deny denies `prod/app/admin` itself too, and
//! `prod/+/admin/*` = deny denies `prod/<any>/admin` (an allow rule
//! `prod/app/*` still does not match `prod/app`). Every other character
//! obeys the [path rules](crate::path): lower-case, no `.`/`..` segments, no
//! empty segments.
//!
//! # Precedence
//!
//! 1. **`deny` wins.** If *any* rule of any of the principal's policies that
//!    matches the path says `deny`, the request is denied, whatever else
//!    matches. A deny fences a subtree, including the path at its root (a
//!    deny on `x/*` covers `x`: a secret named like the folder it fences);
//!    it cannot be carved out by a more specific allow.
//! 2. **Otherwise the most specific matching rule decides alone**; its
//!    capabilities are the only ones granted (a more specific rule can narrow
//!    what a broader one granted). Rules with the *same* pattern in
//!    different policies of one principal are merged (their capabilities are
//!    united) before this step.
//! 3. **No matching rule: denied** (default deny).
//!
//! Specificity compares two patterns by these keys in order (the first that
//! differs decides), as Vault's priority matching does:
//!
//! 1. the position of the first wildcard (`+` or `*`): later is more
//!    specific, and a pattern without wildcards (exact) beats any with one;
//! 2. a pattern not ending in `*` beats one ending in `*`;
//! 3. fewer `+` segments beat more;
//! 4. a longer pattern beats a shorter one;
//! 5. finally the lexicographically larger pattern wins (a tie-break that
//!    makes the order total and deterministic: of `a/+/b/+` and `a/+/+/c`,
//!    both matching `a/x/b/c`, `a/+/b/+` wins because `b` sorts after `+`).
//!
//! Worked examples (each row is checked by a test in this module):
//!
//! | rules                                                     | request                   | result  | why                                    |
//! |-----------------------------------------------------------|---------------------------|---------|----------------------------------------|
//! | `prod/app/*` = read                                       | read `prod/app/db`        | allowed | glob matches                           |
//! | `prod/app/*` = read                                       | read `prod/app`           | denied  | `prod/app/*` needs a segment below     |
//! | `prod/app/*` = read                                       | update `prod/app/db`      | denied  | capability not granted                 |
//! | `prod/app/*` = read, `prod/app/db` = update               | read `prod/app/db`        | denied  | exact rule is more specific, narrows   |
//! | `prod/app/*` = read, `prod/app/db` = update               | update `prod/app/db`      | allowed | exact rule                             |
//! | `prod/*` = read, `prod/app/*` = list                      | read `prod/app/x`         | denied  | first wildcard later in `prod/app/*`   |
//! | `prod/+/db` = read, `prod/app/*` = list                   | read `prod/app/db`        | denied  | first wildcard later in `prod/app/*`   |
//! | `prod/+/db` = read, `+/app/*` = list                      | read `prod/app/db`        | allowed | first wildcard later in `prod/+/db`    |
//! | `prod/+/db` = read, `prod/+/*` = list                     | read `prod/app/db`        | allowed | not ending in `*` beats ending in `*`  |
//! | `+/+/db` = read, `+/app/db` = list                        | read `prod/app/db`        | denied  | first wildcard at same place, fewer `+`|
//! | `prod/*` = read, `prod/secret/*` = deny                   | read `prod/secret/k`      | denied  | deny wins                              |
//! | `prod/*` = deny, `prod/app/db` = read                     | read `prod/app/db`        | denied  | deny wins even over a more specific rule |
//! | `prod/app/*` = read, `prod/app/admin/*` = deny            | read `prod/app/admin`     | denied  | a deny on `x/*` covers `x`             |
//! | `prod/app/*` = read, `prod/+/admin/*` = deny              | read `prod/app/admin`     | denied  | the same with a `+`                    |
//! | `prod/*` = read                                           | read `staging/db`         | denied  | no rule matches: default deny          |
//! | policy A `prod/*` = read, policy B `prod/*` = update      | update `prod/x`           | allowed | same pattern merged across policies    |
//!
//! # Loading from TOML
//!
//! Policies live in version control as TOML, a Vault-HCL-like shape:
//!
//! ```toml
//! name = "payment-svc"
//! description = "what the payment service may touch"   # optional
//!
//! [[path]]
//! pattern = "prod/payment-svc/*"
//! capabilities = ["read", "list"]
//!
//! [[path]]
//! pattern = "prod/payment-svc/admin/*"
//! capabilities = ["deny"]
//! ```
//!
//! Any mistake (bad TOML, an unknown key, an unknown capability, an invalid
//! pattern, a pattern listed twice, `deny` mixed with other capabilities, an
//! empty list) is a [`PolicyError::Parse`] with the 1-based line and column
//! of the offending text.
//!
//! ```
//! use strongroom::path::SecretPath;
//! use strongroom::policy::{authorize, Capability, Policy, Principal};
//! let policy = Policy::from_toml_str(r#"
//!     name = "payment-svc"
//!     [[path]]
//!     pattern = "prod/payment-svc/*"
//!     capabilities = ["read", "list"]
//! "#)?;
//! let svc = Principal::new("payment-svc", [&policy]);
//! let db = SecretPath::parse("prod/payment-svc/postgres")?;
//! authorize(&svc, Capability::Read, &db)?;
//! assert!(authorize(&svc, Capability::Update, &db).is_err());
//! # Ok::<(), strongroom::Error>(())
//! ```
//!
//! # Cost
//!
//! Patterns are parsed once and indexed in a segment trie (literal segments
//! by binary search, `+` as a side branch, globs at the node of their last literal
//! segment). A check walks only the trie nodes the path's segments lead to,
//! each at most once, and ranks the matches by precomputed precedence: its
//! cost depends on the path's depth and the matching rules, not on the
//! number of rules. No allocation unless the request is denied (the error
//! carries owned names).
//!
//! # Reserved paths (`sys/...`)
//!
//! Secret paths never start with `sys` ([path rules](crate::path)); that
//! prefix names Strongroom's own objects, the [`SystemPath`]s:
//! `sys/keyring` (key administration, needs `sudo`; listing key versions
//! needs `read`) and `sys/audit` (reading and verifying the audit trail,
//! needs `read`). They are checked with [`Principal::authorize_system`], as
//! the [`authorized`](crate::authorized) handles do.
//!
//! A rule names them with a pattern whose **first segment is the literal
//! `sys`**: `sys/keyring`, `sys/+`, `sys/*` (the bare pattern `sys` is
//! refused: it names nothing). Only such rules take part in a check of a
//! reserved path, and they never match a secret path. So `*`, `+/...` and
//! every other pattern starting with a wildcard, allow or deny, leave the
//! reserved paths alone: granting `*` = `sudo` gives no key administration,
//! and key administration is granted only by a rule that says `sys/...`.
//! Among the `sys/...` rules the usual precedence applies (deny wins, then
//! the most specific rule).
//!
//! ```toml
//! name = "key-admin"
//! [[path]]
//! pattern = "sys/keyring"
//! capabilities = ["sudo", "read"]
//! ```
//!
//! # Files
//!
//! `capability` (capabilities and access), `pattern` (path patterns),
//! `document` (rules and policies, from code or TOML), `set` (the compiled
//! trie and its decisions), `principal` (principals, `sys/` paths,
//! [`authorize`] and the registry) and `error`.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::path::{self, MAX_PATH_BYTES, MAX_SEGMENTS, RESERVED_PREFIX, SecretPath};

mod capability;
mod document;
mod error;
mod pattern;
mod principal;
mod set;
#[cfg(test)]
mod tests;

pub use capability::{Access, Capabilities, Capability};
pub use document::{MAX_POLICY_FILE_LEN, Policy, Rule};
pub use error::PolicyError;
pub use pattern::PathPattern;
pub use principal::{PolicyRegistry, Principal, SystemPath, authorize};
pub use set::{Decision, PolicySet};

use pattern::Seg;
use set::Matches;

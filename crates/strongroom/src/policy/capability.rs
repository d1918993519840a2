//! Capabilities, sets of them, and the access a decision grants.

use super::*;

/// Something a principal may do to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Capability {
    /// Read a secret's value or metadata.
    Read,
    /// Write a secret that does not exist yet.
    Create,
    /// Write a new version of an existing secret, or change its metadata.
    Update,
    /// Delete, undelete or destroy versions.
    Delete,
    /// List paths below a prefix.
    List,
    /// Rotate a secret or credential.
    Rotate,
    /// Obtain a lease (dynamic credentials).
    Lease,
    /// Privileged operations (keyring rotation, policy changes).
    Sudo,
    /// Sign with a signing key ([`crate::signing`]); the key's name is the
    /// path.
    Sign,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 9] = [
        Capability::Read,
        Capability::Create,
        Capability::Update,
        Capability::Delete,
        Capability::List,
        Capability::Rotate,
        Capability::Lease,
        Capability::Sudo,
        Capability::Sign,
    ];

    /// The lower-case name used in policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Rotate => "rotate",
            Self::Lease => "lease",
            Self::Sudo => "sudo",
            Self::Sign => "sign",
        }
    }

    pub(super) const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| PolicyError::UnknownCapability(s.to_owned()))
    }
}

/// A set of capabilities (a bit set; copying is free).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub(super) u16);

impl Capabilities {
    /// The empty set.
    pub const NONE: Self = Self(0);

    /// Whether `c` is in the set.
    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// The set with `c` added.
    #[must_use]
    pub const fn with(self, c: Capability) -> Self {
        Self(self.0 | c.bit())
    }

    /// The union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter().fold(Self::NONE, Self::with)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What a rule grants: some capabilities, or a deny that overrides all else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Grants these capabilities (when this is the most specific match).
    Allow(Capabilities),
    /// Denies everything on matching paths, whatever other rules say (for
    /// a pattern ending in `/*`, also on the path it is the inside of).
    Deny,
}

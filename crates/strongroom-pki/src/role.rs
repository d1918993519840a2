//! Roles: which certificates a mount may issue.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{PkiError, Result};

/// The key types the CA generates. RSA is not offered: `rcgen` generates
/// RSA keys only with the `aws-lc-rs` backend, and this crate uses `ring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyType {
    /// Ed25519 (RFC 8410).
    Ed25519,
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
}

impl KeyType {
    pub(crate) fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }

    /// A fresh key pair of this type, generated inside the process.
    pub(crate) fn generate(self) -> Result<rcgen::KeyPair> {
        rcgen::KeyPair::generate_for(self.algorithm()).map_err(PkiError::cert)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
        })
    }
}

/// What a certificate may authenticate (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "server",
            Self::Client => "client",
        })
    }
}

/// Which certificates a role issues.
///
/// Names: each entry of [`Role::allowed_names`] is an exact DNS name
/// (`api.example.com`) or a one-label pattern (`*.example.com` allows
/// `a.example.com`, not `example.com` nor `a.b.example.com`). `localhost`
/// is allowed only with [`Role::allow_localhost`], IP address SANs only
/// with [`Role::allow_ip_sans`], and a requested wildcard name
/// (`*.example.com` itself) only with [`Role::allow_wildcard_certificates`]
/// and a pattern that covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Role {
    /// Exact names and `*.domain` patterns.
    pub allowed_names: Vec<String>,
    /// Whether `localhost` may be requested.
    pub allow_localhost: bool,
    /// Whether IP address SANs may be requested.
    pub allow_ip_sans: bool,
    /// Whether a wildcard name (`*.example.com`) may be requested.
    pub allow_wildcard_certificates: bool,
    /// Key types that may be requested; the first is the default.
    pub key_types: Vec<KeyType>,
    /// Usages that may be requested; a request that names none gets all.
    pub usages: Vec<Usage>,
    /// The TTL of a request that names none.
    #[serde(with = "duration_secs")]
    pub ttl: Duration,
    /// The longest TTL a request may ask for.
    #[serde(with = "duration_secs")]
    pub max_ttl: Duration,
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl Role {
    /// A role for `allowed_names`, server and client usage, Ed25519 and
    /// ECDSA P-256 (Ed25519 by default), no localhost, no IP SANs, no
    /// wildcard certificates, TTL one hour, max 24 hours.
    pub fn new<S: Into<String>>(allowed_names: impl IntoIterator<Item = S>) -> Self {
        Self {
            allowed_names: allowed_names.into_iter().map(Into::into).collect(),
            allow_localhost: false,
            allow_ip_sans: false,
            allow_wildcard_certificates: false,
            key_types: vec![KeyType::Ed25519, KeyType::EcdsaP256],
            usages: vec![Usage::Server, Usage::Client],
            ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Allows `localhost` or not.
    #[must_use]
    pub fn allow_localhost(mut self, allow: bool) -> Self {
        self.allow_localhost = allow;
        self
    }

    /// Allows IP address SANs or not.
    #[must_use]
    pub fn allow_ip_sans(mut self, allow: bool) -> Self {
        self.allow_ip_sans = allow;
        self
    }

    /// Allows wildcard names or not.
    #[must_use]
    pub fn allow_wildcard_certificates(mut self, allow: bool) -> Self {
        self.allow_wildcard_certificates = allow;
        self
    }

    /// The key types allowed (the first is the default).
    #[must_use]
    pub fn key_types(mut self, key_types: impl IntoIterator<Item = KeyType>) -> Self {
        self.key_types = key_types.into_iter().collect();
        self
    }

    /// The usages allowed.
    #[must_use]
    pub fn usages(mut self, usages: impl IntoIterator<Item = Usage>) -> Self {
        self.usages = usages.into_iter().collect();
        self
    }

    /// The default and the maximum TTL (whole seconds are kept).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration, max_ttl: Duration) -> Self {
        self.ttl = ttl;
        self.max_ttl = max_ttl;
        self
    }

    /// Checks the definition itself.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(PkiError::InvalidRole { reason });
        if self.key_types.is_empty() {
            return bad("allow at least one key type".into());
        }
        if self.usages.is_empty() {
            return bad("allow at least one usage (server, client)".into());
        }
        if self.ttl.as_secs() == 0 || self.max_ttl.as_secs() == 0 {
            return bad("ttl and max_ttl must be at least one second".into());
        }
        if self.ttl > self.max_ttl {
            return bad(format!(
                "ttl {:?} is over max_ttl {:?}",
                self.ttl, self.max_ttl
            ));
        }
        for pattern in &self.allowed_names {
            let name = pattern.strip_prefix("*.").unwrap_or(pattern);
            if !is_dns_name(name) {
                return bad(format!(
                    "allowed name {pattern:?} is not a lower-case DNS name or a *.domain pattern"
                ));
            }
        }
        Ok(())
    }

    /// Checks a requested DNS name against the role (`role` names it in
    /// errors).
    pub(crate) fn check_dns_name(&self, role: &str, name: &str) -> Result<()> {
        let refuse = |reason| {
            Err(PkiError::NameNotAllowed {
                role: role.to_owned(),
                name: name.to_owned(),
                reason,
            })
        };
        if name == "localhost" {
            return if self.allow_localhost {
                Ok(())
            } else {
                refuse("localhost is not allowed")
            };
        }
        if let Some(rest) = name.strip_prefix("*.") {
            if !self.allow_wildcard_certificates {
                return refuse("wildcard certificates are not allowed");
            }
            if !is_dns_name(rest) {
                return refuse("not a lower-case DNS name");
            }
            // Only an identical pattern covers a wildcard name.
            return if self.allowed_names.iter().any(|p| p == name) {
                Ok(())
            } else {
                refuse("no allowed pattern covers it")
            };
        }
        if !is_dns_name(name) {
            return refuse("not a lower-case DNS name");
        }
        let covered = self
            .allowed_names
            .iter()
            .any(|p| match p.strip_prefix("*.") {
                // one label, then exactly the domain
                Some(domain) => name
                    .strip_suffix(domain)
                    .and_then(|head| head.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.')),
                None => p == name,
            });
        if covered {
            Ok(())
        } else {
            refuse("no allowed name or pattern covers it")
        }
    }

    /// Checks a requested IP address SAN.
    pub(crate) fn check_ip(&self, role: &str, ip: IpAddr) -> Result<()> {
        if self.allow_ip_sans {
            Ok(())
        } else {
            Err(PkiError::NameNotAllowed {
                role: role.to_owned(),
                name: ip.to_string(),
                reason: "IP address SANs are not allowed",
            })
        }
    }
}

/// Whether `name` is a lower-case DNS name: labels of 1 to 63 of
/// `a-z0-9-` not starting or ending with `-`, at most 253 bytes.
pub(crate) fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        })
}

/// Checks a mount or role name: 1 to 64 of `a-z0-9-_`.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
    {
        return Err(PkiError::InvalidName {
            what,
            name: name.chars().take(64).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Role {
        Role::new(["api.example.com", "*.svc.example.com"])
    }

    #[test]
    fn exact_names_and_one_label_patterns() {
        let r = role();
        assert!(r.check_dns_name("r", "api.example.com").is_ok());
        assert!(r.check_dns_name("r", "a.svc.example.com").is_ok());
        for bad in [
            "svc.example.com",
            "a.b.svc.example.com",
            "www.example.com",
            "xsvc.example.com",
            "API.example.com",
            "localhost",
            "*.svc.example.com",
            "a..svc.example.com",
        ] {
            let e = r.check_dns_name("r", bad).unwrap_err();
            assert_eq!(e.kind(), "pki_name_not_allowed", "{bad}");
        }
    }

    #[test]
    fn localhost_ips_and_wildcards_need_their_flags() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(role().check_ip("r", ip).is_err());
        let open = role()
            .allow_localhost(true)
            .allow_ip_sans(true)
            .allow_wildcard_certificates(true);
        assert!(open.check_dns_name("r", "localhost").is_ok());
        assert!(open.check_ip("r", ip).is_ok());
        assert!(open.check_dns_name("r", "*.svc.example.com").is_ok());
        assert!(open.check_dns_name("r", "*.example.com").is_err());
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(role().validate().is_ok());
        let h = Duration::from_secs(3600);
        assert!(role().ttl(2 * h, h).validate().is_err());
        assert!(role().key_types([]).validate().is_err());
        assert!(role().usages([]).validate().is_err());
        assert!(Role::new(["Bad.Example"]).validate().is_err());
        assert!(Role::new(["*.*.example.com"]).validate().is_err());
        assert!(check_name("role", "web-1").is_ok());
        assert!(check_name("role", "Web").is_err());
        assert!(check_name("role", "").is_err());
        assert!(check_name("role", "a/b").is_err());
    }
}

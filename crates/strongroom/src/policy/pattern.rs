//! Path patterns: parsing, matching and how specific a pattern is.

use super::*;

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    /// Must equal this text.
    Lit(Box<str>),
    /// `+`: any one segment.
    Any,
    /// The last segment of a `*` pattern: any segment starting with this
    /// text, followed by anything.
    Prefix(Box<str>),
}

/// A compiled path pattern (see the [module docs](super) for the syntax).
#[derive(Clone)]
pub struct PathPattern {
    pub(super) text: Box<str>,
    pub(super) segs: Box<[Seg]>,
    /// Bytes of `text` before the first wildcard: every matching path starts
    /// with them, which rejects most non-matches with one comparison.
    pub(super) literal_len: usize,
    pub(super) plus: usize,
    pub(super) glob: bool,
}

/// The specificity of a pattern: larger is more specific (see the module
/// docs for the order).
pub(super) type Specificity<'a> = (usize, bool, Reverse<usize>, usize, &'a str);

impl PathPattern {
    /// Parses a pattern.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::compile(text).map_err(|reason| PolicyError::InvalidPattern {
            pattern: path::shown(text),
            reason,
        })
    }

    pub(super) fn compile(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the pattern is empty".into());
        }
        if text.len() > MAX_PATH_BYTES + 1 {
            return Err(format!("longer than {} bytes", MAX_PATH_BYTES + 1));
        }
        let (body, glob) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.contains('*') {
            return Err("'*' is allowed only at the end of a pattern".into());
        }
        path::check_chars(body, &['+']).map_err(|e| e.to_string())?;
        let pieces: Vec<&str> = body.split('/').collect();
        if pieces.len() > MAX_SEGMENTS {
            return Err(format!("more than {MAX_SEGMENTS} segments"));
        }
        let last = pieces.len() - 1;
        let mut segs = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            if glob && i == last {
                if piece.contains('+') {
                    return Err("'+' must be a whole segment ('+*' is not allowed)".into());
                }
                segs.push(Seg::Prefix((*piece).into()));
                continue;
            }
            if piece.is_empty() {
                return Err("empty segment (double, leading or trailing '/')".into());
            }
            if *piece == "." || *piece == ".." {
                return Err("'.' and '..' segments are not allowed".into());
            }
            if *piece == "+" {
                segs.push(Seg::Any);
            } else if piece.contains('+') {
                return Err("'+' must be a whole segment".into());
            } else {
                segs.push(Seg::Lit((*piece).into()));
            }
        }
        // `sys/...` patterns name reserved paths only (see "Reserved paths").
        if matches!(&segs[..], [Seg::Lit(l)] if &**l == RESERVED_PREFIX) {
            return Err(
                "the bare 'sys' prefix names nothing; name a reserved path such as 'sys/keyring'"
                    .into(),
            );
        }
        let literal_len = text.find(['+', '*']).unwrap_or(text.len());
        let plus = segs.iter().filter(|s| matches!(s, Seg::Any)).count();
        Ok(Self {
            text: text.into(),
            segs: segs.into_boxed_slice(),
            literal_len,
            plus,
            glob,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` matches. Allocates nothing.
    pub fn matches(&self, path: &SecretPath) -> bool {
        let s = path.as_str();
        if !s
            .as_bytes()
            .starts_with(self.text.as_bytes().get(..self.literal_len).unwrap_or(&[]))
        {
            return false;
        }
        let mut parts = s.split('/');
        for seg in self.segs.iter() {
            let Some(part) = parts.next() else {
                return false;
            };
            match seg {
                Seg::Lit(l) => {
                    if part != &**l {
                        return false;
                    }
                }
                Seg::Any => {}
                Seg::Prefix(p) => return part.starts_with(&**p),
            }
        }
        parts.next().is_none()
    }

    /// Whether a deny rule with this pattern covers `path`: every path it
    /// matches and, for a pattern ending in `/*`, the path it is the inside
    /// of (`prod/app/*` covers `prod/app`; see the [module docs](super)).
    /// Allocates nothing.
    pub fn denies(&self, path: &SecretPath) -> bool {
        if self.matches(path) {
            return true;
        }
        let Some((Seg::Prefix(last), parent)) = self.segs.split_last() else {
            return false;
        };
        if !last.is_empty() || parent.is_empty() {
            return false;
        }
        let mut parts = path.as_str().split('/');
        parent.iter().all(|seg| match (seg, parts.next()) {
            (Seg::Lit(l), Some(part)) => part == &**l,
            (Seg::Any, Some(_)) => true,
            _ => false,
        }) && parts.next().is_none()
    }

    /// Whether the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        self.literal_len == self.text.len()
    }

    pub(super) fn specificity(&self) -> Specificity<'_> {
        let first_wildcard = if self.is_exact() {
            usize::MAX
        } else {
            self.literal_len
        };
        (
            first_wildcard,
            !self.glob,
            Reverse(self.plus),
            self.text.len(),
            &self.text,
        )
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.text)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for PathPattern {}

impl FromStr for PathPattern {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        Self::parse(s)
    }
}

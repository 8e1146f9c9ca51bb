use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::Digest;

// The distribution spec's own expressions, anchored. Names have no depth limit: any number
// of path components is allowed, which the spec permits and nested org namespaces need.
static NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$").expect("valid regex"));
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex"));

/// Longest name we accept: a URL path plus a hostname must stay within common HTTP limits.
const MAX_NAME_LEN: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid repository name {0:?}")]
    Repository(String),
    #[error("invalid tag {0:?}")]
    Tag(String),
    #[error("invalid reference {0:?}: neither a tag nor a digest")]
    Reference(String),
}

/// A repository name such as `acme/tools/builder`. Validated, so it never contains `..`,
/// percent-escapes, a leading slash or upper case, and is safe inside storage keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.len() <= MAX_NAME_LEN && NAME_RE.is_match(s) { Ok(RepoName(s.to_owned())) } else { Err(NameError::Repository(s.to_owned())) }
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if TAG_RE.is_match(s) { Ok(Tag(s.to_owned())) } else { Err(NameError::Tag(s.to_owned())) }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `<reference>` of `/v2/<name>/manifests/<reference>`: a digest if it contains a
/// colon (tags cannot), otherwise a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            s.parse().map(Reference::Digest).map_err(|_| NameError::Reference(s.to_owned()))
        } else {
            s.parse().map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_any_depth() {
        for ok in ["a", "library/ubuntu", "a/b/c/d/e/f/g/h", "my-org/my_app.v2", "x__y/z--w"] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_traversal_and_escapes() {
        for bad in ["", "..", "a/../b", "/abs", "a/", "A", "a//b", "%2e%2e", "a/%2e%2e/b", "a/./b", "-a", "a_", "a:b"] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} should be refused");
        }
        assert!("a".repeat(256).parse::<RepoName>().is_err());
    }

    #[test]
    fn tags_and_references() {
        assert!("v1.0.0-rc_1".parse::<Tag>().is_ok());
        assert!(".hidden".parse::<Tag>().is_err());
        assert!("x".repeat(129).parse::<Tag>().is_err());
        assert!(matches!("latest".parse::<Reference>(), Ok(Reference::Tag(_))));
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(digest.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!("sha256:nothex".parse::<Reference>().is_err());
    }
}

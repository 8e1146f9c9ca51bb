//! Parsing of `/v2/...` paths. Names may contain any number of components (and may even
//! contain a component called `blobs` or `manifests`), so routes are recognised by their
//! fixed suffix and the name is everything before it.

use slipway_oci::RepoName;

#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Base,
    Catalog,
    Tags { name: &'a str },
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Referrers { name: &'a str, digest: &'a str },
}

impl<'a> Route<'a> {
    /// Parses the path after `/v2/` (no leading slash). `None` for no known route.
    pub fn parse(rest: &'a str) -> Option<Route<'a>> {
        if rest.is_empty() {
            return Some(Route::Base);
        }
        if rest == "_catalog" {
            return Some(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Route::Tags { name });
        }
        if let Some(name) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
            return Some(Route::UploadStart { name });
        }
        let (head, last) = rest.rsplit_once('/')?;
        let (name, kind) = head.rsplit_once('/')?;
        match kind {
            "manifests" => Some(Route::Manifest { name, reference: last }),
            "blobs" => Some(Route::Blob { name, digest: last }),
            "referrers" => Some(Route::Referrers { name, digest: last }),
            "uploads" => name.strip_suffix("/blobs").map(|name| Route::Upload { name, id: last }),
            _ => None,
        }
    }

    pub fn name(&self) -> Option<&'a str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }

    /// A low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags { .. } => "tags",
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::UploadStart { .. } | Route::Upload { .. } => "upload",
            Route::Referrers { .. } => "referrers",
        }
    }
}

/// Validates a name taken from a route.
pub fn repo_name(name: &str) -> Option<RepoName> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix_with_deep_names() {
        assert_eq!(Route::parse(""), Some(Route::Base));
        assert_eq!(Route::parse("_catalog"), Some(Route::Catalog));
        assert_eq!(Route::parse("a/b/c/tags/list"), Some(Route::Tags { name: "a/b/c" }));
        assert_eq!(Route::parse("a/blobs/b/manifests/latest"), Some(Route::Manifest { name: "a/blobs/b", reference: "latest" }));
        assert_eq!(Route::parse("x/blobs/sha256:ab"), Some(Route::Blob { name: "x", digest: "sha256:ab" }));
        assert_eq!(Route::parse("x/y/blobs/uploads/"), Some(Route::UploadStart { name: "x/y" }));
        assert_eq!(Route::parse("x/y/blobs/uploads"), Some(Route::UploadStart { name: "x/y" }));
        assert_eq!(Route::parse("x/blobs/uploads/123"), Some(Route::Upload { name: "x", id: "123" }));
        assert_eq!(Route::parse("x/referrers/sha256:ab"), Some(Route::Referrers { name: "x", digest: "sha256:ab" }));
        assert_eq!(Route::parse("x/uploads/123"), None);
        assert_eq!(Route::parse("nothing"), None);
    }
}

//! Image platforms, as an index's entries and an image's config name them (the registry
//! keeps no platforms: the store shows them, and the scanner scans each platform image).

use serde::Deserialize;

/// `os`, `architecture` and `variant` as an index entry's `platform` or an image config
/// carries them (other fields are ignored).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/architecture[/variant]`, or `None` for entries that are not runnable images
    /// (build attestations are `unknown/unknown`).
    pub fn label(&self) -> Option<String> {
        if self.os.is_empty() || self.os == "unknown" || self.architecture.is_empty() {
            return None;
        }
        Some(match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(variant) => format!("{}/{}/{variant}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        })
    }
}

#[derive(Deserialize)]
struct IndexEntries {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

/// The runnable platform images of an index: (digest, platform label) for each entry that
/// names a platform; none for anything that is not an index.
pub fn platform_images(index: &[u8]) -> Vec<(String, String)> {
    serde_json::from_slice::<IndexEntries>(index)
        .map(|entries| entries.manifests.into_iter().filter_map(|entry| Some((entry.digest, entry.platform?.label()?))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runnable_platforms_of_an_index() {
        let index = br#"{"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
            {"digest": "sha256:d"}]}"#;
        assert_eq!(
            platform_images(index),
            [("sha256:a".to_owned(), "linux/arm64/v8".to_owned()), ("sha256:b".to_owned(), "linux/amd64".to_owned())]
        );
        assert!(platform_images(b"not json").is_empty());
    }
}

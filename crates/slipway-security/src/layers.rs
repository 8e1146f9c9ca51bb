//! What the publisher's security pages show of a repository beyond its scans: its tags
//! with each platform image's size and OS, and an image's layers, each with its
//! compressed size and the build step that made it (the image config's history).

use serde::{Deserialize, Serialize};
use slipway_auth::access::Subject;
use slipway_oci::ParsedManifest;
use slipway_oci::{Platform, media_type, platform_images};
use slipway_policy::Action;
use utoipa::ToSchema;

use crate::results::{ClassCounts, check, repository_name};
use crate::{Scanning, ScanningError};

/// An image config is a few kilobytes; one over this is not read (its layers are still
/// listed, without their build steps).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// A build step longer than this (a long `RUN` line) is cut.
const MAX_COMMAND_CHARS: usize = 4_000;
/// Tags listed on a repository's page, the most recently pushed first.
pub const MAX_TAGS: usize = 500;
/// Repositories listed on a publisher's security page, by name.
pub const MAX_REPOSITORIES: usize = 1_000;

/// A layer of an image, in order from the base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct LayerEntry {
    pub digest: String,
    /// Compressed, as pushed.
    pub size: u64,
    pub media_type: String,
    /// The build step that made it (`created_by` of the config's history), when the image
    /// records one.
    pub created_by: Option<String>,
}

/// A tag of a repository and the image of each of its platforms.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaggedVersion {
    pub tag: String,
    pub digest: String,
    /// Unix milliseconds of the push that set the tag.
    pub pushed_at: i64,
    pub images: Vec<PlatformImage>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PlatformImage {
    pub digest: String,
    /// `os/architecture[/variant]`, from the index or the image's config.
    pub platform: Option<String>,
    /// The distribution the scan found (`Debian GNU/Linux 12 (bookworm)`).
    pub os: Option<String>,
    /// The compressed size of its layers.
    pub size: u64,
    /// Findings per class; absent until scanned.
    pub counts: Option<ClassCounts>,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    history: Vec<HistoryEntry>,
    #[serde(flatten)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct HistoryEntry {
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    empty_layer: bool,
}

impl Scanning {
    /// A repository's tags, the most recently pushed first (at most [`MAX_TAGS`]), each
    /// with its platform images: for the repository's members and staff, not found to
    /// anyone else.
    pub async fn tagged_versions(&self, subject: Option<&Subject>, repository: &str) -> Result<Vec<TaggedVersion>, ScanningError> {
        let not_found = || ScanningError::NotFound(format!("no repository {repository}"));
        check(subject, Action::ReadScans, repository, not_found)?;
        repository_name(repository)?;
        let mut out = Vec::new();
        for (tag, digest, media, content, pushed_at) in self.images.recent_tags(repository, MAX_TAGS as i64).await? {
            let targets: Vec<(String, Option<String>)> = if media_type::is_index(&media) {
                platform_images(&content).into_iter().map(|(d, p)| (d, Some(p))).collect()
            } else {
                vec![(digest.clone(), None)]
            };
            let mut images = Vec::with_capacity(targets.len());
            for (image, platform) in targets {
                let Some(record) = self.images.manifest_by_digest(repository, &image).await? else { continue };
                let Ok(manifest) = ParsedManifest::parse(&record.content, Some(&record.media_type)) else { continue };
                let platform = match platform {
                    Some(p) => Some(p),
                    None => self.config(&manifest).await?.platform.and_then(|p| p.label()),
                };
                let scan = self.db.image_scan(&image).await?;
                images.push(PlatformImage {
                    size: manifest.layers.iter().map(|l| l.size).sum(),
                    os: scan.as_ref().and_then(|s| s.os.clone()),
                    counts: scan.as_ref().filter(|s| s.status == "done").map(ClassCounts::of),
                    digest: image,
                    platform,
                });
            }
            out.push(TaggedVersion { tag, digest, pushed_at, images });
        }
        Ok(out)
    }

    /// The repositories of namespace `org` (at most [`MAX_REPOSITORIES`]) whose scans
    /// the subject may read: its members' and staff's, none for anyone else.
    pub async fn repositories_of(&self, subject: Option<&Subject>, org: &str) -> Result<Vec<String>, ScanningError> {
        let all = self.images.repositories_in(org, MAX_REPOSITORIES as i64).await?;
        Ok(all.into_iter().filter(|r| check(subject, Action::ReadScans, r, || ScanningError::NotFound(String::new())).is_ok()).collect())
    }

    /// The layers of an image manifest of `repository`, from the base, each with the build
    /// step that made it; empty for an index or what does not parse.
    pub(crate) async fn layers(&self, repository: &str, digest: &str) -> Result<Vec<LayerEntry>, ScanningError> {
        let Some(record) = self.images.manifest_by_digest(repository, digest).await? else { return Ok(Vec::new()) };
        let Ok(manifest) = ParsedManifest::parse(&record.content, Some(&record.media_type)) else { return Ok(Vec::new()) };
        let config = self.config(&manifest).await?;
        // History entries marked empty (ENV, CMD...) made no layer; the others made the
        // layers in order.
        let mut steps = config.history.into_iter().filter(|h| !h.empty_layer).map(|h| h.created_by);
        Ok(manifest
            .layers
            .into_iter()
            .map(|layer| LayerEntry {
                digest: layer.digest.to_string(),
                size: layer.size,
                media_type: layer.media_type,
                created_by: steps.next().flatten().map(|c| clip(&c)),
            })
            .collect())
    }

    /// An image's config, or an empty one when it is missing, too large or unreadable.
    async fn config(&self, manifest: &ParsedManifest) -> Result<Config, ScanningError> {
        let Some(config) = manifest.config.as_ref().filter(|c| c.size <= MAX_CONFIG_BYTES) else { return Ok(Config::default()) };
        let Some(read) = self.store.read(&config.digest, None).await? else { return Ok(Config::default()) };
        if read.len() > MAX_CONFIG_BYTES {
            return Ok(Config::default());
        }
        Ok(serde_json::from_slice(&read.into_bytes().await?).unwrap_or_default())
    }
}

/// A build step as the page shows it: Docker's `/bin/sh -c #(nop) ` prefix dropped, cut
/// at [`MAX_COMMAND_CHARS`].
fn clip(command: &str) -> String {
    let command = command.strip_prefix("/bin/sh -c #(nop) ").unwrap_or(command).trim();
    match command.char_indices().nth(MAX_COMMAND_CHARS) {
        Some((cut, _)) => format!("{}…", &command[..cut]),
        None => command.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_steps_are_shown_plainly_and_cut() {
        assert_eq!(clip("/bin/sh -c #(nop)  CMD [\"sh\"]"), "CMD [\"sh\"]");
        assert_eq!(clip("RUN /bin/sh -c apt-get update # buildkit"), "RUN /bin/sh -c apt-get update # buildkit");
        let long = "é".repeat(MAX_COMMAND_CHARS + 5);
        assert_eq!(clip(&long).chars().count(), MAX_COMMAND_CHARS + 1);
    }

    #[test]
    fn history_without_a_platform_or_steps_parses() {
        let config: Config = serde_json::from_str(r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#).unwrap();
        assert!(config.history.is_empty());
        assert_eq!(config.platform.and_then(|p| p.label()).as_deref(), Some("linux/arm64/v8"));
    }
}

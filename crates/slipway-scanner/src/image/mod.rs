//! Images to scan, and where their layers come from.
//!
//! An [`Image`] is what the scanner needs to know before reading a byte of a layer: its
//! ordered layers with their digests, and what identifies it. An [`ImageSource`] opens
//! each layer as a stream. This module reads two sources from the local filesystem:
//! OCI image layouts ([`OciLayout`]) and `docker save` archives ([`DockerArchive`]);
//! registries are read by the caller, which implements [`ImageSource`] over its client.

mod docker;
mod oci;

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use serde::Deserialize;
use slipway_oci::Digest;

use crate::ScanError;
use crate::analyzer::Compression;
pub use docker::DockerArchive;
pub use oci::OciLayout;

/// What the scanner knows of an image before reading its layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The reference scanned, as the user gave it.
    pub name: String,
    /// The digest of the image manifest; `None` for a `docker save` archive, which
    /// keeps no manifest.
    pub digest: Option<Digest>,
    /// The digest of the image configuration: the image ID that Docker shows.
    pub config_digest: Option<Digest>,
    /// The platform the configuration declares.
    pub platform: Option<Platform>,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
}

/// One layer blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The digest of the blob's bytes as the source serves them; verified while they are
    /// read.
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

impl Layer {
    /// How the blob is compressed, from its media type (sniffed when it has none).
    pub fn compression(&self) -> Compression {
        self.media_type.as_deref().map_or(Compression::Auto, Compression::from_media_type)
    }
}

/// Where an image's layers are read from.
pub trait ImageSource: Sync {
    fn image(&self) -> &Image;

    /// Opens layer `index` of [`ImageSource::image`] as a stream of its blob's bytes.
    /// Layers may be opened concurrently from several threads.
    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ScanError>;
}

/// An OS, architecture and optional variant, as `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the running machine, named as OCI names them (Go's names).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform { os: "linux".to_owned(), architecture: architecture.to_owned(), variant: None }
    }

    /// Whether an image of platform `offered` runs here. A variant left out on either
    /// side matches any variant.
    pub fn accepts(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && (self.variant.is_none() || offered.variant.is_none() || self.variant == offered.variant)
    }
}

impl FromStr for Platform {
    type Err = ScanError;

    fn from_str(text: &str) -> Result<Platform, ScanError> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts[..] {
            [os, architecture] | [os, architecture, _] if !os.is_empty() && !architecture.is_empty() => Ok(Platform {
                os: os.to_owned(),
                architecture: architecture.to_owned(),
                variant: parts.get(2).filter(|v| !v.is_empty()).map(|v| (*v).to_owned()),
            }),
            _ => Err(ScanError::InvalidImage(format!("platform {text:?} is not OS/ARCHITECTURE[/VARIANT]"))),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An index or manifest list: the manifests it points to.
#[derive(Debug, Deserialize)]
pub struct IndexDocument {
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
}

#[derive(Debug, Deserialize)]
pub struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub platform: Option<PlatformDocument>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct PlatformDocument {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl From<&PlatformDocument> for Platform {
    fn from(doc: &PlatformDocument) -> Platform {
        Platform { os: doc.os.clone(), architecture: doc.architecture.clone(), variant: doc.variant.clone().filter(|v| !v.is_empty()) }
    }
}

/// An image manifest (OCI or Docker schema 2): its config and layers.
#[derive(Debug, Deserialize)]
pub struct ManifestDocument {
    #[serde(rename = "schemaVersion")]
    pub schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Option<DescriptorDocument>,
    #[serde(default)]
    pub layers: Vec<DescriptorDocument>,
    /// Present when the document is an index rather than an image manifest.
    pub manifests: Option<Vec<IndexEntry>>,
}

#[derive(Debug, Deserialize)]
pub struct DescriptorDocument {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: Option<u64>,
}

/// The parts of an image configuration the scanner reads.
#[derive(Debug, Default, Deserialize)]
pub struct ConfigDocument {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ConfigDocument {
    pub fn platform(&self) -> Option<Platform> {
        Some(Platform {
            os: self.os.clone()?,
            architecture: self.architecture.clone()?,
            variant: self.variant.clone().filter(|v| !v.is_empty()),
        })
    }
}

/// Whether a manifest document is an index (OCI index or Docker manifest list).
pub fn is_index(document: &ManifestDocument) -> bool {
    document.manifests.is_some() || document.media_type.as_deref().is_some_and(slipway_oci::media_type::is_index)
}

/// Picks the manifest for `wanted` from an index: platform entries that are not images
/// (attestations use `unknown/unknown`) are ignored. Without a wanted platform, the host's
/// is preferred, then linux/amd64.
pub fn select_platform<'i>(entries: &'i [IndexEntry], wanted: Option<&Platform>) -> Result<&'i IndexEntry, ScanError> {
    let candidates: Vec<(&IndexEntry, Platform)> = entries
        .iter()
        .filter_map(|entry| Some((entry, Platform::from(entry.platform.as_ref()?))))
        .filter(|(_, platform)| platform.os != "unknown")
        .collect();
    let preferences: Vec<Platform> = match wanted {
        Some(platform) => vec![platform.clone()],
        None => vec![Platform::host(), "linux/amd64".parse()?],
    };
    for preference in &preferences {
        if let Some((entry, _)) = candidates.iter().find(|(_, p)| preference.accepts(p)) {
            return Ok(entry);
        }
    }
    let offered: Vec<String> = candidates.iter().map(|(_, p)| p.to_string()).collect();
    Err(ScanError::InvalidImage(format!(
        "no manifest for platform {} in the index (it has {}); choose one with --platform",
        preferences[0],
        if offered.is_empty() { "none".to_owned() } else { offered.join(", ") }
    )))
}

/// Parses a digest named by a document.
pub fn parse_digest(text: &str) -> Result<Digest, ScanError> {
    text.parse().map_err(|e| ScanError::InvalidImage(format!("{e}")))
}

/// Checks that `bytes` hash to `expected`.
pub fn verify(expected: &Digest, bytes: &[u8]) -> Result<(), ScanError> {
    let actual = Digest::of(expected.algorithm(), bytes);
    if &actual == expected { Ok(()) } else { Err(ScanError::DigestMismatch { expected: expected.to_string(), actual: actual.to_string() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(platform: &str) -> IndexEntry {
        let platform: Platform = platform.parse().unwrap();
        IndexEntry {
            media_type: None,
            digest: format!("for {platform}"),
            platform: Some(PlatformDocument { os: platform.os, architecture: platform.architecture, variant: platform.variant }),
            annotations: Default::default(),
        }
    }

    #[test]
    fn platforms_parse_and_match() {
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert!(arm.accepts(&"linux/arm64".parse().unwrap()));
        assert!(!arm.accepts(&"linux/arm64/v9".parse().unwrap()));
        assert!("linux".parse::<Platform>().is_err());
        assert!("/amd64".parse::<Platform>().is_err());
    }

    #[test]
    fn index_entries_are_chosen_by_platform() {
        let entries = [entry("unknown/unknown"), entry("linux/arm/v7"), entry("linux/amd64")];
        let arm = select_platform(&entries, Some(&"linux/arm/v7".parse().unwrap())).unwrap();
        assert_eq!(arm.digest, "for linux/arm/v7");
        let error = select_platform(&entries, Some(&"linux/s390x".parse().unwrap())).unwrap_err().to_string();
        assert!(error.contains("linux/arm/v7, linux/amd64"), "{error}");
        if Platform::host().architecture != "arm" {
            assert_eq!(select_platform(&entries, None).unwrap().digest, "for linux/amd64");
        }
    }
}

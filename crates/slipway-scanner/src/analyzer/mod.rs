//! The layer analyzer: one streaming pass over each layer's tar records what the
//! detectors find there ([`analyze_layer`]); [`merge`] then stacks the layers the way a
//! container runtime would and attributes every package to the layer that introduced its
//! current version.
//!
//! Nothing touches the filesystem: entries are never extracted, symlinks never followed,
//! and only the small files that detectors parse are held in memory, each under a cap.

mod apk;
mod cargo_auditable;
mod composer;
mod dpkg;
mod elf;
mod gem;
mod golang;
mod java;
mod layer;
mod merge;
mod npm;
mod os_release;
mod purl;
mod python;
mod rfc822;
mod rpm;
mod rpm_legacy;
pub(crate) mod tar_stream;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use layer::analyze_layer;
pub use merge::merge;

/// Bumped whenever a detector changes what it finds, so that cached [`LayerReport`]s
/// (keyed by layer digest and this version) are recomputed.
pub const ANALYZER_VERSION: u32 = 1;

/// Bounds on what one layer may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes read from one layer before the scan gives up on it; also
    /// what the archives inside it (jars) may inflate to.
    pub max_layer_bytes: u64,
    /// Largest file a detector reads into memory; larger ones are skipped with an issue.
    pub max_file_bytes: u64,
    /// Largest tar metadata entry (GNU long name or link, PAX header) held in memory; the
    /// entry a larger one describes is skipped with an issue.
    pub max_header_bytes: u64,
    /// Memory one layer's report may hold: its findings, paths, entry hashes and issues
    /// (the file a detector reads is bounded by `max_file_bytes` and dropped once parsed).
    /// A layer that needs more is analysed up to that point and marked
    /// [`LayerReport::incomplete`]. The report is also what callers cache and merge,
    /// so this bounds them too.
    pub max_analysis_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_layer_bytes: 8 << 30, max_file_bytes: 64 << 20, max_header_bytes: 1 << 20, max_analysis_bytes: 32 << 20 }
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// Sniff the magic bytes; registries do not always label layers truthfully.
    Auto,
}

impl Compression {
    /// The compression an OCI or Docker layer media type names; unknown types are sniffed.
    pub fn from_media_type(media_type: &str) -> Self {
        if media_type.ends_with("gzip") {
            Self::Gzip
        } else if media_type.ends_with("zstd") {
            Self::Zstd
        } else if media_type.ends_with(".tar") {
            Self::None
        } else {
            Self::Auto
        }
    }
}

/// What one layer contributes, independent of the layers around it. Serialisable so
/// that callers can cache it by (layer digest, [`ANALYZER_VERSION`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// What the detectors found, by normalised path (no leading `/`).
    pub findings: BTreeMap<String, Finding>,
    /// Paths that `.wh.NAME` entries delete from the layers below.
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer contents `.wh..wh..opq` hides.
    pub opaque_dirs: Vec<String>,
    /// Sorted [`path_hash`]es of every non-directory entry: a later layer's file that
    /// replaces an earlier finding (or a directory above it) must hide that finding even
    /// when it yields no finding itself. Hashes keep this small for layers of many files.
    pub entries: Vec<u64>,
    /// Entries the analyzer refused or could not parse; the rest of the layer still counts.
    pub issues: Vec<Issue>,
    /// Why the analysis stopped before the end of the layer (its memory budget ran out):
    /// what the rest of the layer holds is missing from the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

impl LayerReport {
    fn has_entry(&self, path: &str) -> bool {
        self.entries.binary_search(&path_hash(path)).is_ok()
    }
}

/// A problem with one entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// What a detector found in one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    OsRelease(OsRelease),
    Packages {
        packages: Vec<FoundPackage>,
    },
    /// Files that OS packages own (dpkg `info/*.list`, distroless `status.d/*.md5sums`),
    /// as [`path_hash`]es: lists of thousands of paths stay small in the cache.
    OwnedFiles {
        files: Vec<u64>,
    },
}

/// The distribution named by `os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `alpine`, `rhel`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`, `3.19.1`.
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
}

/// Package formats and language ecosystems, named as OSV names them where it has one
/// name for all (the OS formats are qualified by the distribution in [`Inventory::os`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ecosystem {
    #[serde(rename = "deb")]
    Deb,
    #[serde(rename = "apk")]
    Apk,
    #[serde(rename = "rpm")]
    Rpm,
    PyPI,
    #[serde(rename = "npm")]
    Npm,
    Go,
    #[serde(rename = "crates.io")]
    CratesIo,
    Maven,
    RubyGems,
    Packagist,
}

impl Ecosystem {
    /// Whether the OS package manager installs these (their files hide language finds).
    pub fn is_os(self) -> bool {
        matches!(self, Self::Deb | Self::Apk | Self::Rpm)
    }
}

/// A package as a detector saw it, before layers are merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundPackage {
    pub ecosystem: Ecosystem,
    /// As the ecosystem's advisories name it: `@scope/name` for npm, `group:artifact`
    /// for Maven, `vendor/name` for Composer, the module path for Go.
    pub name: String,
    pub version: String,
    /// The source package (dpkg `Source:`, apk origin, rpm source rpm), when it differs
    /// or is stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Inside an archive: the path within it (a nested jar), joined to the file with `!/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_path: Option<String>,
    /// [`path_hash`]es of the files the package owns (apk and rpm list them with the
    /// package).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<u64>,
}

impl FoundPackage {
    fn new(ecosystem: Ecosystem, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            ecosystem,
            name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            arch: None,
            inner_path: None,
            files: Vec::new(),
        }
    }

    /// What stays the same while a package is not reinstalled or changed.
    fn same_install(&self, other: &Self) -> bool {
        self.ecosystem == other.ecosystem
            && self.name == other.name
            && self.version == other.version
            && self.arch == other.arch
            && self.inner_path == other.inner_path
    }
}

/// The image's software after all layers are applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
    /// Every layer's issues, with the digest of the layer they came from.
    pub issues: Vec<LayerIssue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIssue {
    pub layer: String,
    #[serde(flatten)]
    pub issue: Issue,
}

/// One package in the merged image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub purl: String,
    /// Where it was found: the database or manifest file, `archive.jar!/inner.jar` inside
    /// archives.
    pub path: String,
    /// Digest of the layer that introduced this version of the package.
    pub layer: String,
}

/// A stable 64-bit FNV-1a hash of a normalised path; stable across builds because
/// reports are cached.
pub fn path_hash(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

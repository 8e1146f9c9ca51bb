#![doc = include_str!("../README.md")]

mod digest;
mod error_code;
mod manifest;
pub mod media_type;
mod name;
mod platform;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error_code::ErrorCode;
pub use manifest::{Descriptor, MAX_MANIFEST_BYTES, ManifestError, ParsedManifest};
pub use name::{NameError, Reference, RepoName, Tag};
pub use platform::{Platform, platform_images};

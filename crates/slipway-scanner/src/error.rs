use std::io;
use std::path::PathBuf;

use crate::version::Scheme;

/// Everything that can go wrong while scanning, reading a feed or comparing versions.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A version (or an npm range) that the scheme's own tool refuses.
    #[error("invalid {scheme} version {version:?}: {reason}")]
    Version { scheme: Scheme, version: String, reason: String },
    /// A CVSS vector that does not follow its version's specification.
    #[error("invalid CVSS vector {vector:?}: {reason}")]
    InvalidCvss { vector: String, reason: String },
    /// An OSV record that is not valid JSON or breaks the schema in a way that matters
    /// for matching.
    #[error("invalid OSV record: {0}")]
    InvalidRecord(String),
    /// A feed file or archive entry larger than the import's per-record limit.
    #[error("record is larger than the {limit}-byte limit")]
    RecordTooLarge { limit: u64 },
    /// A feed path that cannot be read.
    #[error("cannot read feed {}: {source}", path.display())]
    FeedRead { path: PathBuf, source: io::Error },
    /// A feed archive whose zip structure cannot be read.
    #[error("cannot read feed archive {}: {source}", path.display())]
    FeedArchive { path: PathBuf, source: zip::result::ZipError },
    /// The layer decompresses to more bytes than the configured limit allows.
    #[error("layer decompresses to more than {limit} bytes (a decompression bomb?)")]
    LayerTooLarge { limit: u64 },
    /// The layer stream ended early or does not decode.
    #[error("layer is truncated or corrupt: {0}")]
    CorruptLayer(String),
    /// A file inside a layer that a detector would read is over the per-file limit.
    #[error("{size} bytes, over the {limit}-byte file limit: skipped")]
    TooLarge { size: u64, limit: u64 },
    /// A file inside a layer that a detector reads does not parse.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// An image that cannot be found or read: a missing tag, a malformed manifest, a
    /// platform the image does not have.
    #[error("{0}")]
    InvalidImage(String),
    /// Bytes that do not hash to the digest that names them.
    #[error("digest mismatch: expected {expected}, read {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// An image source outside this crate (a registry client) failed.
    #[error(transparent)]
    Fetch(Box<dyn std::error::Error + Send + Sync>),
    /// A layer cache entry that cannot be read or written.
    #[error("layer cache {}: {source}", path.display())]
    Cache { path: PathBuf, source: io::Error },
}

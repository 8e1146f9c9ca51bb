use std::io;

/// Everything that can go wrong while scanning, reading a feed or comparing versions.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A CVSS vector that does not follow its version's specification.
    #[error("invalid CVSS vector {vector:?}: {reason}")]
    InvalidCvss { vector: String, reason: String },
}

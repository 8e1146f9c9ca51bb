use std::io;

use crate::version::Scheme;

/// Everything that can go wrong while scanning, reading a feed or comparing versions.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A version (or an npm range) that the scheme's own tool refuses.
    #[error("invalid {scheme} version {version:?}: {reason}")]
    Version {
        scheme: Scheme,
        version: String,
        reason: String,
    },
}

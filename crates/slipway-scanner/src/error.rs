use std::io;

/// Everything that can go wrong while scanning, reading a feed or comparing versions.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    Io(#[from] io::Error),
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
}

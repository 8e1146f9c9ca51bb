#![doc = include_str!("../README.md")]

mod fs;
mod hashers;
mod s3;

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use slipway_oci::{Algorithm, Digest};

pub use fs::FsStore;
pub use s3::{S3Config, S3Store, SINGLE_COPY_LIMIT};

/// A stream of request or response body bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("uploaded content has digest {actual}, not the {expected} the client declared")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("upload holds {actual} bytes but {expected} were recorded; the session is damaged")]
    UploadLength { expected: u64, actual: u64 },
    #[error("upload data is missing")]
    UploadMissing,
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
}

impl StorageError {
    /// What kind of failure this is at every surface. Content that does not hash to the
    /// digest the client declared is the client's error; everything else is the store's.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        use slipway_types::ErrorKind;
        match self {
            StorageError::DigestMismatch { .. } => ErrorKind::Invalid,
            StorageError::UploadLength { .. } | StorageError::UploadMissing | StorageError::Io(_) | StorageError::ObjectStore(_) => {
                ErrorKind::Internal
            }
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use slipway_oci::{Algorithm, Digest};
    use slipway_types::ErrorKind;

    use super::StorageError;

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let (expected, actual) = (Digest::of(Algorithm::Sha256, b"declared"), Digest::of(Algorithm::Sha256, b"sent"));
        let cases = [
            (StorageError::DigestMismatch { expected, actual }, ErrorKind::Invalid),
            (StorageError::UploadLength { expected: 2, actual: 1 }, ErrorKind::Internal),
            (StorageError::UploadMissing, ErrorKind::Internal),
            (StorageError::Io(std::io::Error::other("disk")), ErrorKind::Internal),
            (StorageError::ObjectStore(object_store::Error::Generic { store: "S3", source: "timeout".into() }), ErrorKind::Internal),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}

/// An upload session's id: a random UUID, so its text is safe as a file or object name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(uuid::Uuid);

impl UploadId {
    pub fn new() -> Self {
        UploadId(uuid::Uuid::new_v4())
    }

    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::try_parse(s).ok().map(UploadId)
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Blob content ready to be sent. Local files stay files so the HTTP layer can send them
/// without copying them through userspace buffers more than needed.
pub enum BlobRead {
    File {
        file: tokio::fs::File,
        len: u64,
    },
    /// A small local blob, read whole in the step that opened it.
    Bytes(Bytes),
    Stream {
        stream: ByteStream,
        len: u64,
    },
}

impl BlobRead {
    pub fn len(&self) -> u64 {
        match self {
            BlobRead::File { len, .. } | BlobRead::Stream { len, .. } => *len,
            BlobRead::Bytes(bytes) => bytes.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The content as a reader, whichever form it came in.
    pub fn into_reader(self) -> Box<dyn tokio::io::AsyncRead + Send + Unpin> {
        use tokio::io::AsyncReadExt;
        match self {
            BlobRead::File { file, len } => Box::new(file.take(len)),
            BlobRead::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes)),
            BlobRead::Stream { stream, .. } => Box::new(tokio_util::io::StreamReader::new(stream)),
        }
    }

    /// Reads the whole content into memory (for small blobs and tests).
    pub async fn into_bytes(self) -> Result<Vec<u8>, StorageError> {
        use futures::TryStreamExt;
        use tokio::io::AsyncReadExt;
        let mut out = Vec::with_capacity(self.len() as usize);
        match self {
            BlobRead::File { file, len } => {
                file.take(len).read_to_end(&mut out).await?;
            }
            BlobRead::Bytes(bytes) => out.extend_from_slice(&bytes),
            BlobRead::Stream { mut stream, .. } => {
                while let Some(chunk) = stream.try_next().await? {
                    out.extend_from_slice(&chunk);
                }
            }
        }
        Ok(out)
    }
}

/// A stored object as listed by garbage collection's orphan sweep.
#[derive(Clone, Debug)]
pub struct StoredObject<K> {
    pub key: K,
    /// Last modification, unix milliseconds.
    pub modified_ms: i64,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The blob's bytes, or the given byte range of them; `None` if it is not stored.
    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<Option<BlobRead>, StorageError>;

    /// Removes a blob. Removing a missing blob is not an error.
    async fn delete(&self, digest: &Digest) -> Result<(), StorageError>;

    /// A time-limited URL the client may fetch the blob from directly, if the store has one.
    async fn presigned_url(&self, _digest: &Digest) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// Appends a chunk to an upload whose recorded length is `offset`, returning the new
    /// length. Bytes past `offset` left by an interrupted earlier attempt are overwritten.
    /// `algorithm` is the digest algorithm the client announced, used for the running hash.
    async fn append(&self, upload: &UploadId, offset: u64, algorithm: Algorithm, body: ByteStream) -> Result<u64, StorageError>;

    /// Checks that the first `len` bytes of the upload hash to `digest` and prepares them
    /// to become that blob. Nothing is visible until the returned value is committed.
    async fn seal(&self, upload: &UploadId, len: u64, digest: &Digest) -> Result<Box<dyn SealedBlob>, StorageError>;

    /// Drops an upload's data. Dropping a missing upload is not an error.
    async fn abort(&self, upload: &UploadId) -> Result<(), StorageError>;

    /// Every stored blob, for the orphan sweep of garbage collection.
    async fn list_blobs(&self) -> Result<Vec<StoredObject<Digest>>, StorageError>;

    /// Every upload that has data, for the orphan sweep of garbage collection.
    async fn list_uploads(&self) -> Result<Vec<StoredObject<UploadId>>, StorageError>;
}

/// Verified upload content, not yet visible as a blob.
#[async_trait]
pub trait SealedBlob: Send {
    /// Publishes the content under its digest atomically and removes the upload data.
    async fn commit(self: Box<Self>) -> Result<(), StorageError>;
    /// Drops the upload data without publishing (the blob was already stored).
    async fn discard(self: Box<Self>) -> Result<(), StorageError>;
}

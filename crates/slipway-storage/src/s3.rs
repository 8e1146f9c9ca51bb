//! Any S3-compatible object store, through the `object_store` crate.
//!
//! Layout under the configured prefix: `blobs/<algorithm>/<hex>` for blobs, and
//! `uploads/<uuid>/<offset, 20 digits>` for upload chunks. S3 cannot append, so each
//! chunk is its own object named by where it starts; retrying a chunk overwrites the same
//! object, and sealing follows the chain of chunks from offset 0, ignoring leftovers.
//!
//! S3 copies an object server-side in one request only up to 5 GiB (CopyObject's limit):
//! a larger one is copied by streaming it into a multipart upload, which appears whole when
//! completed, as a copied object does.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use slipway_oci::{Algorithm, Digest};
use tokio::io::AsyncWriteExt;

use crate::hashers::RunningHashes;
use crate::{BlobRead, BlobStore, ByteStream, SealedBlob, StorageError, StoredObject, UploadId};

/// How to reach the bucket. Credentials are given explicitly, never read from the
/// environment behind the operator's back.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint for non-AWS servers, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Key prefix inside the bucket, so several deployments can share one.
    pub prefix: String,
    /// Answer blob GETs with a redirect to a presigned URL valid this long.
    pub presign_ttl: Option<Duration>,
    /// The largest object copied server-side in one request (`SINGLE_COPY_LIMIT` on S3).
    pub max_copy_bytes: u64,
}

/// CopyObject's limit on AWS S3 (and the servers that follow it): 5 GiB.
pub const SINGLE_COPY_LIMIT: u64 = 5 << 30;
/// A multipart upload has at most this many parts.
const MAX_PARTS: u64 = 10_000;
/// The part size of a multipart write of known length (`BufWriter`'s default), unless the
/// object needs larger parts to fit in `MAX_PARTS`.
const COPY_PART_BYTES: u64 = 10 << 20;

#[derive(Clone)]
pub struct S3Store {
    s3: Arc<AmazonS3>,
    prefix: Path,
    presign_ttl: Option<Duration>,
    max_copy_bytes: u64,
    hashes: Arc<RunningHashes>,
}

impl S3Store {
    pub fn new(config: &S3Config) -> Result<Self, StorageError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key);
        if let Some(endpoint) = &config.endpoint {
            builder =
                builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://")).with_virtual_hosted_style_request(false);
        }
        Ok(S3Store {
            s3: Arc::new(builder.build()?),
            prefix: Path::from(config.prefix.as_str()),
            presign_ttl: config.presign_ttl,
            max_copy_bytes: config.max_copy_bytes,
            hashes: Arc::default(),
        })
    }

    fn blob_key(&self, digest: &Digest) -> Path {
        self.prefix.clone().join("blobs").join(digest.algorithm().as_str()).join(digest.hex())
    }

    fn upload_dir(&self, upload: &UploadId) -> Path {
        self.prefix.clone().join("uploads").join(upload.to_string())
    }

    fn chunk_key(&self, upload: &UploadId, offset: u64) -> Path {
        self.upload_dir(upload).join(format!("{offset:020}"))
    }

    /// The chunks that make up the first `len` bytes, in order.
    async fn chunk_chain(&self, upload: &UploadId, len: u64) -> Result<Vec<Path>, StorageError> {
        let mut sizes = std::collections::HashMap::new();
        let mut listing = self.s3.list(Some(&self.upload_dir(upload)));
        while let Some(meta) = listing.try_next().await? {
            if let Some(offset) = meta.location.filename().and_then(|f| f.parse::<u64>().ok()) {
                sizes.insert(offset, (meta.location, meta.size));
            }
        }
        let mut chain = Vec::new();
        let mut at = 0;
        while at < len {
            let Some((key, size)) = sizes.remove(&at) else {
                return Err(StorageError::UploadLength { expected: len, actual: at });
            };
            if size == 0 {
                return Err(StorageError::UploadLength { expected: len, actual: at });
            }
            chain.push(key);
            at += size;
        }
        if at != len {
            return Err(StorageError::UploadLength { expected: len, actual: at });
        }
        Ok(chain)
    }

    async fn delete_upload(&self, upload: &UploadId) -> Result<(), StorageError> {
        let keys = self.s3.list(Some(&self.upload_dir(upload))).map_ok(|m| m.location).boxed();
        self.s3.delete_stream(keys).try_collect::<Vec<_>>().await?;
        Ok(())
    }
}

fn not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

#[async_trait]
impl BlobStore for S3Store {
    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<Option<BlobRead>, StorageError> {
        let options = GetOptions { range: range.filter(|r| !r.is_empty()).map(GetRange::Bounded), ..Default::default() };
        match self.s3.get_opts(&self.blob_key(digest), options).await {
            Ok(result) => {
                let len = result.range.end - result.range.start;
                let stream = result.into_stream().map_err(std::io::Error::other).boxed();
                Ok(Some(BlobRead::Stream { stream, len }))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StorageError> {
        match self.s3.delete(&self.blob_key(digest)).await {
            Err(e) if !not_found(&e) => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn presigned_url(&self, digest: &Digest) -> Result<Option<String>, StorageError> {
        let Some(ttl) = self.presign_ttl else { return Ok(None) };
        let url = self.s3.signed_url(object_store::signer::Method::GET, &self.blob_key(digest), ttl).await?;
        Ok(Some(url.to_string()))
    }

    async fn append(&self, upload: &UploadId, offset: u64, algorithm: Algorithm, mut body: ByteStream) -> Result<u64, StorageError> {
        let mut hasher = self.hashes.resume(upload, offset, algorithm);
        let store: Arc<dyn ObjectStore> = self.s3.clone();
        let mut writer = BufWriter::new(store, self.chunk_key(upload, offset));
        let mut len = offset;
        let copied: Result<(), StorageError> = async {
            while let Some(chunk) = body.try_next().await? {
                if let Some(h) = hasher.as_mut() {
                    h.update(&chunk);
                }
                len += chunk.len() as u64;
                writer.put(chunk).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = copied {
            let _ = writer.abort().await;
            return Err(e);
        }
        if len == offset {
            // An empty chunk adds nothing; don't leave a zero-length object in the chain.
            writer.abort().await?;
        } else {
            writer.shutdown().await?;
        }
        if let Some(h) = hasher {
            self.hashes.store(upload, len, h);
        }
        Ok(len)
    }

    async fn seal(&self, upload: &UploadId, len: u64, digest: &Digest) -> Result<Box<dyn SealedBlob>, StorageError> {
        let chain = self.chunk_chain(upload, len).await?;
        let staged = self.upload_dir(upload).join("sealed");
        let cached = self.hashes.take(upload, len, digest.algorithm());
        let actual = match (cached, chain.as_slice()) {
            // One chunk whose hash we watched go by: nothing to re-read or re-write.
            (Some(d), [single]) => {
                self.copy(single, &staged, len).await?;
                d
            }
            _ => self.concatenate(&chain, &staged, len, digest.algorithm()).await?,
        };
        if &actual != digest {
            self.delete_upload(upload).await?;
            return Err(StorageError::DigestMismatch { expected: digest.clone(), actual });
        }
        Ok(Box::new(S3Sealed { store: self.clone(), upload: upload.clone(), staged, blob: self.blob_key(digest), len }))
    }

    async fn abort(&self, upload: &UploadId) -> Result<(), StorageError> {
        self.hashes.forget(upload);
        self.delete_upload(upload).await
    }

    async fn list_blobs(&self) -> Result<Vec<StoredObject<Digest>>, StorageError> {
        let root = self.prefix.clone().join("blobs");
        let listing: Vec<_> = self.s3.list(Some(&root)).try_collect().await?;
        Ok(listing
            .into_iter()
            .filter_map(|meta| {
                let parts: Vec<_> = meta.location.parts().collect();
                let [.., alg, hex] = parts.as_slice() else { return None };
                let key = format!("{}:{}", alg.as_ref(), hex.as_ref()).parse().ok()?;
                Some(StoredObject { key, modified_ms: meta.last_modified.timestamp_millis() })
            })
            .collect())
    }

    async fn list_uploads(&self) -> Result<Vec<StoredObject<UploadId>>, StorageError> {
        let root = self.prefix.clone().join("uploads");
        let listing = self.s3.list_with_delimiter(Some(&root)).await?;
        let mut out = Vec::new();
        for dir in listing.common_prefixes {
            let Some(key) = dir.filename().and_then(UploadId::parse) else { continue };
            // The newest chunk says when the session was last active.
            let chunks: Vec<_> = self.s3.list(Some(&dir)).try_collect().await?;
            let modified_ms = chunks.iter().map(|c| c.last_modified.timestamp_millis()).max().unwrap_or_default();
            out.push(StoredObject { key, modified_ms });
        }
        Ok(out)
    }
}

impl S3Store {
    /// Copies the `len` bytes at `from` to `to`: server-side up to `max_copy_bytes`, else
    /// streamed through this process into a multipart upload (parts of at least
    /// `COPY_PART_BYTES`, few enough for `MAX_PARTS`). Either way `to` appears whole or not
    /// at all.
    async fn copy(&self, from: &Path, to: &Path, len: u64) -> Result<(), StorageError> {
        if len <= self.max_copy_bytes {
            return Ok(self.s3.copy(from, to).await?);
        }
        let mut writer = self.multipart_writer(to, len);
        let mut source = self.s3.get(from).await?.into_stream();
        let copied: Result<(), StorageError> = async {
            while let Some(bytes) = source.try_next().await? {
                writer.put(bytes).await?;
            }
            Ok(())
        }
        .await;
        match copied {
            Ok(()) => Ok(writer.shutdown().await?),
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// A multipart upload of `len` bytes to `to`: parts of `COPY_PART_BYTES`, or larger
    /// so that they stay within `MAX_PARTS`.
    fn multipart_writer(&self, to: &Path, len: u64) -> BufWriter {
        let part = COPY_PART_BYTES.max(len.div_ceil(MAX_PARTS));
        let store: Arc<dyn ObjectStore> = self.s3.clone();
        BufWriter::with_capacity(store, to.clone(), usize::try_from(part).unwrap_or(usize::MAX))
    }

    /// Streams the chunks (`len` bytes in all) into one staged object while hashing them.
    async fn concatenate(&self, chain: &[Path], staged: &Path, len: u64, algorithm: Algorithm) -> Result<Digest, StorageError> {
        let mut hasher = algorithm.hasher();
        let mut writer = self.multipart_writer(staged, len);
        for key in chain {
            let mut chunks = self.s3.get(key).await?.into_stream();
            while let Some(bytes) = chunks.try_next().await? {
                hasher.update(&bytes);
                writer.put(bytes).await?;
            }
        }
        if chain.is_empty() {
            writer.put(Bytes::new()).await?;
        }
        writer.shutdown().await?;
        Ok(hasher.finish())
    }
}

struct S3Sealed {
    store: S3Store,
    upload: UploadId,
    staged: Path,
    blob: Path,
    len: u64,
}

#[async_trait]
impl SealedBlob for S3Sealed {
    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        // A copy is atomic: readers see no object or the whole one.
        self.store.copy(&self.staged, &self.blob, self.len).await?;
        self.store.delete_upload(&self.upload).await
    }

    async fn discard(self: Box<Self>) -> Result<(), StorageError> {
        self.store.delete_upload(&self.upload).await
    }
}

//! The embedded default: blobs and uploads as files under one directory.
//!
//! Layout: `blobs/<algorithm>/<first two hex>/<hex>` and `uploads/<uuid>`. A blob file is
//! only ever created by renaming a fully written, fsynced and verified upload file, so a
//! file under `blobs/` always matches its name.

use std::io::{ErrorKind, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use slipway_oci::{Algorithm, Digest};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::hashers::RunningHashes;
use crate::{BlobRead, BlobStore, ByteStream, SealedBlob, StorageError, StoredObject, UploadId};

/// Large enough that hashing and writing amortize syscalls on multi-GB layers.
const READ_BUF: usize = 256 * 1024;
/// Blobs (or ranges) up to this size are read whole when opened: configs, manifests'
/// small layers and signatures, which then go out with the response's headers.
const WHOLE_READ: u64 = 64 * 1024;

#[derive(Clone)]
pub struct FsStore {
    root: Arc<PathBuf>,
    hashes: Arc<RunningHashes>,
}

impl FsStore {
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs")).await?;
        fs::create_dir_all(root.join("uploads")).await?;
        Ok(FsStore { root: Arc::new(root), hashes: Arc::default() })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("blobs").join(digest.algorithm().as_str()).join(&hex[..2]).join(hex)
    }

    fn upload_path(&self, upload: &UploadId) -> PathBuf {
        self.root.join("uploads").join(upload.to_string())
    }
}

#[async_trait]
impl BlobStore for FsStore {
    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<Option<BlobRead>, StorageError> {
        let path = self.blob_path(digest);
        // One trip to the blocking pool for the open, the size and (for a small blob) the
        // bytes, instead of one per step: the hand-offs cost more than the reading.
        tokio::task::spawn_blocking(move || read_local(&path, range)).await.map_err(|e| std::io::Error::other(e.to_string()))?
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StorageError> {
        remove_if_exists(&self.blob_path(digest)).await
    }

    async fn append(&self, upload: &UploadId, offset: u64, algorithm: Algorithm, mut body: ByteStream) -> Result<u64, StorageError> {
        let path = self.upload_path(upload);
        let mut file = OpenOptions::new().create(true).write(true).truncate(false).open(&path).await?;
        let on_disk = file.metadata().await?.len();
        if on_disk < offset {
            return Err(StorageError::UploadLength { expected: offset, actual: on_disk });
        }
        // Bytes past the recorded length come from an attempt that never completed.
        file.set_len(offset).await?;
        file.seek(SeekFrom::Start(offset)).await?;
        let mut hasher = self.hashes.resume(upload, offset, algorithm);
        let mut len = offset;
        let mut writer = tokio::io::BufWriter::with_capacity(READ_BUF, file);
        while let Some(chunk) = body.try_next().await? {
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            writer.write_all(&chunk).await?;
            len += chunk.len() as u64;
        }
        writer.flush().await?;
        if let Some(h) = hasher {
            self.hashes.store(upload, len, h);
        }
        Ok(len)
    }

    async fn seal(&self, upload: &UploadId, len: u64, digest: &Digest) -> Result<Box<dyn SealedBlob>, StorageError> {
        let path = self.upload_path(upload);
        let file = match File::open(&path).await {
            Ok(f) => f,
            // An empty upload (PUT with no body and no PATCH) has no file yet.
            Err(e) if e.kind() == ErrorKind::NotFound && len == 0 => {
                File::create(&path).await?;
                File::open(&path).await?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(StorageError::UploadMissing),
            Err(e) => return Err(e.into()),
        };
        let on_disk = file.metadata().await?.len();
        if on_disk != len {
            return Err(StorageError::UploadLength { expected: len, actual: on_disk });
        }
        let actual = match self.hashes.take(upload, len, digest.algorithm()) {
            Some(d) => d,
            None => hash_file(file, digest.algorithm()).await?,
        };
        if &actual != digest {
            return Err(StorageError::DigestMismatch { expected: digest.clone(), actual });
        }
        Ok(Box::new(FsSealed { upload: path, blob: self.blob_path(digest) }))
    }

    async fn abort(&self, upload: &UploadId) -> Result<(), StorageError> {
        self.hashes.forget(upload);
        remove_if_exists(&self.upload_path(upload)).await
    }

    async fn list_blobs(&self) -> Result<Vec<StoredObject<Digest>>, StorageError> {
        let root = self.root.join("blobs");
        tokio::task::spawn_blocking(move || list_blob_files(&root)).await.map_err(|e| std::io::Error::other(e.to_string()))?
    }

    async fn list_uploads(&self) -> Result<Vec<StoredObject<UploadId>>, StorageError> {
        let mut out = Vec::new();
        let mut dir = fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Some(key) = entry.file_name().to_str().and_then(UploadId::parse) else { continue };
            let Some(metadata) = still_there(entry.metadata().await)? else { continue };
            out.push(StoredObject { key, modified_ms: modified_ms(&metadata) });
        }
        Ok(out)
    }
}

struct FsSealed {
    upload: PathBuf,
    blob: PathBuf,
}

#[async_trait]
impl SealedBlob for FsSealed {
    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        let parent = self.blob.parent().expect("blob paths have a parent");
        fs::create_dir_all(parent).await?;
        // Data first, then the name: after a crash the blob is either absent or whole.
        OpenOptions::new().write(true).open(&self.upload).await?.sync_all().await?;
        fs::rename(&self.upload, &self.blob).await?;
        sync_dir(parent).await
    }

    async fn discard(self: Box<Self>) -> Result<(), StorageError> {
        remove_if_exists(&self.upload).await
    }
}

async fn hash_file(mut file: File, algorithm: Algorithm) -> Result<Digest, StorageError> {
    file.seek(SeekFrom::Start(0)).await?;
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

async fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path).await {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).await?.sync_all().await?;
    Ok(())
}

fn modified_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// A listed file's metadata, or `None` when it went between the listing and now (an
/// upload committed or aborted, a blob another replica's collection deleted): a listing
/// taken while pushes run must not fail on them.
fn still_there(metadata: std::io::Result<std::fs::Metadata>) -> Result<Option<std::fs::Metadata>, StorageError> {
    match metadata {
        Ok(metadata) => Ok(Some(metadata)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn list_blob_files(root: &Path) -> Result<Vec<StoredObject<Digest>>, StorageError> {
    let mut out = Vec::new();
    for algorithm in std::fs::read_dir(root)? {
        let algorithm = algorithm?;
        let alg_name = algorithm.file_name().to_string_lossy().into_owned();
        for prefix in std::fs::read_dir(algorithm.path())? {
            for blob in std::fs::read_dir(prefix?.path())? {
                let blob = blob?;
                let name = format!("{alg_name}:{}", blob.file_name().to_string_lossy());
                if let Ok(key) = name.parse() {
                    let Some(metadata) = still_there(blob.metadata())? else { continue };
                    out.push(StoredObject { key, modified_ms: modified_ms(&metadata) });
                }
            }
        }
    }
    Ok(out)
}

fn read_local(path: &Path, range: Option<Range<u64>>) -> Result<Option<BlobRead>, StorageError> {
    use std::io::{Read, Seek};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let size = file.metadata()?.len();
    let (start, len) = match range {
        Some(r) => (r.start, r.end.min(size).saturating_sub(r.start)),
        None => (0, size),
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start))?;
    }
    if len <= WHOLE_READ {
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut bytes)?;
        return Ok(Some(BlobRead::Bytes(bytes.into())));
    }
    Ok(Some(BlobRead::File { file: File::from_std(file), len }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let chunks: Vec<_> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn chunked_upload_commits_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        let id = UploadId::new();
        let n = store.append(&id, 0, Algorithm::Sha256, body(&[b"hello ", b"wor"])).await.unwrap();
        let n = store.append(&id, n, Algorithm::Sha256, body(&[b"ld"])).await.unwrap();
        assert_eq!(n, 11);
        let digest = Digest::of(Algorithm::Sha256, b"hello world");
        store.seal(&id, n, &digest).await.unwrap().commit().await.unwrap();
        let read = store.read(&digest, None).await.unwrap().unwrap();
        assert_eq!(read.into_bytes().await.unwrap(), b"hello world");
        let ranged = store.read(&digest, Some(6..11)).await.unwrap().unwrap();
        assert_eq!(ranged.into_bytes().await.unwrap(), b"world");
        assert!(store.list_uploads().await.unwrap().is_empty());
        assert_eq!(store.list_blobs().await.unwrap()[0].key, digest);
    }

    #[tokio::test]
    async fn wrong_digest_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        let id = UploadId::new();
        store.append(&id, 0, Algorithm::Sha256, body(&[b"abc"])).await.unwrap();
        let wrong = Digest::of(Algorithm::Sha256, b"abd");
        let err = store.seal(&id, 3, &wrong).await.err().expect("digest mismatch");
        assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
        assert!(store.read(&wrong, None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn another_process_rehashes_and_stale_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = FsStore::open(dir.path()).await.unwrap();
        let id = UploadId::new();
        first.append(&id, 0, Algorithm::Sha512, body(&[b"abc"])).await.unwrap();
        // A crashed attempt wrote bytes that were never recorded.
        first.append(&id, 3, Algorithm::Sha512, body(&[b"garbage"])).await.unwrap();
        let second = FsStore::open(dir.path()).await.unwrap();
        let n = second.append(&id, 3, Algorithm::Sha512, body(&[b"def"])).await.unwrap();
        let digest = Digest::of(Algorithm::Sha512, b"abcdef");
        second.seal(&id, n, &digest).await.unwrap().commit().await.unwrap();
        let read = second.read(&digest, None).await.unwrap().unwrap();
        assert_eq!(read.into_bytes().await.unwrap(), b"abcdef");
    }

    #[tokio::test]
    async fn small_reads_come_whole_and_large_ones_as_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        let content: Vec<u8> = (0..WHOLE_READ as usize + 10).map(|i| (i % 251) as u8).collect();
        let id = UploadId::new();
        let leaked: &'static [u8] = Box::leak(content.clone().into_boxed_slice());
        let n = store.append(&id, 0, Algorithm::Sha256, body(&[leaked])).await.unwrap();
        let digest = Digest::of(Algorithm::Sha256, &content);
        store.seal(&id, n, &digest).await.unwrap().commit().await.unwrap();

        let whole = store.read(&digest, None).await.unwrap().unwrap();
        assert!(matches!(whole, BlobRead::File { .. }), "a blob above the threshold streams from its file");
        assert_eq!(whole.into_bytes().await.unwrap(), content);
        // Ranges at, below and past the threshold, and past the end, all read exactly.
        let end = content.len() as u64;
        for range in [0..WHOLE_READ, 10..WHOLE_READ + 10, 1..WHOLE_READ + 2, end - 5..end + 100, end..end + 1] {
            let read = store.read(&digest, Some(range.clone())).await.unwrap().unwrap();
            let expected = &content[range.start as usize..(range.end.min(end)) as usize];
            assert_eq!(matches!(read, BlobRead::Bytes(_)), expected.len() as u64 <= WHOLE_READ, "{range:?}");
            assert_eq!(read.len(), expected.len() as u64, "{range:?}");
            assert_eq!(read.into_bytes().await.unwrap(), expected, "{range:?}");
        }
    }
}

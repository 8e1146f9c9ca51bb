//! The registry's rules, independent of HTTP.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use futures::future::BoxFuture;
use slipway_db::{ManifestRecord, NewManifest, PutManifestError, Referrer, RegistryDb};
use slipway_oci::{Algorithm, Digest, ErrorCode, ParsedManifest, Reference, RepoName, Tag};
use slipway_storage::{BlobRead, BlobStore, ByteStream, StorageError, UploadId};

use crate::error::RegistryError;
use crate::kept::{BlobLinks, SMALL_BLOB, SmallBlobs};

/// Longest page of tags or repository names returned at once.
pub const MAX_PAGE: usize = 1000;

#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    /// Answer blob GETs with a redirect to the store's presigned URL when it has one.
    pub redirect_blob_gets: bool,
}

/// Told of each manifest stored, once its transaction has committed: how the rest of the
/// server reacts to pushes (scanning) without the registry knowing of it.
pub trait PushHook: Send + Sync {
    fn manifest_pushed<'a>(&'a self, repository: &'a RepoName, digest: &'a Digest, media_type: &'a str) -> BoxFuture<'a, ()>;
}

/// The registry service: shared, cheap to clone.
#[derive(Clone)]
pub struct Registry {
    pub(crate) db: RegistryDb,
    pub(crate) store: Arc<dyn BlobStore>,
    pub(crate) settings: RegistrySettings,
    pulls: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    links: Arc<BlobLinks>,
    small_blobs: Arc<SmallBlobs>,
    push_hook: Option<Arc<dyn PushHook>>,
}

/// What a successful manifest push reports back.
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// A chunk of an upload as the client described it.
pub struct Chunk {
    /// The first byte's offset, from `Content-Range`.
    pub start: Option<u64>,
    /// The chunk's length, from `Content-Range` or `Content-Length`.
    pub len: Option<u64>,
    pub body: ByteStream,
}

pub fn upload_location(repo: &RepoName, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

impl Registry {
    pub fn new(db: RegistryDb, store: Arc<dyn BlobStore>, settings: RegistrySettings) -> Self {
        Registry { db, store, settings, pulls: Arc::default(), links: Arc::default(), small_blobs: Arc::default(), push_hook: None }
    }

    /// The same registry, telling `hook` of every manifest pushed.
    pub fn with_push_hook(self, hook: Arc<dyn PushHook>) -> Self {
        Registry { push_hook: Some(hook), ..self }
    }

    /// Counts a pull: like Docker Hub, every GET of a manifest. Counts gather in memory and
    /// reach the database in batches (`flush_pulls`), off the pull's path.
    pub fn record_pull(&self, repo: &RepoName) {
        *self.pulls.lock().expect("pull counter").entry(repo.to_string()).or_default() += 1;
    }

    /// Adds the pulls counted since the last flush to the registry's totals per
    /// repository; the catalog folds them into its listings (`Catalog::count_pulls`).
    pub async fn flush_pulls(&self) -> Result<(), RegistryError> {
        let counts = std::mem::take(&mut *self.pulls.lock().expect("pull counter"));
        for (repository, pulls) in counts {
            self.db.add_pulls(&repository, pulls).await?;
        }
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    // ---- blobs -------------------------------------------------------------------------

    /// The size of a blob `repo` may serve, from the briefly kept links (`BlobLinks`) or
    /// the database.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64, RegistryError> {
        let now = self.db.clock().now_ms();
        let generation = match self.links.get(repo, digest, now) {
            Ok(size) => return Ok(size),
            Err(generation) => generation,
        };
        let size = self
            .db
            .blob_in_repository(repo.as_str(), &digest.to_string())
            .await?
            .map(|s| s as u64)
            .ok_or_else(|| RegistryError::spec(ErrorCode::BlobUnknown, format!("blob {digest} is not in {repo}")))?;
        self.links.keep(repo, digest, size, generation, now);
        Ok(size)
    }

    /// The bytes of a blob `blob_size` found in `repo` with `size` bytes.
    pub async fn read_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        range: Option<Range<u64>>,
    ) -> Result<BlobRead, RegistryError> {
        if size > SMALL_BLOB {
            return match self.store.read(digest, range).await? {
                Some(blob) => Ok(blob),
                None => Err(self.missing(repo, digest).await),
            };
        }
        let bytes = match self.small_blobs.get(digest) {
            Some(bytes) => bytes,
            None => {
                let Some(blob) = self.store.read(digest, None).await? else {
                    return Err(self.missing(repo, digest).await);
                };
                let bytes = match blob {
                    BlobRead::Bytes(bytes) => bytes,
                    other => other.into_bytes().await?.into(),
                };
                self.small_blobs.keep(digest, bytes.clone());
                bytes
            }
        };
        Ok(BlobRead::Bytes(match range {
            Some(range) => bytes.slice(range.start.min(size) as usize..range.end.min(size) as usize),
            None => bytes,
        }))
    }

    /// The error for a blob found in `repo` but not in storage.
    async fn missing(&self, repo: &RepoName, digest: &Digest) -> RegistryError {
        // The link may have been kept from before garbage collection (on any replica)
        // took the blob: then the blob is unknown, as the database now says.
        self.forget_links(digest);
        if let Err(unknown) = self.blob_size(repo, digest).await {
            return unknown;
        }
        // A recorded blob whose bytes are gone is a storage fault, not a client error.
        RegistryError::Storage(StorageError::Io(std::io::Error::other(format!("blob {digest} is recorded but not stored"))))
    }

    pub async fn blob_redirect(&self, digest: &Digest) -> Result<Option<String>, RegistryError> {
        if !self.settings.redirect_blob_gets {
            return Ok(None);
        }
        Ok(self.store.presigned_url(digest).await?)
    }

    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), RegistryError> {
        let unlinked = self.db.unlink_blob(repo.as_str(), &digest.to_string()).await;
        // Forgotten whatever the outcome: a failed commit may still have removed the row.
        self.links.forget(Some(repo), digest);
        if unlinked? { Ok(()) } else { Err(RegistryError::spec(ErrorCode::BlobUnknown, format!("blob {digest} is not in {repo}"))) }
    }

    /// Forgets what is kept of a blob garbage collection took, in every repository.
    pub(crate) fn forget_links(&self, digest: &Digest) {
        self.links.forget(None, digest);
        self.small_blobs.forget(digest);
    }

    /// Cross-repository mount. Returns false when the blob cannot be mounted, in which
    /// case the caller starts an ordinary upload.
    pub async fn mount(&self, repo: &RepoName, digest: &Digest, from: Option<&RepoName>) -> Result<bool, RegistryError> {
        let size = self.db.mount_blob(repo.as_str(), &digest.to_string(), from.map(RepoName::as_str)).await?;
        Ok(size.is_some())
    }

    // ---- uploads -----------------------------------------------------------------------

    pub async fn start_upload(&self, repo: &RepoName, algorithm: Algorithm) -> Result<UploadId, RegistryError> {
        let id = UploadId::new();
        self.db.create_upload(&id.to_string(), repo.as_str(), algorithm.as_str()).await?;
        Ok(id)
    }

    async fn session(&self, repo: &RepoName, id: &str) -> Result<(UploadId, slipway_db::Upload), RegistryError> {
        let unknown = || RegistryError::spec(ErrorCode::BlobUploadUnknown, format!("upload {id} is not in progress"));
        let upload_id = UploadId::parse(id).ok_or_else(unknown)?;
        match self.db.upload(id).await? {
            Some(upload) if upload.repository == repo.as_str() => Ok((upload_id, upload)),
            _ => Err(unknown()),
        }
    }

    pub async fn upload_size(&self, repo: &RepoName, id: &str) -> Result<u64, RegistryError> {
        Ok(self.session(repo, id).await?.1.size as u64)
    }

    pub async fn append(&self, repo: &RepoName, id: &str, chunk: Chunk) -> Result<u64, RegistryError> {
        let (upload_id, upload) = self.session(repo, id).await?;
        self.append_to(repo, &upload_id, &upload, chunk).await
    }

    async fn append_to(
        &self,
        repo: &RepoName,
        upload_id: &UploadId,
        upload: &slipway_db::Upload,
        chunk: Chunk,
    ) -> Result<u64, RegistryError> {
        let current = upload.size as u64;
        let out_of_order = |current| RegistryError::OutOfOrder { current, location: upload_location(repo, &upload.id) };
        if chunk.start.is_some_and(|start| start != current) {
            return Err(out_of_order(current));
        }
        let algorithm = upload.algorithm.parse().unwrap_or(Algorithm::Sha256);
        let size = self.store.append(upload_id, current, algorithm, chunk.body).await?;
        metrics::counter!("slipway_upload_bytes_total").increment(size - current);
        if let Some(len) = chunk.len
            && size - current != len
        {
            return Err(RegistryError::spec(ErrorCode::SizeInvalid, format!("chunk declared {len} bytes but carried {}", size - current)));
        }
        if !self.db.advance_upload(&upload.id, current as i64, size as i64).await? {
            // Another request moved the session on while this one was writing.
            return Err(out_of_order(self.upload_size(repo, &upload.id).await?));
        }
        Ok(size)
    }

    /// Closes an upload: optional last chunk, digest check, then the blob is published.
    pub async fn finish_upload(&self, repo: &RepoName, id: &str, digest: &Digest, last_chunk: Option<Chunk>) -> Result<(), RegistryError> {
        let (upload_id, upload) = self.session(repo, id).await?;
        let size = match last_chunk {
            Some(chunk) => self.append_to(repo, &upload_id, &upload, chunk).await?,
            None => upload.size as u64,
        };
        let sealed = match self.store.seal(&upload_id, size, digest).await {
            Ok(sealed) => sealed,
            Err(e @ StorageError::DigestMismatch { .. }) => {
                self.cancel_upload(repo, id).await?;
                return Err(RegistryError::spec(ErrorCode::DigestInvalid, e.to_string()));
            }
            Err(StorageError::UploadMissing) if self.stored_with_size(digest, size).await? => {
                // An earlier attempt published these bytes and then crashed before its
                // commit: they are verified content, so only the record is missing.
                self.db
                    .commit_blob(repo.as_str(), &digest.to_string(), size as i64, Some(id), || async { Ok::<(), StorageError>(()) })
                    .await?;
                return Ok(());
            }
            Err(e @ (StorageError::UploadLength { .. } | StorageError::UploadMissing)) => {
                return Err(RegistryError::spec(ErrorCode::BlobUploadInvalid, e.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        self.db.commit_blob(repo.as_str(), &digest.to_string(), size as i64, Some(id), || sealed.commit()).await?;
        Ok(())
    }

    async fn stored_with_size(&self, digest: &Digest, size: u64) -> Result<bool, RegistryError> {
        Ok(self.store.read(digest, None).await?.is_some_and(|blob| blob.len() == size))
    }

    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<(), RegistryError> {
        let (upload_id, upload) = self.session(repo, id).await?;
        self.db.delete_upload(&upload.id).await?;
        self.store.abort(&upload_id).await?;
        Ok(())
    }

    /// The single-request upload: POST with `?digest=` and the whole blob as the body.
    pub async fn put_blob(&self, repo: &RepoName, digest: &Digest, chunk: Chunk) -> Result<(), RegistryError> {
        let id = self.start_upload(repo, digest.algorithm()).await?.to_string();
        let result = self.finish_upload(repo, &id, digest, Some(chunk)).await;
        if result.is_err() {
            // Nobody else knows this session's id: don't leave it behind.
            let _ = self.cancel_upload(repo, &id).await;
        }
        result
    }

    // ---- manifests ---------------------------------------------------------------------

    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        content: &[u8],
    ) -> Result<PushedManifest, RegistryError> {
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), content);
                if &actual != expected {
                    return Err(RegistryError::spec(ErrorCode::DigestInvalid, format!("manifest digest is {actual}, not {expected}")));
                }
                actual
            }
            Reference::Tag(_) => self.digest_for_tag_push(repo, content).await?,
        };
        let parsed =
            ParsedManifest::parse(content, content_type).map_err(|e| RegistryError::spec(ErrorCode::ManifestInvalid, e.to_string()))?;
        let blobs: BTreeSet<String> = parsed.required_blobs().map(Digest::to_string).collect();
        let children: BTreeSet<String> = parsed.manifests.iter().map(|m| m.digest.to_string()).collect();
        let digest_text = digest.to_string();
        let subject = parsed.subject.as_ref().map(|s| s.digest.to_string());
        let mut tags: Vec<&str> = extra_tags.iter().map(Tag::as_str).collect();
        if let Reference::Tag(tag) = reference {
            tags.push(tag.as_str());
        }
        let record = NewManifest {
            repository: repo.as_str(),
            digest: &digest_text,
            media_type: &parsed.media_type,
            artifact_type: parsed.artifact_type.as_deref(),
            subject: subject.as_deref(),
            annotations: parsed.annotations.as_ref().map(|a| a.to_string()),
            content,
            tags,
            blobs: blobs.iter().map(String::as_str).collect(),
            manifests: children.iter().map(String::as_str).collect(),
        };
        self.db.put_manifest(&record).await.map_err(|e| match e {
            PutManifestError::MissingBlob(d) => RegistryError::spec(ErrorCode::ManifestBlobUnknown, format!("blob {d} is not in {repo}")),
            PutManifestError::MissingManifest(d) => {
                RegistryError::spec(ErrorCode::ManifestBlobUnknown, format!("manifest {d} is not in {repo}"))
            }
            PutManifestError::Db(e) => e.into(),
        })?;
        if let Some(hook) = &self.push_hook {
            hook.manifest_pushed(repo, &digest, &parsed.media_type).await;
        }
        Ok(PushedManifest { digest, subject: parsed.subject.map(|s| s.digest) })
    }

    /// A manifest pushed by tag has no client-given digest: it is sha256, unless the same
    /// content is already in the repository under its sha512 digest (pushed by digest
    /// first), whose identity the tag then keeps.
    async fn digest_for_tag_push(&self, repo: &RepoName, content: &[u8]) -> Result<Digest, RegistryError> {
        let sha256 = Digest::of(Algorithm::Sha256, content);
        if self.db.images().manifest_exists(repo.as_str(), &sha256.to_string()).await? {
            return Ok(sha256);
        }
        let sha512 = Digest::of(Algorithm::Sha512, content);
        if self.db.images().manifest_exists(repo.as_str(), &sha512.to_string()).await? {
            return Ok(sha512);
        }
        Ok(sha256)
    }

    pub async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<ManifestRecord, RegistryError> {
        let found = match reference {
            Reference::Tag(tag) => self.db.images().manifest_by_tag(repo.as_str(), tag.as_str()).await?,
            Reference::Digest(d) => self.db.images().manifest_by_digest(repo.as_str(), &d.to_string()).await?,
        };
        found.ok_or_else(|| RegistryError::spec(ErrorCode::ManifestUnknown, format!("manifest {reference} is not in {repo}")))
    }

    /// Deletes a manifest by digest (with its tags), or just a tag.
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<(), RegistryError> {
        let deleted = match reference {
            Reference::Tag(tag) => self.db.delete_tag(repo.as_str(), tag.as_str()).await?,
            Reference::Digest(d) => self.db.delete_manifest(repo.as_str(), &d.to_string()).await?,
        };
        if deleted {
            Ok(())
        } else {
            Err(RegistryError::spec(ErrorCode::ManifestUnknown, format!("manifest {reference} is not in {repo}")))
        }
    }

    // ---- listings ----------------------------------------------------------------------

    /// A page of tags and whether more follow.
    pub async fn tags(&self, repo: &RepoName, last: &str, n: Option<usize>) -> Result<(Vec<String>, bool), RegistryError> {
        if !self.db.repository_exists(repo.as_str()).await? {
            return Err(RegistryError::spec(ErrorCode::NameUnknown, format!("repository {repo} is not known")));
        }
        let limit = n.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        if limit == 0 {
            return Ok((Vec::new(), false));
        }
        let mut tags = self.db.list_tags(repo.as_str(), last, limit as i64 + 1).await?;
        let more = tags.len() > limit;
        tags.truncate(limit);
        Ok((tags, more))
    }

    pub async fn catalog(&self, last: &str, n: Option<usize>) -> Result<(Vec<String>, bool), RegistryError> {
        let limit = n.unwrap_or(100).min(MAX_PAGE);
        if limit == 0 {
            return Ok((Vec::new(), false));
        }
        let page = self.db.catalog(last, limit as i64).await?;
        Ok((page.names, page.more))
    }

    pub async fn referrers(&self, repo: &RepoName, subject: &Digest, artifact_type: Option<&str>) -> Result<Vec<Referrer>, RegistryError> {
        Ok(self.db.referrers(repo.as_str(), &subject.to_string(), artifact_type).await?)
    }
}

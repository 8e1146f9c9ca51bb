//! The OSV feed in the database: imports from files, directories and zip archives, syncs
//! from configured URLs, and its status.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use slipway_db::{AdvisoryCounts, AdvisoryPackage, AdvisoryRow};
use slipway_scanner::osv::{Advisory, Importer};
use tokio::io::AsyncWriteExt;

use crate::jobs::FeedChanged;
use crate::{Scanning, ScanningError};

/// Advisories stored per transaction: large enough to amortise the commit, small enough
/// that a full osv.dev import never holds a long write lock.
const BATCH: usize = 500;

/// A record the import skipped, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub file: String,
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FeedImport {
    pub revision: i64,
    /// Advisories new to the store.
    pub imported: u64,
    /// Advisories whose content changed.
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: Vec<Rejected>,
    /// The re-assessment job enqueued, when anything changed.
    pub reassessment_job: Option<String>,
}

/// What syncing one URL did.
#[derive(Clone, Debug, Serialize)]
pub struct FeedSync {
    pub url: String,
    /// `imported`, `unchanged` (the source's validators did not change) or `failed`.
    pub outcome: &'static str,
    pub import: Option<FeedImport>,
    pub error: Option<String>,
}

/// The stored feed, its recent imports, its sources and the scanning queue.
#[derive(Clone, Debug, Serialize)]
pub struct FeedStatus {
    pub advisories: i64,
    pub withdrawn: i64,
    pub scanned_images: i64,
    /// Changed packages whose images wait for re-assessment.
    pub pending_changes: i64,
    pub revisions: Vec<RevisionStatus>,
    pub sources: Vec<SourceStatus>,
    pub jobs: Vec<JobStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RevisionStatus {
    pub revision: i64,
    pub source: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub imported: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    pub url: String,
    pub checked_at: i64,
    pub changed_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub kind: String,
    pub pending: i64,
    pub failed: i64,
}

impl Scanning {
    /// Imports OSV files, directories or zip archives under one feed revision, and
    /// enqueues re-assessment if anything changed. Unreadable records are reported and
    /// skipped; an unreadable path fails the import (what was stored before it stays).
    pub async fn import_feed(&self, paths: &[PathBuf], source: &str) -> Result<FeedImport, ScanningError> {
        let _timed = crate::Timed::new("slipway_feed_import_duration_seconds");
        let revision = self.db.begin_feed_revision(source).await?;
        let mut counts = AdvisoryCounts::default();
        let mut rejected = Vec::new();
        for path in paths {
            let report = self.import_path(revision, source, path, &mut counts).await?;
            rejected.extend(report.rejected.into_iter().map(|r| Rejected { file: r.file, reason: r.reason }));
        }
        self.db.finish_feed_revision(revision, counts, rejected.len() as u64).await?;
        let reassessment_job = match counts.imported + counts.updated {
            0 => None,
            _ => Some(self.queue.enqueue(&FeedChanged { revision }).await?),
        };
        Ok(FeedImport {
            revision,
            imported: counts.imported,
            updated: counts.updated,
            unchanged: counts.unchanged,
            rejected,
            reassessment_job,
        })
    }

    /// Streams one path's advisories from a blocking reader thread into batches, so
    /// memory holds one batch whatever the feed's size.
    async fn import_path(
        &self,
        revision: i64,
        source: &str,
        path: &Path,
        counts: &mut AdvisoryCounts,
    ) -> Result<slipway_scanner::osv::ImportReport, ScanningError> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Advisory>(BATCH);
        let owned = path.to_owned();
        let reader = tokio::task::spawn_blocking(move || {
            // A closed channel (the store failed) leaves the rest of the feed unread in effect.
            Importer::default().import_with(&owned, |advisory| {
                let _ = sender.blocking_send(advisory);
            })
        });
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(advisory) = receiver.recv().await {
            batch.push(row(&advisory)?);
            if batch.len() == BATCH {
                add(counts, self.db.upsert_advisories(revision, source, &batch).await?);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            add(counts, self.db.upsert_advisories(revision, source, &batch).await?);
        }
        Ok(reader.await.map_err(|e| ScanningError::Internal(format!("feed reader stopped: {e}")))??)
    }

    /// Fetches each URL (`http(s)://` or `file://`) and imports what changed since the
    /// last sync. A failing URL is reported, and the others are still synced.
    pub async fn sync_feeds(&self, urls: &[String]) -> Vec<FeedSync> {
        let mut results = Vec::with_capacity(urls.len());
        for url in urls {
            let result = match self.sync_one(url).await {
                Ok(Some(import)) => FeedSync { url: url.clone(), outcome: "imported", import: Some(import), error: None },
                Ok(None) => FeedSync { url: url.clone(), outcome: "unchanged", import: None, error: None },
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "feed sync failed");
                    if let Err(e) = self.db.feed_source_failed(url, &e.to_string()).await {
                        tracing::warn!(url = %url, error = %e, "recording a failed feed sync failed");
                    }
                    FeedSync { url: url.clone(), outcome: "failed", import: None, error: Some(e.to_string()) }
                }
            };
            results.push(result);
        }
        results
    }

    async fn sync_one(&self, url: &str) -> Result<Option<FeedImport>, ScanningError> {
        let parsed = url::Url::parse(url).map_err(|e| ScanningError::Invalid(format!("feed URL {url:?}: {e}")))?;
        let known = self.db.feed_source(url).await?;
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|()| ScanningError::Invalid(format!("feed URL {url:?} names no local path")))?;
                // A local file's validator is its modification time.
                let modified = tokio::fs::metadata(&path)
                    .await
                    .and_then(|m| m.modified())
                    .map_err(|e| ScanningError::Fetch { url: url.to_owned(), reason: e.to_string() })?;
                let stamp = modified.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos().to_string();
                if known.as_ref().and_then(|k| k.last_modified.as_deref()) == Some(stamp.as_str()) {
                    self.db.feed_source_checked(url, None, Some(&stamp), false).await?;
                    return Ok(None);
                }
                let import = self.import_feed(&[path], url).await?;
                self.db.feed_source_checked(url, None, Some(&stamp), true).await?;
                Ok(Some(import))
            }
            "http" | "https" => {
                let fetch_error = |e: reqwest::Error| ScanningError::Fetch { url: url.to_owned(), reason: e.to_string() };
                let client = slipway_net::client()
                    .connect_timeout(Duration::from_secs(30))
                    .read_timeout(Duration::from_secs(120))
                    .build()
                    .map_err(fetch_error)?;
                let mut request = client.get(parsed.clone());
                if let Some(etag) = known.as_ref().and_then(|k| k.etag.as_deref()) {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag);
                }
                if let Some(modified) = known.as_ref().and_then(|k| k.last_modified.as_deref()) {
                    request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
                }
                let mut response = request.send().await.map_err(fetch_error)?;
                let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (etag, last_modified) = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
                if response.status() == reqwest::StatusCode::NOT_MODIFIED {
                    self.db.feed_source_checked(url, etag.as_deref(), last_modified.as_deref(), false).await?;
                    return Ok(None);
                }
                if !response.status().is_success() {
                    return Err(ScanningError::Fetch { url: url.to_owned(), reason: format!("status {}", response.status()) });
                }
                // The importer tells archives from records by their extension.
                let suffix = if parsed.path().to_ascii_lowercase().ends_with(".zip") { ".zip" } else { ".json" };
                let download = tempfile::Builder::new().prefix("slipway-feed-").suffix(suffix).tempfile().map_err(io)?;
                let mut file = tokio::fs::File::from_std(download.reopen().map_err(io)?);
                while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
                    file.write_all(&chunk).await.map_err(io)?;
                }
                file.flush().await.map_err(io)?;
                let import = self.import_feed(&[download.path().to_owned()], url).await?;
                self.db.feed_source_checked(url, etag.as_deref(), last_modified.as_deref(), true).await?;
                Ok(Some(import))
            }
            other => Err(ScanningError::Invalid(format!("feed URL {url:?}: use http, https or file, not {other}"))),
        }
    }

    pub async fn feed_status(&self) -> Result<FeedStatus, ScanningError> {
        let totals = self.db.feed_totals().await?;
        let revisions = self
            .db
            .feed_revisions(10)
            .await?
            .into_iter()
            .map(|r| RevisionStatus {
                revision: r.revision,
                source: r.source,
                started_at: r.started_at,
                finished_at: r.finished_at,
                imported: r.imported,
                updated: r.updated,
                unchanged: r.unchanged,
                rejected: r.rejected,
            })
            .collect();
        let sources = self
            .db
            .feed_sources()
            .await?
            .into_iter()
            .map(|s| SourceStatus { url: s.url, checked_at: s.checked_at, changed_at: s.changed_at, last_error: s.last_error })
            .collect();
        let jobs =
            self.queue.job_counts().await?.into_iter().map(|j| JobStatus { kind: j.kind, pending: j.pending, failed: j.failed }).collect();
        Ok(FeedStatus {
            advisories: totals.advisories,
            withdrawn: totals.withdrawn,
            scanned_images: totals.scanned_images,
            pending_changes: totals.pending_changes,
            revisions,
            sources,
            jobs,
        })
    }
}

fn io(e: std::io::Error) -> ScanningError {
    ScanningError::Internal(format!("feed download: {e}"))
}

fn add(total: &mut AdvisoryCounts, batch: AdvisoryCounts) {
    total.imported += batch.imported;
    total.updated += batch.updated;
    total.unchanged += batch.unchanged;
}

/// An advisory as stored: its JSON, a hash of it, and the packages it names (none once
/// withdrawn, so that it never matches).
fn row(advisory: &Advisory) -> Result<AdvisoryRow, ScanningError> {
    let content = serde_json::to_string(advisory)?;
    let content_hash = hex::encode(Sha256::digest(content.as_bytes()));
    let mut packages: Vec<AdvisoryPackage> = if advisory.is_withdrawn() {
        Vec::new()
    } else {
        advisory
            .affected
            .iter()
            .map(|a| AdvisoryPackage {
                ecosystem: a.ecosystem.clone(),
                name: a.name.clone(),
                release: a.release.clone().unwrap_or_default(),
            })
            .collect()
    };
    packages.sort();
    packages.dedup();
    Ok(AdvisoryRow {
        id: advisory.id.clone(),
        modified: advisory.modified.clone(),
        withdrawn: advisory.withdrawn.clone(),
        content,
        content_hash,
        packages,
    })
}

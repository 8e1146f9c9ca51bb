//! The scanning jobs: what the queue stores, and what running them does.

use serde::{Deserialize, Serialize};
use slipway_jobs::Job;

use crate::Scanning;

/// Scans one manifest of a repository (an index: each of its platform images).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanImage {
    pub repository: String,
    pub digest: String,
}

impl Job for ScanImage {
    const KIND: &'static str = "scan_image";
    type Context = Scanning;

    /// One scan per image at a time: results are kept per digest, whatever the repository.
    fn dedup_key(&self) -> Option<String> {
        Some(self.digest.clone())
    }

    async fn run(&self, scanning: &Scanning) -> anyhow::Result<()> {
        let outcome = scanning.scan_image(&self.repository, &self.digest).await?;
        tracing::info!(repository = %self.repository, digest = %self.digest, ?outcome, "image scanned");
        Ok(())
    }
}

/// Re-matches the images holding packages whose advisories changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedChanged {
    /// The revision that prompted it. The job handles every change noted so far, so jobs
    /// of other revisions may find less to do, but a running one never swallows a newer
    /// revision's request.
    pub revision: i64,
}

impl Job for FeedChanged {
    const KIND: &'static str = "feed_changed";
    type Context = Scanning;

    fn dedup_key(&self) -> Option<String> {
        Some(self.revision.to_string())
    }

    async fn run(&self, scanning: &Scanning) -> anyhow::Result<()> {
        let done = scanning.reassess().await?;
        tracing::info!(revision = self.revision, ?done, "images re-assessed after a feed change");
        Ok(())
    }
}

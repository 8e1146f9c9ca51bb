#![doc = include_str!("../README.md")]

mod cache;
mod export;
mod feed;
mod jobs;
mod layers;
mod matching;
mod reassess;
mod results;
mod scan;

use std::sync::Arc;

use slipway_db::{ImagesDb, ScanningDb};
use slipway_jobs::{Queue, Runner};
use slipway_scanner::analyzer::Limits;
use slipway_storage::BlobStore;

pub use cache::DbLayerCache;
pub use export::ExportFormat;
pub use feed::{FeedImport, FeedStatus, FeedSync, JobStatus, Rejected, RevisionStatus, SourceStatus};
pub use jobs::{FeedChanged, ScanImage};
pub use layers::{LayerEntry, MAX_REPOSITORIES, MAX_TAGS, PlatformImage, TaggedVersion};
pub use matching::stored_advisories;
pub use reassess::Reassessment;
pub use results::{
    ClassCounts, FindingEntry, ImageResults, PackageEntry, ScanRequested, ScanResults, ScanState, SecuritySummary, SeverityEntry,
};
pub use scan::ScanOutcome;

/// Records how long the enclosing work took, in seconds, into the histogram it names when
/// it is dropped: on every way out, errors and early returns included.
struct Timed(&'static str, std::time::Instant);

impl Timed {
    fn new(histogram: &'static str) -> Timed {
        Timed(histogram, std::time::Instant::now())
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        metrics::histogram!(self.0).record(self.1.elapsed().as_secs_f64());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanningError {
    #[error(transparent)]
    Db(#[from] slipway_db::DbError),
    #[error(transparent)]
    Storage(#[from] slipway_storage::StorageError),
    #[error(transparent)]
    Scanner(#[from] slipway_scanner::ScanError),
    #[error(transparent)]
    Jobs(#[from] slipway_jobs::JobError),
    /// Not there, or not to be seen by this caller: the two answers are the same.
    #[error("{0}")]
    NotFound(String),
    /// Seen, but not to be acted on by this caller.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{0}")]
    Internal(String),
}

impl ScanningError {
    /// What kind of failure this is at every surface. The scanner's own errors are about
    /// images and feeds the server read itself, never the caller's request, and a feed
    /// that cannot be fetched names a URL the caller has no business seeing: both are the
    /// server's to log.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        use slipway_types::ErrorKind;
        match self {
            ScanningError::Db(e) => e.kind(),
            ScanningError::Storage(e) => e.kind(),
            ScanningError::Jobs(e) => e.kind(),
            ScanningError::NotFound(_) => ErrorKind::NotFound,
            ScanningError::Forbidden(_) => ErrorKind::Forbidden,
            ScanningError::Invalid(_) => ErrorKind::Invalid,
            ScanningError::Scanner(_) | ScanningError::Fetch { .. } | ScanningError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<serde_json::Error> for ScanningError {
    fn from(e: serde_json::Error) -> Self {
        ScanningError::Internal(format!("stored scan data: {e}"))
    }
}

/// Bounds on what one image's scan results may hold. Over a bound the scan keeps the
/// first packages (the most severe findings), stores them, and says it is incomplete and
/// why: a layer listing 200,000 packages must not cost every image holding it 200,000
/// rows and seconds of the database's one writer.
///
/// The defaults are several times what the largest real images hold (a few thousand OS
/// packages, some thousands of language packages in the biggest application layers; a
/// few thousand findings in old build images carrying kernel headers). Inventories are
/// written in transactions of a few thousand rows; an image's findings are swapped in
/// with its scan in one transaction, which their limit keeps to the 20,000 rows that
/// re-assessment also writes at most at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InventoryLimits {
    /// Packages one layer may list; the rest of the layer's are left out.
    pub max_packages_per_layer: usize,
    /// Packages one image's inventory may hold.
    pub max_packages_per_image: usize,
    /// Findings stored for one image; the most severe are kept.
    pub max_findings_per_image: usize,
}

impl Default for InventoryLimits {
    fn default() -> Self {
        InventoryLimits { max_packages_per_layer: 20_000, max_packages_per_image: 50_000, max_findings_per_image: 20_000 }
    }
}

/// The scanning service. Cheap to clone.
#[derive(Clone)]
pub struct Scanning {
    db: ScanningDb,
    /// The registry's read model: the manifests to scan.
    images: ImagesDb,
    store: Arc<dyn BlobStore>,
    queue: Queue,
    cache: DbLayerCache,
    limits: Limits,
    inventory_limits: InventoryLimits,
}

impl Scanning {
    /// A service caching layer reports in the database.
    pub fn new(db: ScanningDb, images: ImagesDb, store: Arc<dyn BlobStore>, queue: Queue, limits: Limits) -> Scanning {
        let cache = DbLayerCache::new(db.clone());
        Scanning { db, images, store, queue, cache, limits, inventory_limits: InventoryLimits::default() }
    }

    /// The service with other bounds on inventories and findings than the defaults.
    pub fn with_inventory_limits(mut self, limits: InventoryLimits) -> Scanning {
        self.inventory_limits = limits;
        self
    }

    /// Registers the scanning jobs with a runner.
    pub fn register(&self, runner: Runner) -> Runner {
        let context = Arc::new(self.clone());
        runner.register::<ScanImage>(context.clone()).register::<FeedChanged>(context)
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Enqueues a scan of a pushed image manifest; returns the job's id.
    pub async fn enqueue_scan(&self, repository: &str, digest: &str) -> Result<String, ScanningError> {
        Ok(self.queue.enqueue(&ScanImage { repository: repository.to_owned(), digest: digest.to_owned() }).await?)
    }
}

#[cfg(test)]
mod kind_tests {
    use slipway_db::DbError;
    use slipway_scanner::ScanError;
    use slipway_storage::StorageError;
    use slipway_types::ErrorKind;

    use super::ScanningError;

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let cases = [
            (ScanningError::Db(DbError::BadText("nul".into())), ErrorKind::Invalid),
            (ScanningError::Storage(StorageError::UploadMissing), ErrorKind::Internal),
            (ScanningError::Scanner(ScanError::InvalidImage("no such platform".into())), ErrorKind::Internal),
            (ScanningError::Jobs(slipway_jobs::JobError::Db(DbError::Conflict("busy".into()))), ErrorKind::Conflict),
            (ScanningError::NotFound("no image".into()), ErrorKind::NotFound),
            (ScanningError::Forbidden("not a member".into()), ErrorKind::Forbidden),
            (ScanningError::Invalid("bad digest".into()), ErrorKind::Invalid),
            (ScanningError::Fetch { url: "feed".into(), reason: "timeout".into() }, ErrorKind::Internal),
            (ScanningError::Internal("stored scan data".into()), ErrorKind::Internal),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}

//! Where advisories come from. Only the advisories that concern the packages found are
//! kept in memory, so a scan against whole ecosystem archives stays small.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use slipway_db::Db;
use slipway_scanner::matcher::AdvisoryIndex;
use slipway_scanner::osv::{Importer, Rejected};
use slipway_scanner::scan::Wanted;

/// A source of advisories for a scan.
#[derive(Clone, Debug)]
pub enum AdvisorySource {
    /// OSV records read offline: JSON files, directory trees of them, zip archives.
    Files(Vec<PathBuf>),
    /// The feed `slipway feed import` and `feed sync` keep in the database (`serve`'s,
    /// found from the same configuration).
    Stored { database_url: String },
}

const IMPORT_ONE: &str =
    "import one with `slipway feed import PATH` (OSV JSON files, directories of them, or zip archives) or pass --feed PATH";

/// What loading read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub index: AdvisoryIndex,
    /// Records read in all, including those not kept.
    pub read: usize,
    pub rejected: Vec<Rejected>,
}

impl AdvisorySource {
    /// The advisories that concern `wanted`.
    pub async fn load(&self, wanted: &Wanted) -> anyhow::Result<Loaded> {
        match self {
            AdvisorySource::Files(paths) => {
                ensure!(!paths.is_empty(), "no advisory feed: {IMPORT_ONE}");
                let (paths, wanted) = (paths.clone(), wanted.clone());
                tokio::task::spawn_blocking(move || {
                    let importer = Importer::default();
                    let mut kept = Vec::new();
                    let mut loaded = Loaded::default();
                    for path in &paths {
                        let report = importer
                            .import_with(path, |advisory| {
                                if wanted.concerns(&advisory) {
                                    kept.push(advisory);
                                }
                            })
                            .with_context(|| format!("reading the feed {}", path.display()))?;
                        loaded.read += report.imported;
                        loaded.rejected.extend(report.rejected);
                    }
                    loaded.index = AdvisoryIndex::new(kept);
                    Ok(loaded)
                })
                .await
                .context("the feed reader stopped")?
            }
            AdvisorySource::Stored { database_url } => {
                // A scan never creates a database: without one there is no feed to read.
                if let Some(path) = database_url.strip_prefix("sqlite://") {
                    let path = path.split('?').next().unwrap_or(path);
                    ensure!(Path::new(path).exists(), "no advisory feed: there is no database at {path}; {IMPORT_ONE}");
                }
                let opened = Db::connect(database_url).await.context("opening the database that holds the feed")?;
                let db = opened.scanning();
                let stored = db.feed_totals().await?.advisories;
                ensure!(stored > 0, "no advisory feed: the database holds no advisories; {IMPORT_ONE}");
                let index = slipway_security::stored_advisories(&db, wanted).await?;
                opened.close().await;
                Ok(Loaded { index, read: usize::try_from(stored)?, rejected: Vec::new() })
            }
        }
    }
}

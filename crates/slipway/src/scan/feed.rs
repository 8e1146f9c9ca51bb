//! Where advisories come from. Only the advisories that concern the packages found are
//! kept in memory, so a scan against whole ecosystem archives stays small.

use std::path::PathBuf;

use anyhow::{Context, ensure};
use slipway_scanner::matcher::AdvisoryIndex;
use slipway_scanner::osv::{Importer, Rejected};
use slipway_scanner::scan::Wanted;

/// A source of advisories for a scan.
#[derive(Clone, Debug)]
pub enum AdvisorySource {
    /// OSV records read offline: JSON files, directory trees of them, zip archives.
    Files(Vec<PathBuf>),
}

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
                ensure!(!paths.is_empty(), "no advisory feed: pass --feed PATH (OSV JSON files, directories of them, or zip archives)");
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
        }
    }
}

//! Caches of layer reports, keyed by layer digest and analyzer version: a layer's
//! contents never change under its digest, so its report stays valid until the
//! analyzer changes what it finds.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use slipway_oci::Digest;

use crate::ScanError;
use crate::analyzer::{ANALYZER_VERSION, LayerReport};

/// What a cached report is stored under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub digest: Digest,
    pub analyzer_version: u32,
}

impl CacheKey {
    /// The key of a layer's report from this build's analyzer.
    pub fn current(digest: &Digest) -> CacheKey {
        CacheKey { digest: digest.clone(), analyzer_version: ANALYZER_VERSION }
    }
}

/// A store of layer reports. Implementations are shared by the scanner's worker threads.
pub trait LayerCache: Send + Sync {
    fn get(&self, key: &CacheKey) -> Result<Option<LayerReport>, ScanError>;
    fn put(&self, key: &CacheKey, report: &LayerReport) -> Result<(), ScanError>;
}

/// Reports held in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryCache {
    reports: Mutex<HashMap<CacheKey, LayerReport>>,
}

impl LayerCache for MemoryCache {
    fn get(&self, key: &CacheKey) -> Result<Option<LayerReport>, ScanError> {
        Ok(self.lock().get(key).cloned())
    }

    fn put(&self, key: &CacheKey, report: &LayerReport) -> Result<(), ScanError> {
        self.lock().insert(key.clone(), report.clone());
        Ok(())
    }
}

impl MemoryCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, LayerReport>> {
        // A panic elsewhere cannot leave a half-inserted map: insert is one call.
        self.reports.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reports as JSON files under a directory: `v<analyzer version>/<algorithm>/<hex>.json`.
/// Writes go to a temporary file in the same directory and are renamed into place, so
/// a reader (another scan running at the same time) never sees half a report.
#[derive(Debug, Clone)]
pub struct DirCache {
    root: PathBuf,
}

impl DirCache {
    /// A cache under `root`, created when the first report is written.
    pub fn new(root: impl Into<PathBuf>) -> DirCache {
        DirCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.root
            .join(format!("v{}", key.analyzer_version))
            .join(key.digest.algorithm().as_str())
            .join(format!("{}.json", key.digest.hex()))
    }
}

impl LayerCache for DirCache {
    fn get(&self, key: &CacheKey) -> Result<Option<LayerReport>, ScanError> {
        let path = self.path(key);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_error(&path, e)),
        };
        serde_json::from_reader(BufReader::new(file)).map(Some).map_err(|e| cache_error(&path, e.into()))
    }

    fn put(&self, key: &CacheKey, report: &LayerReport) -> Result<(), ScanError> {
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| cache_error(dir, e))?;
        let mut temporary = tempfile::NamedTempFile::new_in(dir).map_err(|e| cache_error(dir, e))?;
        let mut writer = BufWriter::new(temporary.as_file_mut());
        serde_json::to_writer(&mut writer, report).map_err(|e| cache_error(&path, e.into()))?;
        writer.flush().map_err(|e| cache_error(&path, e))?;
        drop(writer);
        temporary.persist(&path).map_err(|e| cache_error(&path, e.error))?;
        Ok(())
    }
}

fn cache_error(path: &Path, source: io::Error) -> ScanError {
    ScanError::Cache { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::Issue;

    fn report() -> LayerReport {
        LayerReport {
            whiteouts: vec!["etc/old".into()],
            entries: vec![1, 2, 3],
            issues: vec![Issue { path: "x".into(), message: "y".into() }],
            ..LayerReport::default()
        }
    }

    fn key(version: u32) -> CacheKey {
        CacheKey { digest: Digest::of(slipway_oci::Algorithm::Sha256, b"layer"), analyzer_version: version }
    }

    #[test]
    fn directory_cache_round_trips_per_analyzer_version() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DirCache::new(dir.path().join("cache"));
        assert_eq!(cache.get(&key(1)).unwrap(), None);
        cache.put(&key(1), &report()).unwrap();
        assert_eq!(cache.get(&key(1)).unwrap(), Some(report()));
        assert_eq!(cache.get(&key(2)).unwrap(), None, "a new analyzer misses");
        // Overwriting replaces the file whole; no temporary file is left behind.
        cache.put(&key(1), &LayerReport::default()).unwrap();
        assert_eq!(cache.get(&key(1)).unwrap(), Some(LayerReport::default()));
        let files = fs::read_dir(cache.path(&key(1)).parent().unwrap()).unwrap().count();
        assert_eq!(files, 1);
    }

    #[test]
    fn a_corrupt_entry_is_an_error_not_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DirCache::new(dir.path());
        let path = cache.path(&key(1));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{\"findings\":").unwrap();
        assert!(matches!(cache.get(&key(1)), Err(ScanError::Cache { .. })));
    }

    #[test]
    fn memory_cache_round_trips() {
        let cache = MemoryCache::default();
        cache.put(&key(1), &report()).unwrap();
        assert_eq!(cache.get(&key(1)).unwrap(), Some(report()));
        assert_eq!(cache.get(&key(2)).unwrap(), None);
    }
}

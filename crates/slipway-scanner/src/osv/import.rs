//! Feed import: a JSON file, a directory tree of JSON files, or a zip archive of them
//! as osv.dev publishes each ecosystem (`<ecosystem>/all.zip`, one record per entry).
//!
//! Memory stays bounded by one record: archive entries are read one at a time, and a
//! file or entry larger than the per-record limit is refused before it is read (and
//! read through a cap, in case an archive lies about sizes). A record that does not
//! parse or breaks the schema is reported with its file name and skipped; only a feed
//! path that cannot be read at all fails the import.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use super::Advisory;
use super::record::Record;
use crate::ScanError;

/// The default per-record limit. The largest records osv.dev serves (Linux kernel
/// CVEs listing every affected version of every release) are a few MiB.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 32 * 1024 * 1024;

/// A record that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The file, or `archive.zip:entry.json` for an archive entry.
    pub file: String,
    pub reason: String,
}

/// What an import read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Advisories imported, withdrawn ones included.
    pub imported: usize,
    /// How many of those are withdrawn.
    pub withdrawn: usize,
    pub rejected: Vec<Rejected>,
}

/// Advisories read into memory, with the report.
#[derive(Clone, Debug, Default)]
pub struct Feed {
    pub advisories: Vec<Advisory>,
    pub report: ImportReport,
}

/// Reads OSV feeds.
#[derive(Clone, Debug)]
pub struct Importer {
    max_record_bytes: u64,
}

impl Default for Importer {
    fn default() -> Self {
        Importer { max_record_bytes: DEFAULT_MAX_RECORD_BYTES }
    }
}

/// Imports a file, directory or zip archive with the default limits.
pub fn import_path(path: &Path) -> Result<Feed, ScanError> {
    Importer::default().import(path)
}

impl Importer {
    /// Refuses files and archive entries larger than `limit` bytes.
    pub fn max_record_bytes(mut self, limit: u64) -> Self {
        self.max_record_bytes = limit;
        self
    }

    /// Reads every advisory under `path` into memory.
    pub fn import(&self, path: &Path) -> Result<Feed, ScanError> {
        let mut advisories = Vec::new();
        let report = self.import_with(path, |advisory| advisories.push(advisory))?;
        Ok(Feed { advisories, report })
    }

    /// Hands each advisory under `path` to `sink` as it is read, for feeds too large
    /// to hold in memory. A `.zip` file is read as an archive and any other file as one
    /// JSON record; in a directory, `.json` and `.zip` files are read, recursively,
    /// in name order, and other files are ignored.
    pub fn import_with(&self, path: &Path, mut sink: impl FnMut(Advisory)) -> Result<ImportReport, ScanError> {
        let mut import = Import { limit: self.max_record_bytes, sink: &mut sink, report: ImportReport::default() };
        let metadata = fs::metadata(path).map_err(|source| ScanError::FeedRead { path: path.into(), source })?;
        if metadata.is_dir() {
            import.directory(path)?;
        } else if is_zip(path) {
            import.archive(path)?;
        } else {
            import.file(path);
        }
        Ok(import.report)
    }
}

struct Import<'s> {
    limit: u64,
    sink: &'s mut dyn FnMut(Advisory),
    report: ImportReport,
}

impl Import<'_> {
    fn directory(&mut self, dir: &Path) -> Result<(), ScanError> {
        let read_error = |source| ScanError::FeedRead { path: dir.into(), source };
        let mut entries = fs::read_dir(dir)
            .map_err(read_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<PathBuf>, _>>()
            .map_err(read_error)?;
        entries.sort();
        for path in entries {
            // Symbolic links to directories are not followed, so a link loop cannot
            // make the walk endless; links to files are read.
            let Ok(link) = fs::symlink_metadata(&path) else {
                continue;
            };
            if link.is_dir() {
                self.directory(&path)?;
            } else if is_zip(&path) {
                self.archive(&path)?;
            } else if has_extension(&path, "json") && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                self.file(&path);
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) {
        let name = path.display().to_string();
        let bytes = File::open(path).map_err(ScanError::from).and_then(|file| {
            let declared = file.metadata()?.len();
            read_capped(file, declared, self.limit)
        });
        self.record(name, bytes);
    }

    fn archive(&mut self, path: &Path) -> Result<(), ScanError> {
        let archive_error = |source| ScanError::FeedArchive { path: path.into(), source };
        let file = File::open(path).map_err(|source| ScanError::FeedRead { path: path.into(), source })?;
        let mut archive = ZipArchive::new(file).map_err(archive_error)?;
        for index in 0..archive.len() {
            let entry_name = archive.name_for_index(index).unwrap_or_default().to_owned();
            if entry_name.ends_with('/') || !entry_name.to_ascii_lowercase().ends_with(".json") {
                continue;
            }
            let name = format!("{}:{entry_name}", path.display());
            let bytes = archive.by_index(index).map_err(archive_error).and_then(|entry| {
                let declared = entry.size();
                read_capped(entry, declared, self.limit)
            });
            self.record(name, bytes);
        }
        Ok(())
    }

    fn record(&mut self, file: String, bytes: Result<Vec<u8>, ScanError>) {
        let advisory = bytes.and_then(|bytes| {
            let record: Record = serde_json::from_slice(&bytes).map_err(|e| ScanError::InvalidRecord(e.to_string()))?;
            Advisory::try_from(record)
        });
        match advisory {
            Ok(advisory) => {
                self.report.imported += 1;
                if advisory.is_withdrawn() {
                    self.report.withdrawn += 1;
                }
                (self.sink)(advisory);
            }
            Err(error) => {
                tracing::warn!(file, "skipping OSV record: {error}");
                self.report.rejected.push(Rejected { file, reason: error.to_string() });
            }
        }
    }
}

/// Reads at most `limit` bytes, refusing a reader whose declared size is already over
/// the limit without reading it.
fn read_capped(reader: impl Read, declared: u64, limit: u64) -> Result<Vec<u8>, ScanError> {
    if declared > limit {
        return Err(ScanError::RecordTooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or_default());
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ScanError::RecordTooLarge { limit });
    }
    Ok(bytes)
}

fn is_zip(path: &Path) -> bool {
    has_extension(path, "zip")
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

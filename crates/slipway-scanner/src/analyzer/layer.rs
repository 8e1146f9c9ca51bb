//! One streaming pass over a layer's tar.

use super::tar_stream::{self, Source, TarStream};
use super::{
    Compression, Finding, Issue, LayerReport, Limits, apk, cargo_auditable, composer, dpkg, elf, gem, golang, java, npm, os_release,
    path_hash, python, rpm, rpm_legacy,
};
use crate::ScanError;
use flate2::read::MultiGzDecoder;
use std::io::{self, BufRead, BufReader, Read};
use tar::EntryType;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Reads a layer blob once, front to back, and records what the detectors find in it.
///
/// Fails when the stream itself is unusable (truncated, corrupt, or larger than
/// [`Limits::max_layer_bytes`] once decompressed); problems with single entries, such as
/// a `..` path or a file that does not parse, become [`LayerReport::issues`] instead.
pub fn analyze_layer(reader: impl Read, compression: Compression, limits: &Limits) -> Result<LayerReport, ScanError> {
    let mut input = BufReader::with_capacity(64 << 10, reader);
    let compression = match compression {
        Compression::Auto => sniff(input.fill_buf()?),
        known => known,
    };
    let decoded: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        Compression::None | Compression::Auto => Box::new(input),
    };
    let bounded = Bounded { inner: decoded, remaining: limits.max_layer_bytes };
    let mut archive = TarStream::new(bounded, limits.max_header_bytes);
    let report = walk(&mut archive, limits).map_err(|err| stream_error(err, limits))?;
    // The tar ends before the compressed stream does (padding, then the gzip trailer):
    // reading on to the end checks the checksum and catches a truncated blob.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|err| stream_error(err, limits))?;
    Ok(report)
}

fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Marks the error [`Bounded`] raises, to tell a bomb from a broken stream.
#[derive(Debug)]
struct LimitReached;

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size limit reached")
    }
}

impl std::error::Error for LimitReached {}

/// Fails reads past a byte budget: every decompressed byte, skipped ones included,
/// passes through here.
struct Bounded<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Source for Bounded<R> {}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // Only an error if the stream really has more to give.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(LimitReached)),
            };
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

fn stream_error(err: io::Error, limits: &Limits) -> ScanError {
    if err.get_ref().is_some_and(|inner| inner.is::<LimitReached>()) {
        ScanError::LayerTooLarge { limit: limits.max_layer_bytes }
    } else if err.kind() == io::ErrorKind::UnexpectedEof {
        ScanError::CorruptLayer(format!("unexpected end of data ({err})"))
    } else {
        ScanError::CorruptLayer(err.to_string())
    }
}

/// Issues listed per layer; more are counted in one last issue. Each costs memory and
/// a line in every report, and a hostile layer can have millions.
const MAX_ISSUES: usize = 1000;
/// Paths in issues are cut to this many bytes: long names can be a megabyte.
const MAX_ISSUE_PATH: usize = 1024;
/// Paths quoted in a reason for an incomplete layer, which is printed as a warning.
const MAX_REASON_PATH: usize = 160;
/// What one package found costs in a report, about: the struct and its short strings.
const PACKAGE_BYTES: u64 = 256;
/// What the report keeps per issue, path and message aside.
const ISSUE_OVERHEAD: u64 = 64;
/// What a `String` in a list costs beyond its bytes.
const STRING_OVERHEAD: u64 = 24;
/// Entry hashes are reserved this many at a time, so their memory is charged before it
/// is taken.
const ENTRY_CHUNK: usize = 4096;

/// The memory a layer's report holds, against [`Limits::max_analysis_bytes`].
struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Takes `bytes` from the budget; false (taking nothing) when they do not fit.
    fn take(&mut self, bytes: u64) -> bool {
        if bytes > self.left() {
            return false;
        }
        self.used += bytes;
        true
    }
}

/// The report being built, with its memory charged as it grows.
struct Walk {
    report: LayerReport,
    budget: Budget,
    /// Issues not listed once [`MAX_ISSUES`] are.
    unlisted_issues: u64,
    /// Why the first finding over the budget was dropped.
    dropped: Option<String>,
}

impl Walk {
    fn issue(&mut self, path: &str, message: String) -> Result<(), Exhausted> {
        if self.report.issues.len() >= MAX_ISSUES {
            self.unlisted_issues += 1;
            return Ok(());
        }
        let path = truncate(path, MAX_ISSUE_PATH);
        self.charge(path.len() as u64 + message.len() as u64 + ISSUE_OVERHEAD)?;
        self.report.issues.push(Issue { path, message });
        Ok(())
    }

    fn entry(&mut self, path: &str) -> Result<(), Exhausted> {
        let entries = &mut self.report.entries;
        if entries.len() == entries.capacity() {
            let more = entries.capacity().clamp(ENTRY_CHUNK, 1 << 20);
            self.charge(more as u64 * 8)?;
            self.report.entries.reserve_exact(more);
        }
        self.report.entries.push(path_hash(path));
        Ok(())
    }

    fn path(&mut self, list: fn(&mut LayerReport) -> &mut Vec<String>, mut path: String) -> Result<(), Exhausted> {
        path.shrink_to_fit();
        self.charge(path.capacity() as u64 + STRING_OVERHEAD)?;
        list(&mut self.report).push(path);
        Ok(())
    }

    /// Keeps a file's finding. One larger than what is left of the budget (a dpkg status
    /// of hundreds of thousands of packages) is dropped on its own: the layer is then
    /// incomplete, but the walk goes on for smaller findings and the stacking metadata.
    fn finding(&mut self, path: String, finding: Finding) -> Result<(), Exhausted> {
        let bytes = path.len() as u64 + STRING_OVERHEAD + finding_bytes(&finding);
        if self.budget.take(bytes) {
            self.report.findings.insert(path, finding);
            return Ok(());
        }
        drop(finding);
        self.drop_finding(&path, bytes)
    }

    /// Records that what `path` holds (about `bytes` of findings) was not kept.
    fn drop_finding(&mut self, path: &str, bytes: u64) -> Result<(), Exhausted> {
        let reason = format!(
            "what was found in {:?} needs about {bytes} bytes, more than the {} left of the \
             {}-byte analysis memory budget: dropped",
            truncate(path, MAX_REASON_PATH),
            self.budget.left(),
            self.budget.limit
        );
        self.dropped.get_or_insert_with(|| reason.clone());
        self.issue(path, reason)
    }

    fn charge(&mut self, bytes: u64) -> Result<(), Exhausted> {
        if self.budget.take(bytes) { Ok(()) } else { Err(Exhausted) }
    }
}

/// The analysis budget ran out.
struct Exhausted;

fn walk<R: Source>(archive: &mut TarStream<R>, limits: &Limits) -> io::Result<LayerReport> {
    let mut walk = Walk {
        report: LayerReport::default(),
        budget: Budget { limit: limits.max_analysis_bytes, used: 0 },
        unlisted_issues: 0,
        dropped: None,
    };
    let mut stopped_at = None;
    while let Some(entry) = archive.next_entry()? {
        let path = match &entry.path {
            Some(raw) => String::from_utf8_lossy(raw).into_owned(),
            None => String::new(),
        };
        if let Err(Exhausted) = analyze_entry(archive, entry, &path, &mut walk, limits)? {
            stopped_at = Some(path);
            break;
        }
    }
    let mut report = walk.report;
    if walk.unlisted_issues > 0 {
        report
            .issues
            .push(Issue { path: String::new(), message: format!("{} more issues in this layer are not listed", walk.unlisted_issues) });
    }
    if let Some(path) = stopped_at {
        let reason = format!(
            "analysis stopped at {:?}: the layer needs more than the {}-byte analysis memory \
             budget; what follows in the layer is not analysed",
            truncate(&path, MAX_REASON_PATH),
            limits.max_analysis_bytes
        );
        report.issues.push(Issue { path: truncate(&path, MAX_ISSUE_PATH), message: reason.clone() });
        report.incomplete = Some(reason);
    } else if let Some(reason) = walk.dropped {
        report.incomplete = Some(reason);
    }
    report.entries.sort_unstable();
    report.entries.dedup();
    report.entries.shrink_to_fit();
    Ok(report)
}

/// Records one entry. The outer error is the stream's; the inner one says the budget
/// ran out and the walk must stop.
fn analyze_entry<R: Source>(
    archive: &mut TarStream<R>,
    entry: tar_stream::Entry,
    raw_path: &str,
    walk: &mut Walk,
    limits: &Limits,
) -> io::Result<Result<(), Exhausted>> {
    if let Some(reason) = entry.dropped {
        // Nothing can be said of an entry whose name is unknown: a real file system has
        // no path of a megabyte.
        return Ok(walk.issue(raw_path, reason));
    }
    let path = match normalise(raw_path.as_bytes()) {
        Ok(path) => path,
        Err(message) => return Ok(walk.issue(raw_path, message.into())),
    };
    if path.is_empty() {
        return Ok(Ok(()));
    }
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
    if name == OPAQUE_MARKER {
        let dir = dir.to_owned();
        return Ok(walk.path(|r| &mut r.opaque_dirs, dir));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        // `.wh..wh.*` other than the opaque marker are aufs bookkeeping, not deletions.
        if !hidden.starts_with(WHITEOUT_PREFIX) {
            let hidden = join(dir, hidden);
            return Ok(walk.path(|r| &mut r.whiteouts, hidden));
        }
        return Ok(Ok(()));
    }
    let kind = entry.kind;
    if kind.is_dir() {
        return Ok(Ok(()));
    }
    if let Err(exhausted) = walk.entry(&path) {
        return Ok(Err(exhausted));
    }
    if kind == EntryType::GNUSparse {
        let wanted = Detector::for_path(&path).is_some() || rpm::is_sqlite_db(&path) || java::is_archive(&path);
        // A sparse file can claim any size at no cost, and its holes are not expanded
        // here; no tool that builds images writes one.
        if wanted {
            return Ok(walk.issue(&path, "sparse file: not analysed".to_owned()));
        }
        return Ok(Ok(()));
    }
    if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
        return Ok(Ok(()));
    }
    let size = entry.size;
    let executable = entry.mode.is_some_and(|mode| mode & 0o111 != 0);
    // The file being read is bounded by `max_file_bytes` and dropped once parsed; only
    // what the report keeps of it is charged to the budget.
    let outcome = match Detector::for_path(&path) {
        Some(detector) => read_file(archive, size, detector, &path, limits, walk.budget.left())?,
        None if rpm::is_sqlite_db(&path) => read_rpm_sqlite(archive, size, limits)?,
        None if java::is_archive(&path) => {
            let (found, error) = java::packages(archive, limits.max_layer_bytes);
            // A jar cut short by a broken layer stream shows as a corrupt jar; the
            // next tar header read reports the stream itself.
            Outcome { finding: packages(found), issue: error, ..Outcome::default() }
        }
        None if executable => read_executable(archive, size, limits)?,
        None => return Ok(Ok(())),
    };
    if let Some(bytes) = outcome.over_budget {
        return Ok(walk.drop_finding(&path, bytes));
    }
    if let Some(err) = outcome.issue
        && let Err(exhausted) = walk.issue(&path, err.to_string())
    {
        return Ok(Err(exhausted));
    }
    if let Some(finding) = outcome.finding {
        return Ok(walk.finding(path, finding));
    }
    Ok(Ok(()))
}

/// Roughly the heap and inline bytes a finding keeps.
fn finding_bytes(finding: &Finding) -> u64 {
    let string = |s: &str| s.len() as u64 + STRING_OVERHEAD;
    let optional = |s: &Option<String>| s.as_deref().map_or(0, string);
    match finding {
        Finding::OsRelease(os) => string(&os.id) + optional(&os.version_id) + optional(&os.version_codename) + optional(&os.pretty_name),
        Finding::Packages { packages } => packages
            .iter()
            .map(|p| {
                std::mem::size_of::<super::FoundPackage>() as u64
                    + p.name.len() as u64
                    + p.version.len() as u64
                    + optional(&p.source_name)
                    + optional(&p.source_version)
                    + optional(&p.arch)
                    + optional(&p.inner_path)
                    + p.files.len() as u64 * 8
            })
            .sum(),
        Finding::OwnedFiles { files } => files.len() as u64 * 8,
    }
}

/// At most `max` bytes of `text`, cut at a character boundary and marked as cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// What one file yields: a finding, a problem with the file, or (for a partly readable
/// archive) both.
#[derive(Default)]
struct Outcome {
    finding: Option<Finding>,
    issue: Option<ScanError>,
    /// Not parsed: what it would find needs about this many bytes, more than the
    /// analysis budget has left.
    over_budget: Option<u64>,
}

impl From<Result<Option<Finding>, ScanError>> for Outcome {
    fn from(result: Result<Option<Finding>, ScanError>) -> Self {
        match result {
            Ok(finding) => Self { finding, ..Self::default() },
            Err(err) => Self { issue: Some(err), ..Self::default() },
        }
    }
}

/// A file that a detector wants: read whole (under the cap) and parsed. The error
/// returned is the stream's; the file's own problems are in the outcome.
fn read_file(entry: &mut impl Read, size: u64, detector: Detector, path: &str, limits: &Limits, budget_left: u64) -> io::Result<Outcome> {
    if size > limits.max_file_bytes {
        let limit = limits.max_file_bytes;
        return Ok(Err(ScanError::TooLarge { size, limit }).into());
    }
    // Sized from the header (the entry holds exactly that much): grown by doubling, a
    // file would briefly take three times its size.
    let mut data = Vec::with_capacity(size as usize);
    entry.take(size).read_to_end(&mut data)?;
    // A package database of hundreds of thousands of records would take several times
    // its size while parsed: counted first, it is not parsed when the budget cannot
    // keep what it lists.
    let records = detector.records(&data);
    if records * PACKAGE_BYTES > budget_left {
        return Ok(Outcome { over_budget: Some(records * PACKAGE_BYTES), ..Outcome::default() });
    }
    Ok(detector.parse(path, &data).into())
}

/// The rpm database goes from the stream into SQLite's memory in one copy.
fn read_rpm_sqlite(entry: &mut impl Read, size: u64, limits: &Limits) -> io::Result<Outcome> {
    if size > limits.max_file_bytes {
        let limit = limits.max_file_bytes;
        return Ok(Err(ScanError::TooLarge { size, limit }).into());
    }
    Ok(rpm::parse_sqlite(entry, size).map(packages).into())
}

/// An executable: only ELF headers and the ranges they point to are read.
fn read_executable(entry: &mut impl Read, size: u64, limits: &Limits) -> io::Result<Outcome> {
    let Some(metadata) = elf::read_metadata(entry, size, limits.max_file_bytes)? else {
        return Ok(Outcome::default());
    };
    let mut found = golang::packages(&metadata.writable_start).unwrap_or_default();
    let mut issue = None;
    if let Some(section) = metadata.dep_v0 {
        match cargo_auditable::packages(&section, limits.max_file_bytes) {
            Ok(crates) => found.extend(crates),
            Err(err) => issue = Some(err),
        }
    }
    Ok(Outcome { finding: packages(found), issue, ..Outcome::default() })
}

/// Strips leading `/` and `./` and empty components; a `..` component is refused, since
/// such an entry would land outside the layer's root if it were ever extracted.
fn normalise(raw: &[u8]) -> Result<String, &'static str> {
    let text = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path has a `..` component: entry ignored"),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        // Sized up front: names can be long, and `format!` would grow by doubling.
        let mut joined = String::with_capacity(dir.len() + 1 + name.len());
        joined.push_str(dir);
        joined.push('/');
        joined.push_str(name);
        joined
    }
}

/// The detectors that read whole files, chosen by path alone so that other files' content
/// is skipped unread.
#[derive(Debug, Clone, Copy)]
enum Detector {
    OsRelease,
    DpkgStatus,
    DpkgFiles,
    Apk,
    Python,
    Npm,
    RpmBdb,
    RpmNdb,
    Gem,
    Composer,
}

impl Detector {
    fn for_path(path: &str) -> Option<Self> {
        if os_release::PATHS.contains(&path) {
            Some(Self::OsRelease)
        } else if let Some(kind) = dpkg::classify(path) {
            Some(match kind {
                dpkg::Kind::Status => Self::DpkgStatus,
                dpkg::Kind::Files => Self::DpkgFiles,
            })
        } else if apk::INSTALLED.contains(&path) {
            Some(Self::Apk)
        } else if python::is_metadata(path) {
            Some(Self::Python)
        } else if npm::is_manifest(path) {
            Some(Self::Npm)
        } else if rpm_legacy::is_bdb(path) {
            Some(Self::RpmBdb)
        } else if rpm_legacy::is_ndb(path) {
            Some(Self::RpmNdb)
        } else if gem::is_spec(path) {
            Some(Self::Gem)
        } else if composer::is_installed(path) {
            Some(Self::Composer)
        } else {
            None
        }
    }

    /// About how many packages `data` lists, counted without parsing it: records of the
    /// text databases are separated by blank lines, Composer's by `"name"` keys; the
    /// other files describe one package, or are binary databases read a record at a time.
    fn records(self, data: &[u8]) -> u64 {
        let count = |needle: &[u8]| data.windows(needle.len()).filter(|w| *w == needle).count() as u64;
        match self {
            Self::DpkgStatus | Self::Apk => count(b"\n\n") + 1,
            Self::Composer => count(b"\"name\""),
            _ => 1,
        }
    }

    fn parse(self, path: &str, data: &[u8]) -> Result<Option<Finding>, ScanError> {
        Ok(match self {
            Self::OsRelease => Some(Finding::OsRelease(os_release::parse(data))),
            Self::DpkgStatus => packages(dpkg::parse_status(data)?),
            Self::DpkgFiles => Some(Finding::OwnedFiles { files: dpkg::parse_file_list(path, data) }),
            Self::Apk => packages(apk::parse(data)?),
            Self::Python => packages(python::parse(data)?.into_iter().collect()),
            Self::Npm => packages(npm::parse(data)?.into_iter().collect()),
            Self::RpmBdb => packages(rpm::parse_legacy(data, false)?),
            Self::RpmNdb => packages(rpm::parse_legacy(data, true)?),
            Self::Gem => packages(vec![gem::parse(path, data)?]),
            Self::Composer => packages(composer::parse(data)?),
        })
    }
}

fn packages(packages: Vec<super::FoundPackage>) -> Option<Finding> {
    (!packages.is_empty()).then_some(Finding::Packages { packages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise(b"./usr//lib/./x").unwrap(), "usr/lib/x");
        assert_eq!(normalise(b"/etc/os-release").unwrap(), "etc/os-release");
        assert_eq!(normalise(b"./").unwrap(), "");
        assert!(normalise(b"usr/../../etc/passwd").is_err());
        assert!(normalise(b"..").is_err());
    }

    #[test]
    fn compression_is_sniffed() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(sniff(b"usr/\0\0\0"), Compression::None);
    }

    #[test]
    fn bounded_reader_stops_at_the_budget() {
        let mut exact = Bounded { inner: &[1u8; 4][..], remaining: 4 };
        assert_eq!(io::copy(&mut exact, &mut io::sink()).unwrap(), 4);
        let mut over = Bounded { inner: &[1u8; 5][..], remaining: 4 };
        let err = io::copy(&mut over, &mut io::sink()).unwrap_err();
        assert!(matches!(stream_error(err, &Limits::default()), ScanError::LayerTooLarge { .. }));
    }
}

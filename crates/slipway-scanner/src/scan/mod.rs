//! Scanning an image: every layer analysed once (or taken from a cache), the layers
//! merged into an inventory, and the inventory matched against advisories.
//!
//! The two halves are separate so that advisories can be loaded for the packages
//! found: [`Scanner::analyze`] reads the layers and returns an [`Analysis`], whose
//! [`Analysis::wanted`] names the packages to fetch advisories for, and
//! [`Analysis::match_advisories`] turns it into a [`ScanReport`].

mod cache;
mod ecosystem;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use slipway_oci::{Digest, Hasher};

use crate::ScanError;
use crate::analyzer::{Inventory, LayerIssue, LayerReport, Limits, OsRelease, Package, analyze_layer, merge};
use crate::cvss::{Band, PolicyClass, Severity};
use crate::image::{Image, ImageSource};
use crate::matcher::{self, AdvisoryIndex, SourcePackage};
use crate::osv::{Advisory, FixState};
use crate::version::Scheme;
pub use cache::{CacheKey, DirCache, LayerCache, MemoryCache};
pub use ecosystem::{OsvEcosystem, distribution_ecosystem, osv_ecosystem};

/// A layer's outcome, and its report unless it failed.
type Handled = (LayerOutcome, Option<LayerReport>);

/// Reads images' layers into inventories.
pub struct Scanner {
    limits: Limits,
    cache: Option<Box<dyn LayerCache>>,
    jobs: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner { limits: Limits::default(), cache: None, jobs: thread::available_parallelism().map_or(1, |n| n.get().min(4)) }
    }
}

/// What happens to one layer, for progress displays. Events of different layers
/// interleave when layers are read concurrently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerEvent {
    /// The layer's report came from the cache: nothing is read.
    Cached,
    /// Reading starts; `size` is the blob's size when the image says it.
    Started {
        size: Option<u64>,
    },
    /// `bytes` of the blob have been read so far.
    Read {
        bytes: u64,
    },
    Finished,
    Failed {
        error: String,
    },
}

/// How one layer was handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerState {
    /// Read and analysed: `bytes` of blob read.
    Analyzed { bytes: u64 },
    /// Taken from the cache.
    Cached,
    /// Not analysed: the image is scanned without it.
    Failed { error: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOutcome {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: Option<u64>,
    pub state: LayerState,
    /// Why the layer's analysis stopped short ([`LayerReport::incomplete`]): its report
    /// lacks the rest of the layer.
    pub incomplete: Option<String>,
    pub elapsed: Duration,
}

/// A package of the image and where its advisories are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedPackage {
    pub package: Package,
    /// `None` when no advisory database covers the package: it is listed, not checked.
    pub osv: Option<OsvEcosystem>,
    /// Why the package could not be checked (a version its ecosystem's ordering refuses).
    pub error: Option<String>,
}

impl ScannedPackage {
    /// The package as the matcher looks it up.
    fn query(&self) -> Option<matcher::Package<'_>> {
        let osv = self.osv.as_ref()?;
        let package = &self.package;
        let source = package.source_name.as_deref().map(|name| SourcePackage {
            name,
            // rpm's source version comes from the source rpm's file name, which has no
            // epoch: the binary's `epoch:version-release` is the one advisories compare.
            version: match package.ecosystem {
                crate::analyzer::Ecosystem::Rpm => None,
                _ => package.source_version.as_deref(),
            },
        });
        Some(matcher::Package {
            ecosystem: osv.name,
            release: osv.release.as_deref(),
            name: &package.name,
            version: &package.version,
            source,
        })
    }
}

/// The layers read and merged, before advisories are matched.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub image: Image,
    pub layers: Vec<LayerOutcome>,
    pub os: Option<OsRelease>,
    pub packages: Vec<ScannedPackage>,
    pub issues: Vec<LayerIssue>,
    pub elapsed: Duration,
}

/// The packages an analysis will look advisories up for, by OSV ecosystem and the name
/// that advisories use: a feed can be read keeping only the advisories that concern them.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    names: HashMap<String, HashSet<String>>,
}

impl Wanted {
    /// Whether any affected package of `advisory` is wanted.
    pub fn concerns(&self, advisory: &Advisory) -> bool {
        advisory.affected.iter().any(|entry| self.names.get(&entry.ecosystem).is_some_and(|names| names.contains(&entry.name)))
    }

    /// Wanted names per OSV ecosystem (`Debian`, `PyPI`), as advisories name them.
    pub fn names(&self) -> impl Iterator<Item = (&str, &HashSet<String>)> {
        self.names.iter().map(|(ecosystem, names)| (ecosystem.as_str(), names))
    }
}

/// An advisory that affects a package of the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vulnerability {
    /// Index of the affected package in [`ScanReport::packages`].
    pub package: usize,
    pub advisory_id: String,
    /// Aliases and upstream ids, CVE ids first.
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub status: FixState,
    /// The rating shown: the first of `severities`.
    pub severity: Option<Severity>,
    pub severities: Vec<Severity>,
}

impl Vulnerability {
    /// The store's policy class; `None` when no rating is known.
    pub fn class(&self) -> Option<PolicyClass> {
        self.severity.as_ref().map(|s| s.class)
    }

    pub fn band(&self) -> Option<Band> {
        self.severity.as_ref().map(|s| s.band)
    }

    /// The CVE id if the advisory has one, else its own id: the name people search for.
    pub fn display_id(&self) -> &str {
        self.aliases.iter().find(|alias| alias.starts_with("CVE-")).unwrap_or(&self.advisory_id)
    }
}

/// Time spent per phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub analysis: Duration,
    pub matching: Duration,
}

/// Everything a scan found.
#[derive(Clone, Debug)]
pub struct ScanReport {
    pub image: Image,
    pub os: Option<OsRelease>,
    /// The OSV ecosystem of the image's distribution, when one covers it.
    pub distribution: Option<OsvEcosystem>,
    pub packages: Vec<ScannedPackage>,
    /// Most severe first.
    pub vulnerabilities: Vec<Vulnerability>,
    pub layers: Vec<LayerOutcome>,
    /// Files inside layers that could not be read; the rest of each layer counts.
    pub issues: Vec<LayerIssue>,
    pub timings: Timings,
}

impl ScanReport {
    /// Whether every layer was analysed whole: a failed layer's packages are missing, and
    /// so are those past where an incomplete layer's analysis stopped.
    pub fn is_complete(&self) -> bool {
        !self.layers.iter().any(|l| matches!(l.state, LayerState::Failed { .. }) || l.incomplete.is_some())
    }

    /// Keeps the vulnerabilities that `filter` accepts.
    pub fn retain(&mut self, filter: &Filter) {
        self.vulnerabilities.retain(|v| filter.accepts(v));
    }
}

/// Which severities a report keeps. `None` in a list stands for "no rating known".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SeveritySelection {
    #[default]
    All,
    /// The store's policy classes.
    Classes(Vec<Option<PolicyClass>>),
    /// CVSS qualitative bands.
    Bands(Vec<Option<Band>>),
}

/// Which vulnerabilities a report keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub severity: SeveritySelection,
    /// Drops vulnerabilities without a fixed version.
    pub ignore_unfixed: bool,
}

impl Filter {
    pub fn accepts(&self, vulnerability: &Vulnerability) -> bool {
        let severity = match &self.severity {
            SeveritySelection::All => true,
            SeveritySelection::Classes(classes) => classes.contains(&vulnerability.class()),
            SeveritySelection::Bands(bands) => bands.contains(&vulnerability.band()),
        };
        severity && !(self.ignore_unfixed && vulnerability.status != FixState::FixAvailable)
    }
}

impl Scanner {
    /// Bounds on what one layer may cost.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Layer reports are looked up in `cache` before a layer is read, and stored after.
    pub fn cache(mut self, cache: impl LayerCache + 'static) -> Self {
        self.cache = Some(Box::new(cache));
        self
    }

    /// How many layers are read at once (at least one).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Analyses and matches in one call.
    pub fn scan(&self, source: &dyn ImageSource, advisories: &AdvisoryIndex, progress: &(dyn Fn(usize, LayerEvent) + Sync)) -> ScanReport {
        self.analyze(source, progress).match_advisories(advisories)
    }

    /// Reads every layer that the cache lacks (each once, as a stream), and merges them.
    /// A layer that cannot be read, does not decode, or whose bytes do not match its
    /// digest is reported in [`Analysis::layers`] and left out; the scan goes on.
    /// `progress` hears each layer's events, by layer index.
    pub fn analyze(&self, source: &dyn ImageSource, progress: &(dyn Fn(usize, LayerEvent) + Sync)) -> Analysis {
        let started = Instant::now();
        let image = source.image();
        let count = image.layers.len();
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Handled>>> = (0..count).map(|_| Mutex::new(None)).collect();
        thread::scope(|scope| {
            for _ in 0..self.jobs.min(count) {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            break;
                        }
                        let result = self.layer(source, index, progress);
                        *results[index].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                    }
                });
            }
        });

        let mut layers = Vec::with_capacity(count);
        let mut reports = Vec::with_capacity(count);
        for (slot, layer) in results.into_iter().zip(&image.layers) {
            let (outcome, report) = slot.into_inner().unwrap_or_else(|p| p.into_inner()).expect("every layer is handled by a worker");
            if let Some(report) = report {
                reports.push((layer.digest.to_string(), report));
            }
            layers.push(outcome);
        }
        let Inventory { os, packages, issues } = merge(&reports);
        let packages = packages
            .into_iter()
            .map(|package| ScannedPackage { osv: osv_ecosystem(package.ecosystem, os.as_ref()), package, error: None })
            .collect();
        Analysis { image: image.clone(), layers, os, packages, issues, elapsed: started.elapsed() }
    }

    fn layer(&self, source: &dyn ImageSource, index: usize, progress: &(dyn Fn(usize, LayerEvent) + Sync)) -> Handled {
        let started = Instant::now();
        let layer = &source.image().layers[index];
        let key = CacheKey::current(&layer.digest);
        let outcome = |state, report: Option<&LayerReport>| LayerOutcome {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            size: layer.size,
            state,
            incomplete: report.and_then(|r| r.incomplete.clone()),
            elapsed: started.elapsed(),
        };
        if let Some(cache) = &self.cache {
            match cache.get(&key) {
                Ok(Some(report)) => {
                    progress(index, LayerEvent::Cached);
                    return (outcome(LayerState::Cached, Some(&report)), Some(report));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(layer = %layer.digest, "layer cache unreadable, reading the layer: {error}");
                }
            }
        }
        progress(index, LayerEvent::Started { size: layer.size });
        match self.read_layer(source, index, progress) {
            Ok((report, bytes)) => {
                if let Some(cache) = &self.cache
                    && let Err(error) = cache.put(&key, &report)
                {
                    tracing::warn!(layer = %layer.digest, "layer report not cached: {error}");
                }
                progress(index, LayerEvent::Finished);
                (outcome(LayerState::Analyzed { bytes }, Some(&report)), Some(report))
            }
            Err(error) => {
                let error = error.to_string();
                progress(index, LayerEvent::Failed { error: error.clone() });
                (outcome(LayerState::Failed { error }, None), None)
            }
        }
    }

    /// Analyses one layer in one pass, hashing the bytes as they are read.
    fn read_layer(
        &self,
        source: &dyn ImageSource,
        index: usize,
        progress: &(dyn Fn(usize, LayerEvent) + Sync),
    ) -> Result<(LayerReport, u64), ScanError> {
        let layer = &source.image().layers[index];
        let report_read = |bytes| progress(index, LayerEvent::Read { bytes });
        let mut reader = Tracked {
            inner: source.open_layer(index)?,
            hasher: layer.digest.algorithm().hasher(),
            bytes: 0,
            reported: 0,
            progress: &report_read,
        };
        let analysed = analyze_layer(&mut reader, layer.compression(), &self.limits);
        // The analyzer stops where the compressed stream ends, or at an error; the
        // digest covers every byte. Bytes that are not the layer's explain a corrupt
        // stream better than the decoder's complaint does.
        io::copy(&mut reader, &mut io::sink())?;
        (reader.progress)(reader.bytes);
        let bytes = reader.bytes;
        let actual = reader.hasher.finish();
        if actual != layer.digest {
            return Err(ScanError::DigestMismatch { expected: layer.digest.to_string(), actual: actual.to_string() });
        }
        Ok((analysed?, bytes))
    }
}

/// Hashes and counts what passes through, reporting progress every few hundred KiB.
struct Tracked<'p, R> {
    inner: R,
    hasher: Hasher,
    bytes: u64,
    reported: u64,
    progress: &'p dyn Fn(u64),
}

impl<R: Read> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.bytes += read as u64;
        if self.bytes - self.reported >= 256 << 10 {
            self.reported = self.bytes;
            (self.progress)(self.bytes);
        }
        Ok(read)
    }
}

impl Analysis {
    /// The packages whose advisories the match will look up.
    pub fn wanted(&self) -> Wanted {
        let mut wanted = Wanted::default();
        for query in self.packages.iter().filter_map(ScannedPackage::query) {
            let (ecosystem, name) = query.advisory_key();
            wanted.names.entry(ecosystem.to_owned()).or_default().insert(name);
        }
        wanted
    }

    /// Matches every covered package against `advisories`. A package whose version its
    /// ecosystem's ordering refuses is reported with the error, unchecked.
    pub fn match_advisories(self, advisories: &AdvisoryIndex) -> ScanReport {
        let started = Instant::now();
        let mut packages = self.packages;
        let mut vulnerabilities = Vec::new();
        for (index, scanned) in packages.iter_mut().enumerate() {
            let Some(query) = scanned.query() else {
                continue;
            };
            let Some(scheme) = Scheme::for_ecosystem(query.ecosystem) else {
                continue;
            };
            match advisories.findings(&query, &scheme) {
                Ok(findings) => vulnerabilities.extend(findings.into_iter().map(|finding| vulnerability(index, finding, advisories))),
                Err(error) => scanned.error = Some(error.to_string()),
            }
        }
        vulnerabilities.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| packages[a.package].package.name.cmp(&packages[b.package].package.name))
                .then_with(|| a.advisory_id.cmp(&b.advisory_id))
        });
        let distribution = self.os.as_ref().and_then(distribution_ecosystem);
        ScanReport {
            image: self.image,
            os: self.os,
            distribution,
            packages,
            vulnerabilities,
            layers: self.layers,
            issues: self.issues,
            timings: Timings { analysis: self.elapsed, matching: started.elapsed() },
        }
    }
}

/// Sort key: class (Critical first, unrated last), then score, highest first.
fn rank(vulnerability: &Vulnerability) -> (u8, std::cmp::Reverse<u8>) {
    let class = match vulnerability.class() {
        Some(PolicyClass::Critical) => 0,
        Some(PolicyClass::Major) => 1,
        Some(PolicyClass::Minor) => 2,
        None => 3,
    };
    let score = vulnerability.severity.as_ref().and_then(|s| s.score).map_or(0, |s| s.tenths());
    (class, std::cmp::Reverse(score))
}

fn vulnerability(package: usize, finding: matcher::Finding, advisories: &AdvisoryIndex) -> Vulnerability {
    let advisory = advisories.get(&finding.advisory_id);
    Vulnerability {
        package,
        summary: advisory.and_then(|a| a.summary.clone()),
        details: advisory.and_then(|a| a.details.clone()),
        published: advisory.and_then(|a| a.published.clone()),
        modified: advisory.map(|a| a.modified.clone()),
        advisory_id: finding.advisory_id,
        aliases: finding.aliases,
        installed_version: finding.installed_version,
        fixed_version: finding.fixed_version,
        status: finding.status,
        severity: finding.severity,
        severities: finding.severities,
    }
}

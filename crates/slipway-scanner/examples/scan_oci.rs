//! Scans the one image of an OCI image layout with the layer analyzer: the harness of
//! `bench/scan.sh`, independent of the `slipway scan` CLI.
//!
//! ```text
//! scan_oci [--cache DIR] [--feed PATH]... [--out FILE] LAYOUT
//! ```
//!
//! Each layer is analyzed from its blob, or with `--cache` read from
//! `DIR/<algorithm>-<hex>.v<ANALYZER_VERSION>.json` when an earlier run stored it there
//! (the warm path: cached layer reports, then merge and matching only). `--feed` imports
//! OSV records (files, directories, zip archives) and matches the inventory against
//! them. `--out` writes the inventory as JSON. One line of `key=value` timings goes to
//! stderr, with the peak resident memory (VmHWM) of the process.

use slipway_scanner::analyzer::{Compression, Ecosystem, Inventory, LayerReport, Limits, analyze_layer, merge};
use slipway_scanner::matcher::{AdvisoryIndex, Package, SourcePackage};
use slipway_scanner::osv::import_path;
use slipway_scanner::version::Scheme;
use std::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct Args {
    cache: Option<PathBuf>,
    feeds: Vec<PathBuf>,
    out: Option<PathBuf>,
    layout: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args_os().skip(1);
    let (mut cache, mut feeds, mut out, mut layout) = (None, Vec::new(), None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().map(PathBuf::from).ok_or("a flag lacks its value");
        match arg.to_str() {
            Some("--cache") => cache = Some(value()?),
            Some("--feed") => feeds.push(value()?),
            Some("--out") => out = Some(value()?),
            Some(flag) if flag.starts_with("--") => {
                return Err(format!("unknown flag {flag}").into());
            }
            _ => layout = Some(PathBuf::from(arg)),
        }
    }
    let layout = layout.ok_or("usage: scan_oci [--cache DIR] [--feed PATH]... [--out FILE] LAYOUT")?;
    Ok(Args { cache, feeds, out, layout })
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let file = File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(serde_json::from_reader(BufReader::new(file))?)
}

fn blob(layout: &Path, digest: &str) -> Result<PathBuf> {
    let (algorithm, hex) = digest.split_once(':').ok_or("digest without algorithm")?;
    Ok(layout.join("blobs").join(algorithm).join(hex))
}

/// The layers of the layout's only image: (digest, media type), bottom first.
fn layers(layout: &Path) -> Result<Vec<(String, String)>> {
    let index = read_json(&layout.join("index.json"))?;
    let manifests = index["manifests"].as_array().ok_or("index without manifests")?;
    let [descriptor] = &manifests[..] else {
        return Err(format!("{} images in the layout, expected one", manifests.len()).into());
    };
    let digest = descriptor["digest"].as_str().ok_or("manifest without digest")?;
    let manifest = read_json(&blob(layout, digest)?)?;
    manifest["layers"]
        .as_array()
        .ok_or("manifest without layers")?
        .iter()
        .map(|layer| {
            let field = |name: &str| layer[name].as_str().map(str::to_owned).ok_or_else(|| format!("layer without {name}"));
            Ok((field("digest")?, field("mediaType")?))
        })
        .collect()
}

#[derive(Default)]
struct Timings {
    analyze: Duration,
    load: Duration,
    store: Duration,
    merge: Duration,
    import: Duration,
    index: Duration,
    matching: Duration,
}

fn cache_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join(format!("{}.v{}.json", digest.replace(':', "-"), slipway_scanner::analyzer::ANALYZER_VERSION))
}

/// Each layer's report, from the cache when it holds one; the count of cached ones.
fn reports(args: &Args, timings: &mut Timings) -> Result<(Vec<(String, LayerReport)>, usize)> {
    let mut reports = Vec::new();
    let mut cached = 0;
    for (digest, media_type) in layers(&args.layout)? {
        let cached_at = args.cache.as_deref().map(|dir| cache_path(dir, &digest));
        let started = Instant::now();
        if let Some(path) = cached_at.as_deref().filter(|path| path.exists()) {
            let report: LayerReport = serde_json::from_reader(BufReader::new(File::open(path)?))?;
            timings.load += started.elapsed();
            reports.push((digest, report));
            cached += 1;
            continue;
        }
        let file = File::open(blob(&args.layout, &digest)?)?;
        let report = analyze_layer(file, Compression::from_media_type(&media_type), &Limits::default())
            .map_err(|err| format!("layer {digest}: {err}"))?;
        timings.analyze += started.elapsed();
        if let Some(path) = cached_at {
            let started = Instant::now();
            let mut out = BufWriter::new(File::create(path)?);
            serde_json::to_writer(&mut out, &report)?;
            out.flush()?;
            timings.store += started.elapsed();
        }
        reports.push((digest, report));
    }
    Ok((reports, cached))
}

/// The OSV ecosystem an inventory package is matched in, with its release.
fn osv_ecosystem(ecosystem: Ecosystem, inventory: &Inventory) -> Option<(&'static str, Option<&str>)> {
    let os = inventory.os.as_ref();
    let release = os.and_then(|os| os.version_id.as_deref());
    Some(match ecosystem {
        Ecosystem::Deb => (
            match os?.id.as_str() {
                "debian" => "Debian",
                "ubuntu" => "Ubuntu",
                _ => return None,
            },
            release,
        ),
        Ecosystem::Apk => ("Alpine", release),
        Ecosystem::Rpm => return None,
        Ecosystem::PyPI => ("PyPI", None),
        Ecosystem::Npm => ("npm", None),
        Ecosystem::Go => ("Go", None),
        Ecosystem::CratesIo => ("crates.io", None),
        Ecosystem::Maven => ("Maven", None),
        Ecosystem::RubyGems => ("RubyGems", None),
        Ecosystem::Packagist => ("Packagist", None),
    })
}

/// Matches every package; the number of findings.
fn match_all(index: &AdvisoryIndex, inventory: &Inventory) -> Result<usize> {
    let mut findings = 0;
    for package in &inventory.packages {
        let Some((ecosystem, release)) = osv_ecosystem(package.ecosystem, inventory) else {
            continue;
        };
        let Some(scheme) = Scheme::for_ecosystem(ecosystem) else {
            continue;
        };
        let query = Package {
            ecosystem,
            release,
            name: &package.name,
            version: &package.version,
            source: package.source_name.as_deref().map(|name| SourcePackage { name, version: package.source_version.as_deref() }),
        };
        let order = |a: &str, b: &str| scheme.compare(a, b);
        findings += index.findings(&query, &order)?.len();
    }
    Ok(findings)
}

/// Peak resident memory of this process in KiB, where /proc tells it.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut timings = Timings::default();
    let (reports, cached) = reports(&args, &mut timings)?;
    let started = Instant::now();
    let inventory = merge(&reports);
    timings.merge = started.elapsed();

    let mut findings = None;
    if !args.feeds.is_empty() {
        let started = Instant::now();
        let mut advisories = Vec::new();
        for feed in &args.feeds {
            advisories.extend(import_path(feed)?.advisories);
        }
        timings.import = started.elapsed();
        let started = Instant::now();
        let index = AdvisoryIndex::new(advisories);
        timings.index = started.elapsed();
        let started = Instant::now();
        findings = Some(match_all(&index, &inventory)?);
        timings.matching = started.elapsed();
    }
    if let Some(path) = &args.out {
        let mut out = BufWriter::new(File::create(path)?);
        serde_json::to_writer(&mut out, &inventory)?;
        out.flush()?;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "layers={} cached={cached} packages={} issues={} findings={} analyze_ms={:.1} load_ms={:.1} \
         store_ms={:.1} merge_ms={:.1} import_ms={:.1} index_ms={:.1} match_ms={:.1} vmhwm_kib={}",
        reports.len(),
        inventory.packages.len(),
        inventory.issues.len(),
        findings.map_or_else(|| "-".to_owned(), |n| n.to_string()),
        ms(timings.analyze),
        ms(timings.load),
        ms(timings.store),
        ms(timings.merge),
        ms(timings.import),
        ms(timings.index),
        ms(timings.matching),
        vm_hwm_kib().map_or_else(|| "-".to_owned(), |kib| kib.to_string()),
    );
    Ok(())
}

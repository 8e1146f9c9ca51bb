//! Whole scans: test images written as OCI layouts and `docker save` archives, read
//! back through the image sources, analysed (through a cache), and matched against the
//! test feed.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use slipway_scanner::ScanError;
use slipway_scanner::cvss::{Band, PolicyClass};
use slipway_scanner::fixtures::{ImageFixture, LayerBuilder, debian_python_image, sha256};
use slipway_scanner::image::{DockerArchive, Image, ImageSource, OciLayout, Platform};
use slipway_scanner::matcher::AdvisoryIndex;
use slipway_scanner::osv::{FixState, import_path};
use slipway_scanner::scan::{DirCache, Filter, LayerEvent, LayerState, MemoryCache, ScanReport, Scanner, SeveritySelection};

use super::feed::good_dir;

fn feed() -> AdvisoryIndex {
    AdvisoryIndex::new(import_path(&good_dir()).unwrap().advisories)
}

fn quiet(_: usize, _: LayerEvent) {}

/// (package, advisory, fixed version, fix state, class, band) of each vulnerability.
type Row = (&'static str, &'static str, Option<&'static str>, FixState, Option<PolicyClass>, Option<Band>);

/// A [`Row`] with owned strings.
type OwnedRow = (String, String, Option<String>, FixState, Option<PolicyClass>, Option<Band>);

fn rows(report: &ScanReport) -> Vec<OwnedRow> {
    report
        .vulnerabilities
        .iter()
        .map(|v| {
            (report.packages[v.package].package.name.clone(), v.advisory_id.clone(), v.fixed_version.clone(), v.status, v.class(), v.band())
        })
        .collect()
}

fn owned(rows: &[Row]) -> Vec<OwnedRow> {
    rows.iter()
        .map(|&(package, id, fixed, state, class, band)| (package.to_owned(), id.to_owned(), fixed.map(str::to_owned), state, class, band))
        .collect()
}

use FixState::{FixAvailable, Unfixed, WillNotFix};
use PolicyClass::{Critical, Major, Minor};

/// What the Debian-and-Python fixture has, most severe first.
const EXPECTED: &[Row] = &[
    ("openssh-client", "DEBIAN-CVE-2024-6387", Some("1:9.2p1-2+deb12u3"), FixAvailable, Some(Critical), Some(Band::High)),
    ("PyYAML", "GHSA-8q59-q68h-6hv4", Some("5.4"), FixAvailable, Some(Critical), Some(Band::Critical)),
    ("libgcc-s1", "DEBIAN-CVE-2023-4039", None, Unfixed, Some(Major), Some(Band::Medium)),
    ("requests", "GHSA-j8r2-6x86-q33q", Some("2.31.0"), FixAvailable, Some(Major), Some(Band::Medium)),
    ("apt", "DEBIAN-CVE-2011-3374", None, WillNotFix, Some(Minor), Some(Band::Low)),
    ("libssl3", "DEBIAN-CVE-2023-5678", Some("3.0.13-1~deb12u1"), FixAvailable, Some(Minor), Some(Band::Low)),
    ("openssl", "DEBIAN-CVE-2023-5678", Some("3.0.13-1~deb12u1"), FixAvailable, Some(Minor), Some(Band::Low)),
];

fn assert_expected(report: &ScanReport, fixture: &ImageFixture) {
    assert!(report.is_complete(), "{:?}", report.layers);
    assert_eq!(rows(report), owned(EXPECTED));
    assert_eq!(report.distribution.as_ref().map(ToString::to_string).as_deref(), Some("Debian:12"));
    assert_eq!(report.packages.len(), 9, "six Debian packages and three Python ones");
    assert!(report.packages.iter().all(|p| p.osv.is_some() && p.error.is_none()));
    // Each package is attributed to the layer that installed it.
    let layer_of = |name: &str| {
        let package = report.packages.iter().find(|p| p.package.name == name).unwrap();
        package.package.layer.clone()
    };
    let digests: Vec<String> = report.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(layer_of("zlib1g"), digests[0]);
    assert_eq!(layer_of("Jinja2"), digests[1]);
    assert_eq!(report.image.config_digest, Some(sha256(&fixture.config)));
    assert_eq!(report.image.platform, Some("linux/amd64".parse().unwrap()));
}

#[test]
fn oci_layout_end_to_end() {
    let fixture = debian_python_image();
    let dir = tempfile::tempdir().unwrap();
    fixture.write_oci_layout(dir.path(), "1.0").unwrap();
    let source = OciLayout::open(dir.path(), Some("1.0"), None, "oci:image:1.0").unwrap();
    assert_eq!(source.image().digest, Some(sha256(&fixture.manifest())));
    let report = Scanner::default().scan(&source, &feed(), &quiet);
    assert_expected(&report, &fixture);
    assert_eq!(report.image.name, "oci:image:1.0");

    // The only image is found without its tag; a wrong tag names the ones there are.
    assert!(OciLayout::open(dir.path(), None, None, "x").is_ok());
    let error = OciLayout::open(dir.path(), Some("2.0"), None, "x").unwrap_err().to_string();
    assert!(error.contains("no image tagged \"2.0\"") && error.contains("tags 1.0"), "{error}");
    let error = OciLayout::open(&dir.path().join("none"), None, None, "x").unwrap_err().to_string();
    assert!(error.contains("is it an OCI image layout?"), "{error}");
}

#[test]
fn docker_archives_end_to_end() {
    let fixture = debian_python_image();
    let dir = tempfile::tempdir().unwrap();
    for legacy in [true, false] {
        let path = dir.path().join(format!("image-{legacy}.tar"));
        fixture.write_docker_archive(&path, "example/app:1.0", legacy).unwrap();
        let source = DockerArchive::open(&path, None, "docker-archive:image.tar").unwrap();
        assert_eq!(source.image().digest, None);
        // Layers are named by the digests of the uncompressed tars the archive holds.
        let digests: Vec<_> = source.image().layers.iter().map(|l| l.digest.clone()).collect();
        let tars: Vec<_> = fixture.layers.iter().map(|(tar, _)| sha256(tar)).collect();
        assert_eq!(digests, tars);
        let report = Scanner::default().scan(&source, &feed(), &quiet);
        assert_expected(&report, &fixture);

        assert!(DockerArchive::open(&path, Some("example/app:1.0"), "x").is_ok());
        let error = DockerArchive::open(&path, Some("example/app:2.0"), "x").unwrap_err().to_string();
        assert!(error.contains("tags example/app:1.0"), "{error}");
    }

    let compressed = dir.path().join("image.tar.gz");
    fs::write(&compressed, slipway_scanner::fixtures::gzip(b"not read")).unwrap();
    let error = DockerArchive::open(&compressed, None, "x").unwrap_err().to_string();
    assert!(error.contains("decompress it first"), "{error}");
}

/// Counts the bytes read from any layer, around another source.
struct Counting<S> {
    inner: S,
    read: AtomicU64,
}

struct CountingReader<'c, R> {
    inner: R,
    read: &'c AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

impl<S: ImageSource> ImageSource for Counting<S> {
    fn image(&self) -> &Image {
        self.inner.image()
    }

    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ScanError> {
        Ok(Box::new(CountingReader { inner: self.inner.open_layer(index)?, read: &self.read }))
    }
}

#[test]
fn cached_layers_are_not_read_again() {
    let fixture = debian_python_image();
    let dir = tempfile::tempdir().unwrap();
    fixture.write_oci_layout(&dir.path().join("image"), "1.0").unwrap();
    let open = || Counting { inner: OciLayout::open(&dir.path().join("image"), None, None, "oci:image").unwrap(), read: AtomicU64::new(0) };
    let blob_bytes: u64 = fixture.layers.iter().map(|(_, blob)| blob.len() as u64).sum();

    let cache_dir = dir.path().join("cache");
    let first = open();
    let events = Mutex::new(Vec::new());
    let record = |layer: usize, event: LayerEvent| events.lock().unwrap().push((layer, event));
    let report = Scanner::default().cache(DirCache::new(&cache_dir)).scan(&first, &feed(), &record);
    assert_eq!(first.read.load(Ordering::Relaxed), blob_bytes);
    assert!(report.layers.iter().all(|l| matches!(l.state, LayerState::Analyzed { .. })));
    // Each layer starts, reports the whole blob read, and finishes.
    for (index, (_, blob)) in fixture.layers.iter().enumerate() {
        let mine: Vec<LayerEvent> = events.lock().unwrap().iter().filter(|(l, _)| *l == index).map(|(_, e)| e.clone()).collect();
        let size = blob.len() as u64;
        assert_eq!(mine.first(), Some(&LayerEvent::Started { size: Some(size) }));
        assert!(mine.contains(&LayerEvent::Read { bytes: size }), "{mine:?}");
        assert_eq!(mine.last(), Some(&LayerEvent::Finished));
    }

    // A new scanner on the same directory reads nothing and finds the same.
    let second = open();
    let cached = Scanner::default().cache(DirCache::new(&cache_dir)).scan(&second, &feed(), &quiet);
    assert_eq!(second.read.load(Ordering::Relaxed), 0);
    assert!(cached.layers.iter().all(|l| l.state == LayerState::Cached));
    assert_expected(&cached, &fixture);

    // The same with the memory cache, within one scanner.
    let scanner = Scanner::default().cache(MemoryCache::default()).jobs(1);
    let (third, fourth) = (open(), open());
    scanner.scan(&third, &feed(), &quiet);
    scanner.scan(&fourth, &feed(), &quiet);
    assert_eq!(third.read.load(Ordering::Relaxed), blob_bytes);
    assert_eq!(fourth.read.load(Ordering::Relaxed), 0);
}

#[test]
fn a_layer_that_fails_its_digest_is_reported_and_left_out() {
    let fixture = debian_python_image();
    let dir = tempfile::tempdir().unwrap();
    fixture.write_oci_layout(dir.path(), "1.0").unwrap();
    // Swap the Python layer's bytes for another valid layer.
    let python = sha256(&fixture.layers[1].1);
    let other = LayerBuilder::default()
        .file("usr/local/lib/python3.11/site-packages/six-1.0.dist-info/METADATA", b"Name: six\nVersion: 1.0\n")
        .gzip();
    fs::write(dir.path().join("blobs/sha256").join(python.hex()), other).unwrap();

    let cache = dir.path().join("cache");
    let source = OciLayout::open(dir.path(), None, None, "x").unwrap();
    let report = Scanner::default().cache(DirCache::new(&cache)).scan(&source, &feed(), &quiet);
    assert!(!report.is_complete());
    let LayerState::Failed { error } = &report.layers[1].state else {
        panic!("{:?}", report.layers[1]);
    };
    assert!(error.starts_with(&format!("digest mismatch: expected {python}, read sha256:")), "{error}");
    // The base layer still counts; nothing from the swapped layer does, and it is not cached.
    assert!(report.packages.iter().any(|p| p.package.name == "openssh-client"));
    assert!(!report.packages.iter().any(|p| p.package.name == "six" || p.package.name == "requests"));
    assert!(!cache.join("v1/sha256").join(format!("{}.json", python.hex())).exists());

    // A missing blob fails its layer the same way.
    fs::remove_file(dir.path().join("blobs/sha256").join(python.hex())).unwrap();
    let report = Scanner::default().scan(&source, &feed(), &quiet);
    assert!(matches!(&report.layers[1].state, LayerState::Failed { error } if error.contains("cannot read blob")));
}

/// Writes `value` as a blob of the layout; returns its digest and size.
fn put_blob(dir: &Path, value: &serde_json::Value) -> (String, usize) {
    let bytes = serde_json::to_vec(value).unwrap();
    let digest = sha256(&bytes);
    fs::write(dir.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    (digest.to_string(), bytes.len())
}

#[test]
fn multi_platform_indexes_pick_a_platform() {
    let dir = tempfile::tempdir().unwrap();
    let amd64 = debian_python_image();
    amd64.write_oci_layout(dir.path(), "amd64-only").unwrap();
    let arm = ImageFixture::new(vec![LayerBuilder::default().file("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n").tar()]);
    let blobs = dir.path().join("blobs/sha256");
    for bytes in [arm.config.clone(), arm.manifest(), arm.layers[0].1.clone()] {
        fs::write(blobs.join(sha256(&bytes).hex()), &bytes).unwrap();
    }
    let descriptor = |manifest: &[u8], platform: serde_json::Value| {
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(manifest).to_string(),
            "size": manifest.len(),
            "platform": platform,
        })
    };
    let (index_digest, index_size) = put_blob(
        dir.path(),
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                descriptor(&amd64.manifest(), json!({"os": "linux", "architecture": "amd64"})),
                descriptor(&arm.manifest(), json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
                descriptor(b"attestation", json!({"os": "unknown", "architecture": "unknown"})),
            ],
        }),
    );
    fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest, "size": index_size,
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }],
        }))
        .unwrap(),
    )
    .unwrap();

    let arm64: Platform = "linux/arm64".parse().unwrap();
    let chosen = OciLayout::open(dir.path(), Some("multi"), Some(&arm64), "x").unwrap();
    assert_eq!(chosen.image().digest, Some(sha256(&arm.manifest())));
    let amd64_chosen = OciLayout::open(dir.path(), Some("multi"), Some(&"linux/amd64".parse().unwrap()), "x").unwrap();
    assert_eq!(amd64_chosen.image().digest, Some(sha256(&amd64.manifest())));
    let error = OciLayout::open(dir.path(), Some("multi"), Some(&"linux/riscv64".parse().unwrap()), "x").unwrap_err().to_string();
    assert!(error.contains("linux/amd64, linux/arm64/v8"), "{error}");
    let report = Scanner::default().scan(&chosen, &feed(), &quiet);
    assert_eq!(report.os.unwrap().id, "alpine");
}

#[test]
fn feeds_can_be_read_for_the_wanted_packages_only() {
    let fixture = debian_python_image();
    let dir = tempfile::tempdir().unwrap();
    fixture.write_oci_layout(dir.path(), "1.0").unwrap();
    let source = OciLayout::open(dir.path(), None, None, "x").unwrap();
    let analysis = Scanner::default().analyze(&source, &quiet);
    let wanted = analysis.wanted();
    let mut kept = Vec::new();
    slipway_scanner::osv::Importer::default()
        .import_with(&good_dir(), |advisory| {
            if wanted.concerns(&advisory) {
                kept.push(advisory);
            }
        })
        .unwrap();
    let mut ids: Vec<&str> = kept.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    // The advisories naming packages of the image, whatever the release or version
    // (DSA-5532-1 is for bullseye's openssl), and no others.
    assert_eq!(
        ids,
        [
            "DEBIAN-CVE-2011-3374",
            "DEBIAN-CVE-2022-37434",
            "DEBIAN-CVE-2023-4039",
            "DEBIAN-CVE-2023-48795",
            "DEBIAN-CVE-2023-5678",
            "DEBIAN-CVE-2024-6387",
            "DSA-5532-1",
            "GHSA-8q59-q68h-6hv4",
            "GHSA-h5c8-rqwp-cp95",
            "GHSA-j8r2-6x86-q33q",
        ]
    );
    let report = analysis.match_advisories(&AdvisoryIndex::new(kept));
    assert_eq!(rows(&report), owned(EXPECTED));
}

#[test]
fn filters_keep_severities_and_fixed_findings() {
    let dir = tempfile::tempdir().unwrap();
    debian_python_image().write_oci_layout(dir.path(), "1.0").unwrap();
    let source = OciLayout::open(dir.path(), None, None, "x").unwrap();
    let report = Scanner::default().scan(&source, &feed(), &quiet);
    let kept = |filter: Filter| {
        let mut report = report.clone();
        report.retain(&filter);
        report.vulnerabilities.iter().map(|v| report.packages[v.package].package.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        kept(Filter { severity: SeveritySelection::Classes(vec![Some(Critical)]), ignore_unfixed: false }),
        ["openssh-client", "PyYAML"]
    );
    assert_eq!(kept(Filter { severity: SeveritySelection::Bands(vec![Some(Band::Critical)]), ignore_unfixed: false }), ["PyYAML"]);
    assert_eq!(
        kept(Filter { severity: SeveritySelection::Classes(vec![Some(Major), Some(Minor)]), ignore_unfixed: true }),
        ["requests", "libssl3", "openssl"]
    );
    assert_eq!(kept(Filter { severity: SeveritySelection::Classes(vec![None]), ignore_unfixed: false }), Vec::<String>::new());
}

//! Layers built to exhaust the analyzer's memory: huge GNU long names and PAX headers,
//! many of them, and more entries and findings than the analysis budget allows. Each
//! test measures the heap's peak while the layer is analysed, through a counting
//! allocator, so these tests run one at a time.
//!
//! The bug pinned here: the `tar` crate read every long name and PAX header whole into
//! memory, so a 0.5 MB layer took 1.3 GB of a server scanning it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use slipway_scanner::analyzer::{Compression, LayerReport, Limits, analyze_layer};
use tar::{EntryType, Header};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time: the counters are global.
static SERIAL: Mutex<()> = Mutex::new(());

/// Analyses `layer` and returns the report with the heap's growth at its peak.
fn analyse(layer: &[u8], limits: &Limits) -> (LayerReport, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let report = analyze_layer(layer, Compression::Gzip, limits).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    (report, peak)
}

/// A gzip layer written header by header, so that the test never holds what it claims.
struct Hostile(GzEncoder<Vec<u8>>);

impl Hostile {
    fn new() -> Self {
        Self(GzEncoder::new(Vec::new(), Level::best()))
    }

    fn header(&mut self, name: &str, kind: EntryType, size: u64) {
        let mut header = Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(size);
        header.set_cksum();
        self.0.write_all(header.as_bytes()).unwrap();
    }

    /// `size` bytes made of `fill`, then the padding to the next block.
    fn data(&mut self, size: u64, fill: u8) {
        self.name_data(size, &[fill], b"");
    }

    /// `size` bytes of `pattern` repeated and ending in `suffix`, then the padding.
    fn name_data(&mut self, size: u64, pattern: &[u8], suffix: &[u8]) {
        let chunk: Vec<u8> = pattern.iter().copied().cycle().take(1 << 20).collect();
        let mut left = size - suffix.len() as u64;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            self.0.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        self.0.write_all(suffix).unwrap();
        let pad = (512 - size % 512) % 512;
        self.0.write_all(&vec![0; pad as usize]).unwrap();
    }

    /// A GNU long name of `size` bytes of `fill`, for the file that follows.
    fn long_name(&mut self, size: u64, fill: u8) {
        self.header("././@LongLink", EntryType::GNULongName, size);
        self.data(size, fill);
    }

    /// A GNU long name of `pattern` repeated, ending in `suffix`.
    fn long_name_of(&mut self, size: u64, pattern: &[u8], suffix: &[u8]) {
        self.header("././@LongLink", EntryType::GNULongName, size);
        self.name_data(size, pattern, suffix);
    }

    fn long_link(&mut self, size: u64) {
        self.header("././@LongLink", EntryType::GNULongLink, size);
        self.data(size, b'l');
    }

    /// A PAX header with one `path` record of `size` bytes of `fill` (plus `extra`
    /// records, written before it).
    fn pax_path(&mut self, size: u64, fill: u8, extra: &str) {
        let body = size + 7; // " path=" and the newline
        let mut length = body + body.to_string().len() as u64;
        if length.to_string().len() as u64 + body != length {
            length += 1;
        }
        let prefix = format!("{length} path=");
        let total = extra.len() as u64 + length;
        self.header("PaxHeaders/x", EntryType::XHeader, total);
        self.0.write_all(extra.as_bytes()).unwrap();
        self.0.write_all(prefix.as_bytes()).unwrap();
        let chunk = vec![fill; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            self.0.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        self.0.write_all(b"\n").unwrap();
        let pad = (512 - total % 512) % 512;
        self.0.write_all(&vec![0; pad as usize]).unwrap();
    }

    fn file(&mut self, name: &str, content: &[u8]) {
        self.header(name, EntryType::Regular, content.len() as u64);
        self.0.write_all(content).unwrap();
        let pad = (512 - content.len() % 512) % 512;
        self.0.write_all(&vec![0; pad]).unwrap();
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.write_all(&[0; 1024]).unwrap();
        self.0.finish().unwrap()
    }
}

const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=12\n";

fn limits() -> Limits {
    Limits {
        // Room for the bombs' expanded bytes: only what is held is bounded here.
        max_layer_bytes: 4 << 30,
        ..Limits::default()
    }
}

#[test]
fn a_half_megabyte_layer_with_a_gigabyte_long_name_is_skipped_in_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut layer = Hostile::new();
    layer.long_name(512 << 20, b'a');
    layer.file("ignored", b"named by the long name");
    layer.long_link(64 << 20);
    layer.file("usr/bin/link", b"");
    layer.file("etc/os-release", OS_RELEASE);
    let layer = layer.finish();
    assert!(layer.len() < 1 << 20, "{} bytes", layer.len());

    let (report, peak) = analyse(&layer, &limits());
    assert!(peak < 16 << 20, "the analysis held {peak} bytes");
    assert!(report.findings.contains_key("etc/os-release"), "{report:?}");
    assert_eq!(report.issues.len(), 2, "{:?}", report.issues);
    assert!(report.issues[0].message.contains("GNU long name of 536870912 bytes"), "{}", report.issues[0].message);
    assert!(report.issues[1].message.contains("GNU long link name"), "{}", report.issues[1].message);
    assert!(report.incomplete.is_none());
}

#[test]
fn a_huge_pax_header_is_skipped_and_its_size_record_still_honoured() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut layer = Hostile::new();
    // The `size` record says how much data the next entry has; its header says none.
    layer.pax_path(256 << 20, b'p', "11 size=24\n");
    layer.header("placeholder", EntryType::Regular, 0);
    layer.0.write_all(OS_RELEASE).unwrap();
    layer.0.write_all(&[0; 512 - 24]).unwrap();
    layer.file("etc/os-release", OS_RELEASE);
    let layer = layer.finish();
    assert!(layer.len() < 1 << 20, "{} bytes", layer.len());

    let (report, peak) = analyse(&layer, &limits());
    assert!(peak < 16 << 20, "the analysis held {peak} bytes");
    assert!(report.findings.contains_key("etc/os-release"), "{report:?}");
    assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
    assert!(report.issues[0].message.contains("PAX header of"), "{}", report.issues[0].message);
}

#[test]
fn many_long_names_and_pax_headers_cost_one_at_a_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut layer = Hostile::new();
    for n in 0..300u64 {
        // Over the 1 MiB header limit: skipped.
        layer.long_name((1 << 20) + 1, b'a' + (n % 26) as u8);
        layer.file("x", b"");
        layer.pax_path(2 << 20, b'a' + (n % 26) as u8, "");
        layer.file("x", b"");
        // Under it: read, and the `..` paths' issues keep only the start of the name.
        layer.long_name_of(900 << 10, b"../", b"");
        layer.file("x", b"");
    }
    layer.file("etc/os-release", OS_RELEASE);
    let layer = layer.finish();

    let (report, peak) = analyse(&layer, &limits());
    assert!(peak < 24 << 20, "the analysis held {peak} bytes");
    assert!(report.findings.contains_key("etc/os-release"), "{report:?}");
    assert_eq!(report.issues.len(), 900);
    assert!(report.issues.iter().all(|issue| issue.path.len() < 2048));
    assert!(report.incomplete.is_none());
}

#[test]
fn whiteouts_with_long_names_exhaust_the_budget_and_mark_the_layer_incomplete() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut layer = Hostile::new();
    for n in 0..200u64 {
        // 900 KiB names: each under the header limit, all of them together far over
        // the analysis budget.
        layer.long_name_of(900 << 10, &[b'a' + (n % 26) as u8], b"/.wh.gone");
        layer.file("ignored", b"");
        layer.file(&format!("usr/{n}/.wh.ignored"), b"");
    }
    let whiteout_names = 200 * (900 << 10);
    layer.file("etc/os-release", OS_RELEASE);
    let layer = layer.finish();

    let limits = Limits { max_analysis_bytes: 32 << 20, ..limits() };
    let (report, peak) = analyse(&layer, &limits);
    assert!(whiteout_names > 4 * limits.max_analysis_bytes);
    assert!(peak < 48 << 20, "the analysis held {peak} bytes");
    let reason = report.incomplete.as_deref().expect("the layer is incomplete");
    assert!(reason.contains("analysis memory budget"), "{reason}");
    assert!(report.whiteouts.len() < 100, "{}", report.whiteouts.len());
    assert!(report.issues.last().unwrap().message.contains("budget"), "{:?}", report.issues.last());
}

#[test]
fn the_budget_bounds_entries_and_findings_too() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut layer = Hostile::new();
    for n in 0..50_000 {
        layer.file(&format!("usr/lib/node_modules/p{n}/package.json"), format!("{{\"name\":\"p{n}\",\"version\":\"1.0.0\"}}").as_bytes());
    }
    let layer = layer.finish();
    let tight = Limits { max_analysis_bytes: 2 << 20, ..limits() };
    let (report, peak) = analyse(&layer, &tight);
    assert!(peak < 8 << 20, "the analysis held {peak} bytes");
    assert!(report.incomplete.is_some());
    assert!(report.findings.len() < 50_000);

    // The default budget holds them all.
    let (report, _) = analyse(&layer, &limits());
    assert!(report.incomplete.is_none(), "{:?}", report.incomplete);
    assert_eq!(report.findings.len(), 50_000);
}

#[test]
fn a_dpkg_status_of_200_000_packages_is_dropped_over_the_budget_and_the_walk_goes_on() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut status = Vec::new();
    for n in 0..200_000 {
        write!(status, "Package: pkg{n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.{}-1\n\n", n % 97).unwrap();
    }
    let mut layer = Hostile::new();
    layer.file("var/lib/dpkg/status", &status);
    layer.file("etc/os-release", OS_RELEASE);
    let layer = layer.finish();
    assert!(layer.len() < 2 << 20, "{} bytes", layer.len());

    let (report, peak) = analyse(&layer, &limits());
    // The file is held for a moment, but its records are counted before they are
    // parsed: the 200,000 packages are never built.
    assert!(peak < 32 << 20, "the analysis held {peak} bytes");
    assert!(!report.findings.contains_key("var/lib/dpkg/status"));
    assert!(report.findings.contains_key("etc/os-release"), "{report:?}");
    let reason = report.incomplete.as_deref().expect("the layer is incomplete");
    assert!(reason.contains("analysis memory budget: dropped"), "{reason}");
    assert!(reason.contains("needs about 51200256 bytes"), "{reason}");
    assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
}

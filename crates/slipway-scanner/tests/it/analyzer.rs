//! The layer analyzer on layers built in memory: each detector, stacking several layers,
//! and hostile input.

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use slipway_scanner::ScanError;
use slipway_scanner::analyzer::{Compression, Ecosystem, Inventory, LayerReport, Limits, Package, analyze_layer, merge};
use std::io::Write;
use tar::{EntryType, Header};

/// An uncompressed layer tar, built entry by entry.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn file(mut self, path: &str, content: &[u8]) -> Self {
        self.append(path, content, 0o644);
        self
    }

    fn executable(mut self, path: &str, content: &[u8]) -> Self {
        self.append(path, content, 0o755);
        self
    }

    fn dir(mut self, path: &str) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Symlink);
        header.set_size(0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    /// Deletes `path` from the layers below, as `.wh.NAME` in the same directory.
    fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let marker = if dir.is_empty() { format!(".wh.{name}") } else { format!("{dir}/.wh.{name}") };
        self.file(&marker, b"")
    }

    fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// An entry whose name is written raw, as a hostile tool would (the tar crate's
    /// builder refuses such names).
    fn raw_name(mut self, name: &str, content: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_cksum();
        self.0.append(&header, content).unwrap();
        self
    }

    fn append(&mut self, path: &str, content: &[u8], mode: u32) {
        let mut header = Header::new_gnu();
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        self.0.append_data(&mut header, path, content).unwrap();
    }

    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }

    fn gzip(self) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Level::fast());
        encoder.write_all(&self.tar()).unwrap();
        encoder.finish().unwrap()
    }

    fn report(self) -> LayerReport {
        analyze_layer(&self.gzip()[..], Compression::Gzip, &Limits::default()).unwrap()
    }
}

fn image(layers: Vec<LayerReport>) -> Inventory {
    let named: Vec<(String, LayerReport)> =
        layers.into_iter().enumerate().map(|(index, report)| (format!("sha256:l{}", index + 1), report)).collect();
    merge(&named)
}

fn find<'i>(inventory: &'i Inventory, ecosystem: Ecosystem, name: &str) -> &'i Package {
    inventory
        .packages
        .iter()
        .find(|p| p.ecosystem == ecosystem && p.name == name)
        .unwrap_or_else(|| panic!("{name} not found in {:#?}", inventory.packages))
}

fn names(inventory: &Inventory, ecosystem: Ecosystem) -> Vec<&str> {
    inventory.packages.iter().filter(|p| p.ecosystem == ecosystem).map(|p| p.name.as_str()).collect()
}

const DEBIAN_OS_RELEASE: &[u8] = br#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"#;

/// An excerpt of a bookworm status file: epochs, `Source:` with and without a version,
/// a removed package whose configuration stays behind.
const DPKG_STATUS: &[u8] = b"Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Provides: libz1
Depends: libc6 (>= 2.14)
Breaks: libxml2 (<< 2.7.6.dfsg-2), texlive-binaries (<< 2009-12)
Conflicts: zlib1 (<= 1:1.0.4-7)
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.  This package includes the shared library.

Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6089
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries

Package: python3-six
Status: install ok installed
Priority: optional
Section: python
Installed-Size: 67
Architecture: all
Source: six
Version: 1.16.0-4
Depends: python3:any
Description: Python 2 and 3 compatibility library

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Description: GCC support library

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
Description: Vi IMproved - enhanced vi editor - compact version
";

const SIX_METADATA: &[u8] = b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nSummary: Python 2 and 3 compatibility utilities\n";

fn python_metadata(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.7\n\nLong description.\nName: not-this\n")
        .into_bytes()
}

fn npm_manifest(name: &str, version: &str) -> Vec<u8> {
    format!(r#"{{"name": "{name}", "version": "{version}", "license": "MIT", "dependencies": {{}}}}"#).into_bytes()
}

fn debian_base() -> Layer {
    Layer::new()
        .dir("etc")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .file(
            "var/lib/dpkg/info/python3-six.list",
            b"/.\n/usr\n/usr/lib/python3/dist-packages\n/usr/lib/python3/dist-packages/six-1.16.0.egg-info\n/usr/lib/python3/dist-packages/six.py\n",
        )
        .file("var/lib/dpkg/info/zlib1g:amd64.list", b"/.\n/usr/lib/x86_64-linux-gnu/libz.so.1.2.13\n")
        .file("usr/lib/python3/dist-packages/six-1.16.0.egg-info", SIX_METADATA)
        .executable("usr/bin/true", b"#!/bin/sh\n")
}

#[test]
fn debian_layer_with_python_and_npm() {
    let app = Layer::new()
        .file("usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", &python_metadata("requests", "2.31.0"))
        .file("usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/RECORD", b"requests/__init__.py,,\n")
        .file("srv/app/package.json", &npm_manifest("my-app", "1.0.0"))
        .file("srv/app/node_modules/express/package.json", &npm_manifest("express", "4.18.2"))
        .file("srv/app/node_modules/express/lib/package.json", b"{}")
        .file("srv/app/node_modules/@babel/core/package.json", &npm_manifest("@babel/core", "7.23.2"))
        .file("srv/app/node_modules/broken/package.json", b"{\"name\": ");
    let inventory = image(vec![debian_base().report(), app.report()]);

    let os = inventory.os.as_ref().unwrap();
    assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("debian", Some("12")));

    assert_eq!(names(&inventory, Ecosystem::Deb), ["libgcc-s1", "libssl3", "python3-six", "zlib1g"]);
    let zlib = find(&inventory, Ecosystem::Deb, "zlib1g");
    assert_eq!(zlib.version, "1:1.2.13.dfsg-1");
    assert_eq!(zlib.source_name.as_deref(), Some("zlib"));
    assert_eq!(zlib.arch.as_deref(), Some("amd64"));
    assert_eq!(zlib.purl, "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12");
    assert_eq!(zlib.path, "var/lib/dpkg/status");
    assert_eq!(zlib.layer, "sha256:l1");
    let gcc = find(&inventory, Ecosystem::Deb, "libgcc-s1");
    assert_eq!((gcc.source_name.as_deref(), gcc.source_version.as_deref()), (Some("gcc-12"), Some("12.2.0-14")));

    // six belongs to python3-six, so only the dpkg package reports it.
    assert_eq!(names(&inventory, Ecosystem::PyPI), ["requests"]);
    let requests = find(&inventory, Ecosystem::PyPI, "requests");
    assert_eq!(requests.purl, "pkg:pypi/requests@2.31.0");
    assert_eq!(requests.layer, "sha256:l2");

    assert_eq!(names(&inventory, Ecosystem::Npm), ["@babel/core", "express"]);
    assert_eq!(find(&inventory, Ecosystem::Npm, "@babel/core").purl, "pkg:npm/%40babel/core@7.23.2");

    assert_eq!(inventory.issues.len(), 1, "{:?}", inventory.issues);
    assert_eq!(inventory.issues[0].layer, "sha256:l2");
    assert_eq!(inventory.issues[0].issue.path, "srv/app/node_modules/broken/package.json");
    assert!(inventory.issues[0].issue.message.starts_with("malformed package.json"));
}

const APK_INSTALLED: &[u8] = b"C:Q1Qe5MGw4mYc4ZKmL0fNq5WmBWDcU=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407574
I:667648
T:the musl c library (libc) implementation
L:MIT
o:musl
t:1705951128
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
R:libc.musl-x86_64.so.1

C:Q1D8XJ8nhl9rvJx3V3bgfdQ7YvwgM=
P:py3-setuptools
V:70.3.0-r0
A:noarch
o:py3-setuptools
F:usr/lib/python3.12/site-packages/setuptools-70.3.0.dist-info
R:METADATA
R:RECORD

C:Q1abcd=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
F:lib
R:libcrypto.so.3
";

#[test]
fn alpine_zstd_layer() {
    let tar = Layer::new()
        .file("etc/os-release", b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n")
        .file("lib/apk/db/installed", APK_INSTALLED)
        .file("usr/lib/python3.12/site-packages/setuptools-70.3.0.dist-info/METADATA", &python_metadata("setuptools", "70.3.0"))
        .file("app/venv/lib/python3.12/site-packages/flask-3.0.0.dist-info/METADATA", &python_metadata("Flask", "3.0.0"))
        .tar();
    let compressed = zstd::encode_all(&tar[..], 3).unwrap();
    let report = analyze_layer(&compressed[..], Compression::Auto, &Limits::default()).unwrap();
    let inventory = image(vec![report]);

    assert_eq!(inventory.os.as_ref().unwrap().id, "alpine");
    assert_eq!(names(&inventory, Ecosystem::Apk), ["libcrypto3", "musl", "py3-setuptools"]);
    let crypto = find(&inventory, Ecosystem::Apk, "libcrypto3");
    assert_eq!(crypto.source_name.as_deref(), Some("openssl"));
    assert_eq!(crypto.purl, "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=3.19.1");
    // setuptools' metadata is an apk-owned file; Flask is not.
    assert_eq!(names(&inventory, Ecosystem::PyPI), ["Flask"]);
    assert_eq!(find(&inventory, Ecosystem::PyPI, "Flask").purl, "pkg:pypi/flask@3.0.0");
}

#[test]
fn distroless_status_d() {
    let report = Layer::new()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status.d/libssl3", b"Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n")
        .file("var/lib/dpkg/status.d/libssl3.md5sums", b"2c4ae3a9c95ea4a1ab8c1e1a1cbd7ad6  usr/lib/x86_64-linux-gnu/libssl.so.3\n")
        .file("var/lib/dpkg/status.d/tzdata", b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")
        .report();
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    let inventory = image(vec![report]);
    assert_eq!(names(&inventory, Ecosystem::Deb), ["libssl3", "tzdata"]);
    let tzdata = find(&inventory, Ecosystem::Deb, "tzdata");
    assert_eq!(tzdata.path, "var/lib/dpkg/status.d/tzdata");
    assert_eq!(tzdata.source_name.as_deref(), Some("tzdata"));
}

/// A status file with only some of the base excerpt's packages, and others.
fn status_with(extra: &str) -> Vec<u8> {
    let mut status = String::from_utf8(DPKG_STATUS.to_vec()).unwrap();
    status.push('\n');
    status.push_str(extra);
    status.into_bytes()
}

#[test]
fn upgrades_removals_and_reinstalls_across_layers() {
    let curl_old = "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u4\n";
    let curl_new = "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n";
    let site = "usr/local/lib/python3.11/site-packages";
    let layers = vec![
        debian_base().report(),
        // apt-get install curl; pip install urllib3==2.0.6
        Layer::new()
            .file("var/lib/dpkg/status", &status_with(curl_old))
            .file(&format!("{site}/urllib3-2.0.6.dist-info/METADATA"), &python_metadata("urllib3", "2.0.6"))
            .file(&format!("{site}/idna-3.4.dist-info/METADATA"), &python_metadata("idna", "3.4"))
            .file("srv/node_modules/lodash/package.json", &npm_manifest("lodash", "4.17.20"))
            .file("srv/node_modules/left-pad/package.json", &npm_manifest("left-pad", "1.3.0"))
            .report(),
        // apt-get upgrade curl; pip install -U urllib3; pip uninstall idna; npm ci
        Layer::new()
            .file("var/lib/dpkg/status", &status_with(curl_new))
            .whiteout(&format!("{site}/urllib3-2.0.6.dist-info"))
            .file(&format!("{site}/urllib3-2.0.7.dist-info/METADATA"), &python_metadata("urllib3", "2.0.7"))
            .whiteout(&format!("{site}/idna-3.4.dist-info"))
            .opaque("srv/node_modules")
            .file("srv/node_modules/lodash/package.json", &npm_manifest("lodash", "4.17.21"))
            .report(),
        // pip install idna==3.4 again; rm left-pad would be a no-op here (already gone)
        Layer::new().file(&format!("{site}/idna-3.4.dist-info/METADATA"), &python_metadata("idna", "3.4")).report(),
    ];
    let inventory = image(layers);

    let layer_of = |ecosystem, name| find(&inventory, ecosystem, name).layer.clone();
    assert_eq!(layer_of(Ecosystem::Deb, "zlib1g"), "sha256:l1", "rewritten status, same version");
    assert_eq!(find(&inventory, Ecosystem::Deb, "curl").version, "7.88.1-10+deb12u5");
    assert_eq!(layer_of(Ecosystem::Deb, "curl"), "sha256:l3", "upgraded");
    assert_eq!(find(&inventory, Ecosystem::PyPI, "urllib3").version, "2.0.7");
    assert_eq!(layer_of(Ecosystem::PyPI, "urllib3"), "sha256:l3");
    assert_eq!(layer_of(Ecosystem::PyPI, "idna"), "sha256:l4", "removed, then reinstalled");
    assert_eq!(names(&inventory, Ecosystem::Npm), ["lodash"], "left-pad is hidden by the opaque directory");
    assert_eq!(find(&inventory, Ecosystem::Npm, "lodash").version, "4.17.21");
    assert_eq!(names(&inventory, Ecosystem::PyPI), ["idna", "urllib3"]);
}

#[test]
fn removal_of_a_dpkg_package_and_of_the_whole_database() {
    let without_ssl = String::from_utf8(DPKG_STATUS.to_vec()).unwrap().replace("Package: libssl3\n", "Package: libssl-gone\n");
    let inventory = image(vec![debian_base().report(), Layer::new().file("var/lib/dpkg/status", without_ssl.as_bytes()).report()]);
    assert!(!names(&inventory, Ecosystem::Deb).contains(&"libssl3"));
    assert_eq!(find(&inventory, Ecosystem::Deb, "libssl-gone").layer, "sha256:l2");

    let wiped = image(vec![debian_base().report(), Layer::new().whiteout("var/lib/dpkg").report()]);
    assert!(names(&wiped, Ecosystem::Deb).is_empty());
    // The dpkg file lists went with it, so six is now only a Python package.
    assert_eq!(names(&wiped, Ecosystem::PyPI), ["six"]);
}

#[test]
fn a_plain_file_replacing_a_manifest_hides_it() {
    let inventory = image(vec![
        Layer::new().file("srv/node_modules/a/package.json", &npm_manifest("a", "1.0.0")).report(),
        Layer::new().symlink("srv/node_modules/a", "/opt/elsewhere").report(),
    ]);
    assert!(inventory.packages.is_empty());
}

#[test]
fn reports_round_trip_through_json_for_caching() {
    let report = debian_base().report();
    let json = serde_json::to_string(&report).unwrap();
    let back: LayerReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn uncompressed_and_mislabelled_layers() {
    let tar = debian_base().tar();
    let plain =
        analyze_layer(&tar[..], Compression::from_media_type("application/vnd.oci.image.layer.v1.tar"), &Limits::default()).unwrap();
    assert_eq!(plain, debian_base().report());
    // Labelled gzip by the manifest, plain tar in fact: the label wins and the layer fails.
    let mislabelled = analyze_layer(&tar[..], Compression::Gzip, &Limits::default());
    assert!(matches!(mislabelled, Err(ScanError::CorruptLayer(_))));
}

// Hostile input.

#[test]
fn dot_dot_and_absolute_paths() {
    let report = Layer::new()
        .raw_name("../../etc/os-release", b"ID=evil\n")
        .raw_name("usr/../../../var/lib/dpkg/status", b"Package: evil\nVersion: 1\n")
        .raw_name("/etc/os-release", b"ID=debian\nVERSION_ID=12\n")
        .raw_name("./lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\n")
        .report();
    assert_eq!(report.issues.len(), 2, "{:?}", report.issues);
    assert!(report.issues.iter().all(|issue| issue.message.contains("`..`")));
    assert_eq!(report.issues[0].path, "../../etc/os-release");
    let inventory = image(vec![report]);
    assert_eq!(inventory.os.as_ref().unwrap().id, "debian");
    assert_eq!(names(&inventory, Ecosystem::Deb), Vec::<&str>::new());
    assert_eq!(names(&inventory, Ecosystem::Apk), ["musl"]);
}

#[test]
fn symlink_loops_are_never_followed() {
    let report = Layer::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("loop", ".")
        .symlink("var/lib/dpkg/status", "/var/lib/dpkg/status")
        .file("etc/os-release", b"ID=debian\n")
        .report();
    assert!(report.findings.contains_key("etc/os-release"));
    assert_eq!(report.findings.len(), 1);
}

#[test]
fn corrupt_dpkg_status_is_an_issue_and_the_rest_still_counts() {
    let report = Layer::new()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", b"Package: libc6\nVersion: 2.36-9\n\x00\x01garbage without a colon\n")
        .file("usr/local/lib/python3.11/site-packages/idna-3.4.dist-info/METADATA", &python_metadata("idna", "3.4"))
        .report();
    assert_eq!(report.issues.len(), 1);
    assert_eq!(report.issues[0].path, "var/lib/dpkg/status");
    assert_eq!(report.issues[0].message, "malformed dpkg status: line 3: line is neither a field nor a continuation");
    let inventory = image(vec![report]);
    assert_eq!(names(&inventory, Ecosystem::PyPI), ["idna"]);
    assert!(inventory.os.is_some());
}

#[test]
fn truncated_gzip_fails_the_layer() {
    let gzip = debian_base().gzip();
    for cut in [gzip.len() / 2, gzip.len() - 4] {
        let err = analyze_layer(&gzip[..cut], Compression::Gzip, &Limits::default()).unwrap_err();
        assert!(matches!(err, ScanError::CorruptLayer(_)), "{err}");
        assert!(err.to_string().starts_with("layer is truncated or corrupt"), "{err}");
    }
}

#[test]
fn truncated_zstd_fails_the_layer() {
    let compressed = zstd::encode_all(&debian_base().tar()[..], 3).unwrap();
    let err = analyze_layer(&compressed[..compressed.len() / 2], Compression::Zstd, &Limits::default()).unwrap_err();
    assert!(matches!(err, ScanError::CorruptLayer(_)), "{err}");
}

/// A layer holding one file of zeros, compressed on the fly, so the test never holds
/// the expanded data: 256 MiB shrinks to about a megabyte.
fn zero_bomb(expanded: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Level::fast());
    let mut header = Header::new_gnu();
    header.set_path("var/tmp/zeros").unwrap();
    header.set_mode(0o644);
    header.set_size(expanded);
    header.set_cksum();
    encoder.write_all(header.as_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = expanded;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        encoder.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    encoder.write_all(&[0u8; 1024]).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn decompression_bomb_stops_at_the_limit() {
    let bomb = zero_bomb(256 << 20);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let limits = Limits { max_layer_bytes: 16 << 20, ..Limits::default() };
    let err = analyze_layer(&bomb[..], Compression::Auto, &limits).unwrap_err();
    assert!(matches!(err, ScanError::LayerTooLarge { limit } if limit == 16 << 20), "{err}");
    // Under a limit it fits, the same layer is fine.
    let roomy = Limits { max_layer_bytes: 512 << 20, ..Limits::default() };
    assert!(analyze_layer(&bomb[..], Compression::Auto, &roomy).unwrap().issues.is_empty());
}

/// A GNU sparse entry claiming `real_size` bytes, of which only the given 512-byte
/// blocks are stored; the rest reads as zeros.
fn sparse_entry(path: &str, real_size: u64, blocks: &[(u64, [u8; 512])]) -> (Header, Vec<u8>) {
    let mut header = Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_entry_type(EntryType::GNUSparse);
    header.set_mode(0o755);
    header.set_size(512 * blocks.len() as u64);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.set_real_size(real_size);
    for (slot, (offset, _)) in gnu.sparse.iter_mut().zip(blocks) {
        slot.set_offset(*offset);
        slot.set_length(512);
    }
    header.set_cksum();
    (header, blocks.iter().flat_map(|(_, data)| *data).collect())
}

#[test]
fn sparse_files_claiming_gigabytes_and_terabytes() {
    let mut builder = tar::Builder::new(Vec::new());
    let two_gb = 2 << 30;
    for path in ["var/lib/dpkg/status", "opt/disk.img", "opt/app.jar"] {
        let (header, data) = sparse_entry(path, two_gb, &[(two_gb - 512, [0x41; 512])]);
        builder.append(&header, &data[..]).unwrap();
    }
    // An "executable" whose ELF header points its program headers 16 TiB in: sniffing
    // it would mean reading zeros for hours.
    let mut elf = [0u8; 512];
    elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    elf[0x20..0x28].copy_from_slice(&(1u64 << 44).to_le_bytes());
    elf[0x36] = 56;
    elf[0x38] = 1;
    let huge = 1u64 << 45;
    let (header, data) = sparse_entry("usr/bin/huge", huge, &[(0, elf), (huge - 512, [0; 512])]);
    builder.append(&header, &data[..]).unwrap();
    let mut header = Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(10);
    builder.append_data(&mut header, "etc/os-release", &b"ID=debian\n"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    assert!(tar.len() < 16384);

    let started = std::time::Instant::now();
    let report = analyze_layer(&tar[..], Compression::None, &Limits::default()).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let issues: Vec<&str> = report.issues.iter().map(|issue| issue.path.as_str()).collect();
    assert_eq!(issues, ["var/lib/dpkg/status", "opt/app.jar"], "{:?}", report.issues);
    // Sparse data is never expanded: each file a detector wanted is named as skipped.
    for issue in &report.issues {
        assert!(issue.message.contains("sparse"), "{}", issue.message);
    }
    assert!(report.findings.contains_key("etc/os-release"));
}

// Binaries.

/// A Go program with a vendored dependency and a replaced one, so `go build` needs no
/// network; `None` where Go is not installed.
fn build_go_binary() -> Option<Vec<u8>> {
    let go = std::process::Command::new("go").arg("version").output().ok()?;
    assert!(go.status.success());
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "go.mod",
        "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.org/dep v1.2.3\n\texample.org/old v1.0.0\n)\n\n\
         replace example.org/old => example.org/new v1.1.0\n",
    );
    write(
        "main.go",
        "package main\n\nimport (\n\t\"example.org/dep\"\n\t\"example.org/old\"\n)\n\nfunc main() { println(dep.Name(), old.Name()) }\n",
    );
    write("vendor/example.org/dep/dep.go", "package dep\n\nfunc Name() string { return \"dep\" }\n");
    write("vendor/example.org/old/old.go", "package old\n\nfunc Name() string { return \"old\" }\n");
    write(
        "vendor/modules.txt",
        "# example.org/dep v1.2.3\n## explicit\nexample.org/dep\n# example.org/old v1.0.0 => example.org/new v1.1.0\n\
         ## explicit\nexample.org/old\n# example.org/old => example.org/new v1.1.0\n",
    );
    let built = std::process::Command::new("go")
        .args(["build", "-mod=vendor", "-trimpath", "-o", "app", "."])
        .current_dir(dir.path())
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    Some(std::fs::read(dir.path().join("app")).unwrap())
}

#[test]
fn go_binary_build_info() {
    let Some(binary) = build_go_binary() else {
        tool_missing("go");
        return;
    };
    let go_version = String::from_utf8(std::process::Command::new("go").args(["env", "GOVERSION"]).output().unwrap().stdout).unwrap();
    let inventory = image(vec![
        Layer::new()
            .executable("usr/local/bin/app", &binary)
            // The same bytes without the executable bit are not sniffed.
            .file("srv/app.copy", &binary)
            .report(),
    ]);
    let found: Vec<(&str, &str, &str)> =
        inventory.packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_str())).collect();
    let stdlib = go_version.trim().trim_start_matches("go");
    assert_eq!(
        found,
        [
            ("example.org/dep", "1.2.3", "usr/local/bin/app"),
            ("example.org/new", "1.1.0", "usr/local/bin/app"),
            ("stdlib", stdlib, "usr/local/bin/app"),
        ]
    );
    assert_eq!(find(&inventory, Ecosystem::Go, "example.org/dep").purl, "pkg:golang/example.org/dep@v1.2.3");
}

#[test]
fn go_binary_owned_by_a_dpkg_package_is_not_reported_twice() {
    let Some(binary) = build_go_binary() else {
        tool_missing("go");
        return;
    };
    let inventory = image(vec![
        Layer::new()
            .file("var/lib/dpkg/status", b"Package: app\nStatus: install ok installed\nVersion: 1.0-1\n")
            .file("var/lib/dpkg/info/app.list", b"/usr/bin/app\n")
            .executable("usr/bin/app", &binary)
            .report(),
    ]);
    assert_eq!(names(&inventory, Ecosystem::Deb), ["app"]);
    assert!(names(&inventory, Ecosystem::Go).is_empty());
}

/// An ELF object whose `.dep-v0` section holds `json`, laid out as cargo-auditable does
/// (zlib-compressed, a non-allocated section), for machines without the tool.
fn auditable_elf(json: &str) -> Vec<u8> {
    use object::write::Object;
    use object::{Architecture, BinaryFormat, Endianness, SectionFlags, SectionKind};
    let mut compressed = flate2::write::ZlibEncoder::new(Vec::new(), Level::best());
    compressed.write_all(json.as_bytes()).unwrap();
    let mut file = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = file.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    file.append_section_data(text, &[0xc3; 64], 16);
    let section = file.add_section(Vec::new(), b".dep-v0".to_vec(), SectionKind::ReadOnlyData);
    file.section_mut(section).flags = SectionFlags::Elf { sh_type: object::elf::SHT_PROGBITS, sh_flags: object::elf::SectionFlags(0) };
    file.append_section_data(section, &compressed.finish().unwrap(), 1);
    file.write().unwrap()
}

#[test]
fn rust_binary_with_cargo_auditable_data() {
    let binary = auditable_elf(
        r#"{"packages":[{"name":"demo","version":"0.1.0","source":"local","root":true,"dependencies":[1,2]},
        {"name":"serde","version":"1.0.197","source":"crates.io"},{"name":"smallvec","version":"1.11.0","source":"crates.io"}]}"#,
    );
    let inventory = image(vec![Layer::new().executable("usr/local/bin/demo", &binary).report()]);
    assert_eq!(names(&inventory, Ecosystem::CratesIo), ["serde", "smallvec"]);
    assert_eq!(find(&inventory, Ecosystem::CratesIo, "smallvec").purl, "pkg:cargo/smallvec@1.11.0");

    let broken = auditable_elf("{\"packages\": 3}");
    let report = Layer::new().executable("usr/local/bin/broken", &broken).report();
    assert_eq!(report.issues.len(), 1);
    assert!(report.issues[0].message.starts_with("malformed cargo-auditable data"), "{:?}", report.issues);
}

// Java archives.

/// A jar written the usual way: sizes in the local headers. `stored` entries are not
/// compressed, as Spring Boot requires of nested jars.
fn jar(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, stored) in entries {
        let method = if *stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
        writer.start_file(*name, SimpleFileOptions::default().compression_method(method)).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A jar as `java.util.zip.ZipOutputStream` streams it: deflated entries whose sizes
/// follow the data in descriptors.
fn streamed_jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), Level::default());
        deflater.write_all(data).unwrap();
        let compressed = deflater.finish().unwrap();
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes()); // version needed
        out.extend(8u16.to_le_bytes()); // flags: data descriptor
        out.extend(8u16.to_le_bytes()); // deflated
        out.extend([0u8; 4]); // time and date
        out.extend([0u8; 12]); // crc and sizes, in the descriptor instead
        out.extend(u16::try_from(name.len()).unwrap().to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(&compressed);
        out.extend(0x0807_4b50u32.to_le_bytes());
        out.extend(flate2::Crc::new().sum().to_le_bytes()); // not checked by readers of interest
        out.extend(u32::try_from(compressed.len()).unwrap().to_le_bytes());
        out.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    }
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 18]);
    out
}

fn pom(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    format!("#Created by Apache Maven 3.9.5\ngroupId={group}\nartifactId={artifact}\nversion={version}\n").into_bytes()
}

#[test]
fn java_archives_with_nested_jars() {
    let log4j = jar(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n", false),
        (
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
            &pom("org.apache.logging.log4j", "log4j-core", "2.14.1"),
            false,
        ),
        ("org/apache/logging/log4j/core/Logger.class", &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52], false),
    ]);
    let commons_text = jar(&[(
        "META-INF/MANIFEST.MF",
        b"Manifest-Version: 1.0\r\nImplementation-Title: commons-text\r\nImplementation-Version: 1.9\r\n\
          Implementation-Vendor-Id: org.apache.commons\r\n\r\n",
        false,
    )]);
    let jackson = streamed_jar(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
        (
            "META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties",
            &pom("com.fasterxml.jackson.core", "jackson-databind", "2.13.0"),
        ),
    ]);
    let app = jar(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\n\r\n", false),
        ("META-INF/maven/com.example/shop/pom.properties", &pom("com.example", "shop", "1.4.0"), false),
        ("BOOT-INF/lib/log4j-core-2.14.1.jar", &log4j, true),
        ("BOOT-INF/lib/commons-text-1.9.jar", &commons_text, false),
        ("BOOT-INF/lib/jackson-databind-2.13.0.jar", &jackson, true),
    ]);
    let inventory = image(vec![
        Layer::new()
            .file("srv/shop.jar", &app)
            .file("opt/tools/streamed.war", &streamed_jar(&[("WEB-INF/lib/jackson.jar", &jackson)]))
            .file("opt/broken.jar", b"PK\x03\x04 this is not a jar")
            .report(),
    ]);
    let found: Vec<(&str, &str, &str)> =
        inventory.packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_str())).collect();
    assert_eq!(
        found,
        [
            ("com.example:shop", "1.4.0", "srv/shop.jar"),
            ("com.fasterxml.jackson.core:jackson-databind", "2.13.0", "opt/tools/streamed.war!/WEB-INF/lib/jackson.jar"),
            ("com.fasterxml.jackson.core:jackson-databind", "2.13.0", "srv/shop.jar!/BOOT-INF/lib/jackson-databind-2.13.0.jar"),
            ("org.apache.commons:commons-text", "1.9", "srv/shop.jar!/BOOT-INF/lib/commons-text-1.9.jar"),
            ("org.apache.logging.log4j:log4j-core", "2.14.1", "srv/shop.jar!/BOOT-INF/lib/log4j-core-2.14.1.jar"),
        ]
    );
    assert_eq!(
        find(&inventory, Ecosystem::Maven, "org.apache.logging.log4j:log4j-core").purl,
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    );
    assert_eq!(inventory.issues.len(), 1);
    assert_eq!(inventory.issues[0].issue.path, "opt/broken.jar");
    assert!(inventory.issues[0].issue.message.starts_with("malformed Java archive"));
}

#[test]
fn zip_bombs_inside_jars_cost_no_more_than_the_layer_limit() {
    let zeros = vec![0u8; 32 << 20];
    let shop = pom("com.example", "shop", "1.4.0");
    let sized = jar(&[("big.bin", &zeros, false), ("META-INF/maven/com.example/shop/pom.properties", &shop, false)]);
    let streamed = streamed_jar(&[("big.bin", &zeros), ("META-INF/maven/com.example/shop/pom.properties", &shop)]);
    assert!(sized.len() < 1 << 20 && streamed.len() < 1 << 20);
    let layer = Layer::new().file("srv/sized.jar", &sized).file("srv/streamed.jar", &streamed).tar();
    let limits = Limits { max_layer_bytes: 8 << 20, ..Limits::default() };
    let report = analyze_layer(&layer[..], Compression::None, &limits).unwrap();
    // Sizes in the headers let the bomb pass uninflated; without them it must be
    // inflated to find its end, and the budget stops it.
    assert!(report.findings.contains_key("srv/sized.jar"));
    assert!(!report.findings.contains_key("srv/streamed.jar"));
    assert_eq!(report.issues.len(), 1);
    assert_eq!(report.issues[0].path, "srv/streamed.jar");
    assert!(report.issues[0].message.contains("inflates to more than the layer size limit"), "{:?}", report.issues);
}

#[test]
fn jars_owned_by_dpkg_are_not_reported_twice() {
    let library = jar(&[("META-INF/maven/org.yaml/snakeyaml/pom.properties", &pom("org.yaml", "snakeyaml", "1.33"), false)]);
    let inventory = image(vec![
        Layer::new()
            .file("var/lib/dpkg/status", b"Package: libyaml-snake-java\nStatus: install ok installed\nVersion: 1.33-2\n")
            .file("var/lib/dpkg/info/libyaml-snake-java.list", b"/usr/share/java/snakeyaml.jar\n")
            .file("usr/share/java/snakeyaml.jar", &library)
            .file("opt/app/lib/snakeyaml.jar", &library)
            .report(),
    ]);
    let maven: Vec<&str> = inventory.packages.iter().filter(|p| p.ecosystem == Ecosystem::Maven).map(|p| p.path.as_str()).collect();
    assert_eq!(maven, ["opt/app/lib/snakeyaml.jar"]);
}

// Ruby and PHP.

#[test]
fn ruby_gems_and_composer_packages() {
    let rack = br#"# -*- encoding: utf-8 -*-
# stub: rack 2.2.8 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.8".freeze

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["Leah Neukirchen".freeze]
  s.rubygems_version = "3.4.10".freeze
  s.summary = "A modular Ruby webserver interface".freeze

  s.installed_by_version = "3.4.10" if s.respond_to? :installed_by_version
end
"#;
    let installed = br#"{
    "packages": [
        {
            "name": "guzzlehttp/guzzle",
            "version": "7.8.0",
            "version_normalized": "7.8.0.0",
            "type": "library",
            "install-path": "../guzzlehttp/guzzle"
        },
        {
            "name": "symfony/http-foundation",
            "version": "v6.3.4",
            "version_normalized": "6.3.4.0",
            "type": "library",
            "install-path": "../symfony/http-foundation"
        }
    ],
    "dev": false,
    "dev-package-names": []
}"#;
    let inventory = image(vec![
        Layer::new()
            .file("usr/local/bundle/specifications/rack-2.2.8.gemspec", rack)
            .file(
                "usr/local/lib/ruby/3.2.0/specifications/default/json-2.6.3.gemspec",
                b"Gem::Specification.new do |s|\n  s.name = \"json\"\nend\n",
            )
            .file("var/www/html/vendor/composer/installed.json", installed)
            .report(),
    ]);
    assert_eq!(names(&inventory, Ecosystem::RubyGems), ["json", "rack"]);
    assert_eq!(find(&inventory, Ecosystem::RubyGems, "json").version, "2.6.3");
    assert_eq!(find(&inventory, Ecosystem::RubyGems, "rack").purl, "pkg:gem/rack@2.2.8");
    assert_eq!(names(&inventory, Ecosystem::Packagist), ["guzzlehttp/guzzle", "symfony/http-foundation"]);
    let symfony = find(&inventory, Ecosystem::Packagist, "symfony/http-foundation");
    assert_eq!(symfony.purl, "pkg:composer/symfony/http-foundation@v6.3.4");
    assert_eq!(symfony.path, "var/www/html/vendor/composer/installed.json");
}

// rpm.

/// Header tag values as an rpm header stores them.
enum Tag<'a> {
    Str(&'a str),
    Int32(&'a [u32]),
    Strings(&'a [&'a str]),
}

/// An rpm header blob, laid out as rpm writes it into the `Packages` table: entry
/// count, store size, 16-byte index entries (tag, type, offset, count), then the store.
fn rpm_header(tags: &[(u32, Tag<'_>)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut store: Vec<u8> = Vec::new();
    for (tag, value) in tags {
        let (kind, count): (u32, usize) = match value {
            Tag::Str(_) => (6, 1),
            Tag::Int32(values) => {
                store.resize(store.len().next_multiple_of(4), 0);
                (4, values.len())
            }
            Tag::Strings(values) => (8, values.len()),
        };
        for word in [*tag, kind, u32::try_from(store.len()).unwrap(), u32::try_from(count).unwrap()] {
            index.extend(word.to_be_bytes());
        }
        match value {
            Tag::Str(text) => store.extend(text.as_bytes().iter().chain([&0])),
            Tag::Int32(values) => values.iter().for_each(|v| store.extend(v.to_be_bytes())),
            Tag::Strings(texts) => texts.iter().for_each(|text| store.extend(text.as_bytes().iter().chain([&0]))),
        }
    }
    let mut blob = Vec::new();
    blob.extend(u32::try_from(tags.len()).unwrap().to_be_bytes());
    blob.extend(u32::try_from(store.len()).unwrap().to_be_bytes());
    blob.extend(index);
    blob.extend(store);
    blob
}

/// An rpmdb.sqlite as rpm leaves it: WAL journal mode, one header per row.
fn rpmdb(headers: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.execute_batch("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);").unwrap();
    for header in headers {
        db.execute("INSERT INTO Packages (blob) VALUES (?1)", [header]).unwrap();
    }
    db.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[18], 2, "the database should be in WAL mode");
    bytes
}

#[test]
fn rpm_sqlite_database() {
    let openssl = rpm_header(&[
        (1000, Tag::Str("openssl-libs")),
        (1001, Tag::Str("3.0.7")),
        (1002, Tag::Str("24.el9")),
        (1003, Tag::Int32(&[1])),
        (1022, Tag::Str("x86_64")),
        (1044, Tag::Str("openssl-3.0.7-24.el9.src.rpm")),
        (1116, Tag::Int32(&[0, 1])),
        (1117, Tag::Strings(&["libssl.so.3", "openssl.cnf"])),
        (1118, Tag::Strings(&["/usr/lib64/", "/etc/pki/tls/"])),
    ]);
    let python = rpm_header(&[
        (1000, Tag::Str("python3-requests")),
        (1001, Tag::Str("2.25.1")),
        (1002, Tag::Str("8.el9")),
        (1022, Tag::Str("noarch")),
        (1044, Tag::Str("python-requests-2.25.1-8.el9.src.rpm")),
        (1116, Tag::Int32(&[0])),
        (1117, Tag::Strings(&["METADATA"])),
        (1118, Tag::Strings(&["/usr/lib/python3.9/site-packages/requests-2.25.1.dist-info/"])),
    ]);
    let key = rpm_header(&[(1000, Tag::Str("gpg-pubkey")), (1001, Tag::Str("fd431d51")), (1002, Tag::Str("4ae0493b"))]);
    let inventory = image(vec![
        Layer::new()
            .file("etc/os-release", b"NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n")
            .file("usr/lib/sysimage/rpm/rpmdb.sqlite", &rpmdb(&[openssl, python, key]))
            .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
            .file("usr/lib/python3.9/site-packages/requests-2.25.1.dist-info/METADATA", &python_metadata("requests", "2.25.1"))
            .report(),
    ]);
    assert_eq!(names(&inventory, Ecosystem::Rpm), ["openssl-libs", "python3-requests"]);
    let openssl = find(&inventory, Ecosystem::Rpm, "openssl-libs");
    assert_eq!(openssl.version, "1:3.0.7-24.el9");
    assert_eq!((openssl.source_name.as_deref(), openssl.source_version.as_deref()), (Some("openssl"), Some("3.0.7-24.el9")));
    assert_eq!(openssl.purl, "pkg:rpm/rocky/openssl-libs@1:3.0.7-24.el9?arch=x86_64&distro=rocky-9.3");
    // The rpm owns the Python metadata, so requests is reported once, as an rpm.
    assert!(names(&inventory, Ecosystem::PyPI).is_empty());
}

#[test]
fn corrupt_rpm_database_is_an_issue() {
    let report = Layer::new().file("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0 but nothing else").report();
    assert_eq!(report.issues.len(), 1);
    assert!(report.issues[0].message.starts_with("malformed rpm database"), "{}", report.issues[0].message);
}

/// A Berkeley DB hash file as rpm's `Packages`: a metadata page, one hash page of
/// key/data pairs (the first value inline, the second spilling over two overflow pages),
/// in the given byte order.
fn bdb_packages(small: &[u8], large: &[u8], big_endian: bool) -> Vec<u8> {
    const PAGE: usize = 512;
    let u16_bytes = |value: usize| {
        let value = u16::try_from(value).unwrap();
        if big_endian { value.to_be_bytes() } else { value.to_le_bytes() }
    };
    let u32_bytes = |value: usize| {
        let value = u32::try_from(value).unwrap();
        if big_endian { value.to_be_bytes() } else { value.to_le_bytes() }
    };
    assert!(large.len() > PAGE - 26 && large.len() < 2 * (PAGE - 26));
    let mut file = vec![0u8; PAGE * 4];
    // Page 0: metadata.
    file[12..16].copy_from_slice(&u32_bytes(0x0006_1561));
    file[20..24].copy_from_slice(&u32_bytes(PAGE));
    file[25] = 8;
    file[32..36].copy_from_slice(&u32_bytes(3));
    // Page 1: hash page, items stacked down from the page end.
    let mut inline = vec![1u8];
    inline.extend(small);
    let mut offpage = vec![3u8, 0, 0, 0];
    offpage.extend(u32_bytes(2));
    offpage.extend(u32_bytes(large.len()));
    let items: [Vec<u8>; 4] = [vec![1, 1, 0, 0, 0], inline, vec![1, 2, 0, 0, 0], offpage];
    let page = &mut file[PAGE..2 * PAGE];
    page[20..22].copy_from_slice(&u16_bytes(items.len()));
    page[25] = 13;
    let mut end = PAGE;
    for (index, item) in items.iter().enumerate() {
        let start = end - item.len();
        page[start..end].copy_from_slice(item);
        page[26 + index * 2..28 + index * 2].copy_from_slice(&u16_bytes(start));
        end = start;
    }
    // Pages 2 and 3: the overflow chain.
    let (head, tail) = large.split_at(PAGE - 26);
    for (number, chunk, next) in [(2, head, 3), (3, tail, 0)] {
        let page = &mut file[number * PAGE..(number + 1) * PAGE];
        page[16..20].copy_from_slice(&u32_bytes(next));
        page[22..24].copy_from_slice(&u16_bytes(chunk.len()));
        page[25] = 7;
        page[26..26 + chunk.len()].copy_from_slice(chunk);
    }
    file
}

/// An NDB `Packages.db`: header, one slot page, then a block per package.
fn ndb_packages(blobs: &[&[u8]]) -> Vec<u8> {
    let mut file = Vec::new();
    file.extend(b"RpmP");
    file.extend(0u32.to_le_bytes());
    file.extend(7u32.to_le_bytes());
    file.extend(1u32.to_le_bytes());
    file.resize(32, 0);
    let mut blocks = Vec::new();
    let mut slots = Vec::new();
    for (index, blob) in blobs.iter().enumerate() {
        let offset = (4096 + blocks.len()) / 16;
        slots.push((index + 1, offset));
        blocks.extend(b"BlbS");
        blocks.extend(u32::try_from(index + 1).unwrap().to_le_bytes());
        blocks.extend(0u32.to_le_bytes());
        blocks.extend(u32::try_from(blob.len()).unwrap().to_le_bytes());
        blocks.extend(*blob);
        blocks.resize(blocks.len().next_multiple_of(16), 0);
    }
    for slot in 0..(4096 - 32) / 16 {
        let (package, offset) = slots.get(slot).copied().unwrap_or_default();
        file.extend(b"Slot");
        for word in [package, offset, 1] {
            file.extend(u32::try_from(word).unwrap().to_le_bytes());
        }
    }
    file.extend(blocks);
    file
}

#[test]
fn rpm_berkeley_db_and_ndb_databases() {
    let bash = rpm_header(&[
        (1000, Tag::Str("bash")),
        (1001, Tag::Str("4.2.46")),
        (1002, Tag::Str("34.el7")),
        (1022, Tag::Str("x86_64")),
        (1044, Tag::Str("bash-4.2.46-34.el7.src.rpm")),
    ]);
    let long_files: Vec<String> = (0..40).map(|n| format!("lib{n}.so")).collect();
    let long_files: Vec<&str> = long_files.iter().map(String::as_str).collect();
    let glibc = rpm_header(&[
        (1000, Tag::Str("glibc")),
        (1001, Tag::Str("2.17")),
        (1002, Tag::Str("326.el7_9")),
        (1022, Tag::Str("x86_64")),
        (1044, Tag::Str("glibc-2.17-326.el7_9.src.rpm")),
        (1116, Tag::Int32(&[0; 40])),
        (1117, Tag::Strings(&long_files)),
        (1118, Tag::Strings(&["/usr/lib64/"])),
    ]);
    for big_endian in [false, true] {
        let report = Layer::new().file("var/lib/rpm/Packages", &bdb_packages(&bash, &glibc, big_endian)).report();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        let inventory = image(vec![report]);
        assert_eq!(names(&inventory, Ecosystem::Rpm), ["bash", "glibc"]);
        assert_eq!(find(&inventory, Ecosystem::Rpm, "glibc").version, "2.17-326.el7_9");
    }

    let inventory = image(vec![Layer::new().file("usr/lib/sysimage/rpm/Packages.db", &ndb_packages(&[&bash, &glibc])).report()]);
    assert_eq!(names(&inventory, Ecosystem::Rpm), ["bash", "glibc"]);
    let bash = find(&inventory, Ecosystem::Rpm, "bash");
    assert_eq!((bash.source_name.as_deref(), bash.version.as_str()), (Some("bash"), "4.2.46-34.el7"));

    let corrupt = Layer::new().file("var/lib/rpm/Packages", b"\0\0\0\0 not a database").report();
    assert_eq!(corrupt.issues[0].message, "malformed rpm database: not a Berkeley DB file");
}

/// A real `cargo auditable` build of a crate with one crates.io dependency, offline (the
/// dependency comes from the local registry cache); skipped where the tool is missing.
#[test]
fn rust_binary_built_with_cargo_auditable() {
    let tool = std::process::Command::new("cargo").args(["auditable", "--version"]).output();
    if !tool.is_ok_and(|output| output.status.success()) {
        tool_missing("cargo-auditable");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"audited\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nhex = \"0.4\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() { println!(\"{}\", hex::encode(\"hi\")); }\n").unwrap();
    let built = std::process::Command::new("cargo")
        .args(["auditable", "build", "--release", "--offline", "--quiet"])
        .current_dir(dir.path())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let binary = std::fs::read(dir.path().join("target/release/audited")).unwrap();
    let inventory = image(vec![Layer::new().executable("usr/local/bin/audited", &binary).report()]);
    assert_eq!(names(&inventory, Ecosystem::CratesIo), ["hex"]);
    assert!(find(&inventory, Ecosystem::CratesIo, "hex").version.starts_with("0.4."));
}

/// A database written by rpm itself, where rpm's tools are installed: one package built
/// with rpmbuild and recorded with `rpm --justdb`; skipped elsewhere.
#[test]
fn rpm_database_written_by_rpm() {
    let has = |tool: &str| std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !has("rpm") || !has("rpmbuild") {
        tool_missing("rpm and rpmbuild");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().display().to_string();
    let spec = dir.path().join("hello.spec");
    std::fs::write(
        &spec,
        "Name: hello-scan\nVersion: 1.2.3\nRelease: 4.test\nEpoch: 2\nSummary: test\nLicense: MIT\n\
         BuildArch: noarch\n\n%description\nTest.\n\n%install\n\
         mkdir -p %{buildroot}/usr/lib/python3.9/site-packages/hello_scan-1.2.3.dist-info\n\
         printf 'Metadata-Version: 2.1\\nName: hello-scan\\nVersion: 1.2.3\\n' > \
         %{buildroot}/usr/lib/python3.9/site-packages/hello_scan-1.2.3.dist-info/METADATA\n\n\
         %files\n/usr/lib/python3.9/site-packages/hello_scan-1.2.3.dist-info/METADATA\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let topdir = format!("_topdir {top}");
    let tmppath = format!("_tmppath {top}");
    run(&["rpmbuild", "--define", &topdir, "--define", &tmppath, "-bb", spec.to_str().unwrap()]);
    let db = dir.path().join("db");
    let dbpath = db.to_str().unwrap();
    let rpm = dir.path().join("RPMS/noarch/hello-scan-1.2.3-4.test.noarch.rpm");
    run(&["rpm", "--define", "_db_backend sqlite", "--dbpath", dbpath, "--initdb"]);
    run(&["rpm", "--define", "_db_backend sqlite", "--dbpath", dbpath, "-i", "--justdb", "--nodeps", rpm.to_str().unwrap()]);

    let inventory = image(vec![
        Layer::new()
            .file("var/lib/rpm/rpmdb.sqlite", &std::fs::read(db.join("rpmdb.sqlite")).unwrap())
            .file("usr/lib/python3.9/site-packages/hello_scan-1.2.3.dist-info/METADATA", &python_metadata("hello-scan", "1.2.3"))
            .report(),
    ]);
    assert!(inventory.issues.is_empty(), "{:?}", inventory.issues);
    let package = find(&inventory, Ecosystem::Rpm, "hello-scan");
    assert_eq!(package.version, "2:1.2.3-4.test");
    assert_eq!(package.arch.as_deref(), Some("noarch"));
    assert_eq!((package.source_name.as_deref(), package.source_version.as_deref()), (Some("hello-scan"), Some("1.2.3-4.test")));
    assert!(names(&inventory, Ecosystem::PyPI).is_empty(), "the rpm owns the Python metadata");
}

/// A check that needs a real tool: skipped on a developer's machine without it, but a
/// failure under the test command (scripts/test sets REQUIRE_TEST_TOOLS=1 after
/// scripts/install-test-deps installed every tool), so CI never passes without it.
fn tool_missing(tool: &str) {
    assert!(std::env::var_os("REQUIRE_TEST_TOOLS").is_none(), "{tool} is not installed: run scripts/install-test-deps");
    eprintln!("{tool} is not installed: skipping the check that needs it");
}

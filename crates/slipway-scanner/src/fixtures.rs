//! Test images built in memory, written as OCI image layouts and `docker save`
//! archives (feature `fixtures`): the scanner's tests and the binary's share them.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use serde_json::json;
use slipway_oci::{Algorithm, Digest};

/// A layer tar, built entry by entry.
pub struct LayerBuilder(tar::Builder<Vec<u8>>);

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder(tar::Builder::new(Vec::new()))
    }
}

impl LayerBuilder {
    pub fn file(mut self, path: &str, content: &[u8]) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        self.0.append_data(&mut header, path, content).expect("appending to an in-memory tar");
        self
    }

    pub fn tar(self) -> Vec<u8> {
        self.0.into_inner().expect("finishing an in-memory tar")
    }

    pub fn gzip(self) -> Vec<u8> {
        gzip(&self.tar())
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Level::fast());
    encoder.write_all(bytes).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}

pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}

/// An image: gzip-compressed layers with their uncompressed tars, and a config.
pub struct ImageFixture {
    /// (uncompressed tar, gzip blob) per layer, bottom first.
    pub layers: Vec<(Vec<u8>, Vec<u8>)>,
    pub config: Vec<u8>,
}

impl ImageFixture {
    /// An image of these uncompressed layer tars, for linux/amd64.
    pub fn new(tars: Vec<Vec<u8>>) -> ImageFixture {
        let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t).to_string()).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .expect("serialising JSON");
        let layers = tars
            .into_iter()
            .map(|tar| {
                let blob = gzip(&tar);
                (tar, blob)
            })
            .collect();
        ImageFixture { layers, config }
    }

    /// The OCI image manifest naming the config and the gzip layers.
    pub fn manifest(&self) -> Vec<u8> {
        let layers: Vec<_> = self
            .layers
            .iter()
            .map(|(_, blob)| {
                json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(blob).to_string(),
                    "size": blob.len(),
                })
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(&self.config).to_string(),
                "size": self.config.len(),
            },
            "layers": layers,
        }))
        .expect("serialising JSON")
    }

    /// Writes an OCI image layout with this image tagged `tag`.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs)?;
        let manifest = self.manifest();
        let put = |bytes: &[u8]| fs::write(blobs.join(sha256(bytes).hex()), bytes);
        put(&self.config)?;
        put(&manifest)?;
        for (_, blob) in &self.layers {
            put(blob)?;
        }
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion": "1.0.0"}"#)?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(&manifest).to_string(),
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)
    }

    /// Writes a `docker save` archive of this image tagged `repo_tag`: the legacy layout
    /// (`<id>/layer.tar`, uncompressed, `<hex>.json` config), or Docker 25's (blobs,
    /// with the legacy layer paths as symbolic links to them).
    pub fn write_docker_archive(&self, path: &Path, repo_tag: &str, legacy: bool) -> io::Result<()> {
        let mut archive = tar::Builder::new(fs::File::create(path)?);
        let config_digest = sha256(&self.config);
        let mut layer_paths = Vec::new();
        let config_path = if legacy {
            let name = format!("{}.json", config_digest.hex());
            append(&mut archive, &name, &self.config)?;
            for (tar, _) in &self.layers {
                let name = format!("{}/layer.tar", sha256(tar).hex());
                append(&mut archive, &name, tar)?;
                layer_paths.push(name);
            }
            name
        } else {
            let name = format!("blobs/sha256/{}", config_digest.hex());
            append(&mut archive, &name, &self.config)?;
            for (tar, _) in &self.layers {
                let hex = sha256(tar).hex().to_owned();
                let blob = format!("blobs/sha256/{hex}");
                append(&mut archive, &blob, tar)?;
                let mut link = tar::Header::new_gnu();
                link.set_entry_type(tar::EntryType::Symlink);
                link.set_size(0);
                archive.append_link(&mut link, format!("{hex}/layer.tar"), format!("../blobs/sha256/{hex}"))?;
                layer_paths.push(blob);
            }
            name
        };
        let manifest = json!([{
            "Config": config_path,
            "RepoTags": [repo_tag],
            "Layers": layer_paths,
        }]);
        append(&mut archive, "manifest.json", &serde_json::to_vec(&manifest)?)?;
        archive.into_inner()?.sync_all()
    }
}

fn append(archive: &mut tar::Builder<fs::File>, name: &str, content: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(content.len() as u64);
    archive.append_data(&mut header, name, content)
}

/// Debian 12 with a few packages that the test feed has advisories for, and a layer of
/// Python packages on top:
///
/// - `apt` 2.6.1: DEBIAN-CVE-2011-3374 (urgency "unimportant": will not be fixed)
/// - `libgcc-s1` from `gcc-12`: DEBIAN-CVE-2023-4039 (CVSS 4.8, unfixed)
/// - `libssl3` and `openssl` from `openssl` 3.0.11-1~deb12u2: DEBIAN-CVE-2023-5678
///   (urgency low, fixed in 3.0.13-1~deb12u1)
/// - `openssh-client` 1:9.2p1-2+deb12u2: DEBIAN-CVE-2024-6387 (CVSS 8.1, fixed in
///   1:9.2p1-2+deb12u3)
/// - `zlib1g`: no advisory for this version
/// - PyPI `requests` 2.28.1 (GHSA-j8r2-6x86-q33q, moderate), `PyYAML` 5.3.1
///   (GHSA-8q59-q68h-6hv4, critical) and `Jinja2` 3.1.3 (already fixed)
pub fn debian_python_image() -> ImageFixture {
    let base = LayerBuilder::default().file("etc/os-release", DEBIAN_OS_RELEASE).file("var/lib/dpkg/status", DPKG_STATUS).tar();
    let site = "usr/local/lib/python3.11/site-packages";
    let python = LayerBuilder::default()
        .file(&format!("{site}/requests-2.28.1.dist-info/METADATA"), &python_metadata("requests", "2.28.1"))
        .file(&format!("{site}/PyYAML-5.3.1.dist-info/METADATA"), &python_metadata("PyYAML", "5.3.1"))
        .file(&format!("{site}/Jinja2-3.1.3.dist-info/METADATA"), &python_metadata("Jinja2", "3.1.3"))
        .tar();
    ImageFixture::new(vec![base, python])
}

fn python_metadata(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes()
}

const DEBIAN_OS_RELEASE: &[u8] = br#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"#;

const DPKG_STATUS: &[u8] = b"Package: apt
Status: install ok installed
Architecture: amd64
Version: 2.6.1

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2

Package: openssh-client
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u2

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
";

//! `docker save` archives: a tar of `manifest.json`, the image config and one tar per
//! layer, either `<id>/layer.tar` (the legacy layout) or `blobs/sha256/<hex>` (Docker 25
//! and later, which also links the legacy paths to the blobs).
//!
//! The archive is read in place: one pass over its headers (seeking over contents)
//! records where each entry's bytes are, and each layer is then streamed from that
//! offset. Nothing is extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use slipway_oci::Digest;

use super::{ConfigDocument, Image, ImageSource, Layer, parse_digest, verify};
use crate::ScanError;
use crate::analyzer::Limits;
use crate::analyzer::tar_stream::{Source, TarStream};

/// Small documents (manifest.json, the config) are read whole under this cap.
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// A `docker save` archive holds a few files per layer; the index of its entries is
/// kept in memory, so an archive of millions of files is refused.
const MAX_ARCHIVE_ENTRIES: usize = 100_000;

/// Skips over layer contents by seeking, so that indexing reads only the headers.
struct Seeking<R>(R);

impl<R: Read> Read for Seeking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read + Seek> Source for Seeking<BufReader<R>> {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let n = i64::try_from(n).map_err(std::io::Error::other)?;
        self.0.seek_relative(n)
    }
}

/// What a legacy `layer.tar` is: the layer's uncompressed tar, whose digest is the
/// config's diff ID.
const LEGACY_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// One image of a `docker save` archive.
#[derive(Debug)]
pub struct DockerArchive {
    path: PathBuf,
    image: Image,
    /// Offset and size of each layer's bytes in the archive, parallel to the layers.
    spans: Vec<(u64, u64)>,
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Where an entry's bytes are, or the entry a symbolic link points to.
#[derive(Debug)]
enum Span {
    File { offset: u64, size: u64 },
    Link(String),
}

impl DockerArchive {
    /// Opens the image `reference` (`repo:tag`, as `RepoTags` lists it) of the archive at
    /// `path`, or its only image. `name` is what the report calls the image.
    pub fn open(path: &Path, reference: Option<&str>, name: &str) -> Result<DockerArchive, ScanError> {
        let spans = index(path)?;
        let mut file = File::open(path)?;
        let manifest: Vec<ManifestEntry> = serde_json::from_slice(&read_entry(&mut file, &spans, "manifest.json")?)
            .map_err(|e| ScanError::InvalidImage(format!("manifest.json is not valid: {e}")))?;
        let entry = select(&manifest, reference, path)?;

        let config_bytes = read_entry(&mut file, &spans, &entry.config)?;
        let config_digest = match blob_digest(&entry.config)? {
            Some(digest) => digest,
            // Legacy configs are named `<hex>.json` after their sha256.
            None => parse_digest(&format!("sha256:{}", entry.config.trim_end_matches(".json")))?,
        };
        verify(&config_digest, &config_bytes)?;
        let config: ConfigDocument =
            serde_json::from_slice(&config_bytes).map_err(|e| ScanError::InvalidImage(format!("image config is not valid: {e}")))?;
        let diff_ids = config.rootfs.as_ref().map(|r| &r.diff_ids[..]).unwrap_or_default();

        let mut layers = Vec::with_capacity(entry.layers.len());
        let mut layer_spans = Vec::with_capacity(entry.layers.len());
        for (index, layer_path) in entry.layers.iter().enumerate() {
            let (offset, size) = resolve(&spans, layer_path)?;
            let (digest, media_type) = match blob_digest(layer_path)? {
                // The blob's own digest: whatever its compression, it names these bytes.
                Some(digest) => (digest, None),
                None => {
                    let diff_id = diff_ids.get(index).ok_or_else(|| {
                        ScanError::InvalidImage(format!(
                            "manifest.json lists {} layers but the config has {} diff IDs",
                            entry.layers.len(),
                            diff_ids.len()
                        ))
                    })?;
                    (parse_digest(diff_id)?, Some(LEGACY_LAYER.to_owned()))
                }
            };
            layers.push(Layer { digest, media_type, size: Some(size) });
            layer_spans.push((offset, size));
        }
        Ok(DockerArchive {
            path: path.to_owned(),
            image: Image { name: name.to_owned(), digest: None, config_digest: Some(config_digest), platform: config.platform(), layers },
            spans: layer_spans,
        })
    }
}

impl ImageSource for DockerArchive {
    fn image(&self) -> &Image {
        &self.image
    }

    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ScanError> {
        let (offset, size) = self.spans[index];
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(BufReader::with_capacity(256 << 10, file).take(size)))
    }
}

/// One pass over the archive's headers: where every file's bytes are.
fn index(path: &Path) -> Result<HashMap<String, Span>, ScanError> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 4];
    let read = file.read(&mut magic)?;
    if magic[..read].starts_with(&[0x1f, 0x8b]) || magic[..read].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(ScanError::InvalidImage(format!(
            "{} is compressed: layers are read in place from a plain tar, so decompress it first",
            path.display()
        )));
    }
    file.rewind()?;
    // Metadata entries are bounded as in layers: the archive is as untrusted as they are.
    let mut archive = TarStream::new(Seeking(BufReader::with_capacity(64 << 10, file)), Limits::default().max_header_bytes);
    let mut spans = HashMap::new();
    while let Some(entry) = archive.next_entry().map_err(|e| not_an_archive(path, &e))? {
        // An entry whose name was too long to read is none that manifest.json can name.
        let Some(raw_name) = entry.path else {
            continue;
        };
        let name = normalise(&String::from_utf8_lossy(&raw_name));
        let span = if entry.kind.is_symlink() {
            let Some(target) = entry.link else {
                continue;
            };
            let target = String::from_utf8_lossy(&target).into_owned();
            let dir = name.rsplit_once('/').map_or("", |(dir, _)| dir);
            Span::Link(normalise(&format!("{dir}/{target}")))
        } else if entry.kind.is_file() {
            Span::File { offset: entry.offset, size: entry.size }
        } else {
            continue;
        };
        if spans.len() >= MAX_ARCHIVE_ENTRIES {
            return Err(ScanError::InvalidImage(format!(
                "{} has more than {MAX_ARCHIVE_ENTRIES} files: not a docker save archive",
                path.display()
            )));
        }
        spans.insert(name, span);
    }
    Ok(spans)
}

fn not_an_archive(path: &Path, error: &std::io::Error) -> ScanError {
    ScanError::InvalidImage(format!("{} is not a readable docker save archive: {error}", path.display()))
}

/// Resolves `..`, `.` and empty components, so that links and manifest paths compare.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// Where a named entry's bytes are, following symbolic links within the archive.
fn resolve(spans: &HashMap<String, Span>, name: &str) -> Result<(u64, u64), ScanError> {
    let mut name = normalise(name);
    for _ in 0..8 {
        match spans.get(&name) {
            Some(Span::File { offset, size }) => return Ok((*offset, *size)),
            Some(Span::Link(target)) => name = target.clone(),
            None => break,
        }
    }
    Err(ScanError::InvalidImage(format!("the archive has no file {name:?} that manifest.json names")))
}

fn read_entry(file: &mut File, spans: &HashMap<String, Span>, name: &str) -> Result<Vec<u8>, ScanError> {
    let (offset, size) = resolve(spans, name)?;
    if size > MAX_DOCUMENT_BYTES {
        return Err(ScanError::InvalidImage(format!("{name} is {size} bytes, too large for an image document")));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
    file.take(size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The digest a `blobs/<algorithm>/<hex>` path names; `None` for other paths.
fn blob_digest(path: &str) -> Result<Option<Digest>, ScanError> {
    let path = normalise(path);
    match path.strip_prefix("blobs/").and_then(|rest| rest.split_once('/')) {
        Some((algorithm, hex)) => parse_digest(&format!("{algorithm}:{hex}")).map(Some),
        None => Ok(None),
    }
}

fn select<'m>(manifest: &'m [ManifestEntry], reference: Option<&str>, path: &Path) -> Result<&'m ManifestEntry, ScanError> {
    let tags = || -> String {
        let tags: Vec<&str> = manifest.iter().flat_map(|e| e.repo_tags.iter().flatten()).map(String::as_str).collect();
        if tags.is_empty() { "no tags".to_owned() } else { format!("tags {}", tags.join(", ")) }
    };
    match (reference, manifest) {
        (Some(reference), _) => manifest
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|t| t == reference))
            .ok_or_else(|| ScanError::InvalidImage(format!("no image {reference:?} in {} (it has {})", path.display(), tags()))),
        (None, [only]) => Ok(only),
        (None, []) => Err(ScanError::InvalidImage(format!("{} holds no image", path.display()))),
        (None, many) => Err(ScanError::InvalidImage(format!(
            "{} holds {} images ({}): name one as docker-archive:FILE:REPO:TAG",
            path.display(),
            many.len(),
            tags()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_and_blob_paths_name_digests() {
        assert_eq!(normalise("abc/../blobs/sha256/x"), "blobs/sha256/x");
        assert_eq!(normalise("./manifest.json"), "manifest.json");
        let hex = "a".repeat(64);
        assert_eq!(blob_digest(&format!("blobs/sha256/{hex}")).unwrap().unwrap().to_string(), format!("sha256:{hex}"));
        assert!(blob_digest("abc/layer.tar").unwrap().is_none());
        assert!(blob_digest("blobs/sha256/short").is_err());
    }
}

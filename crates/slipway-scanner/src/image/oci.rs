//! OCI image layouts: `oci-layout`, `index.json` and `blobs/<algorithm>/<hex>`.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use slipway_oci::Digest;

use super::{
    ConfigDocument, Image, ImageSource, IndexDocument, IndexEntry, Layer, ManifestDocument, Platform, is_index, parse_digest,
    select_platform, verify,
};
use crate::ScanError;

/// The annotation that names a manifest in an index, as `skopeo copy oci:DIR:TAG` and
/// `docker buildx --output type=oci` write it.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Manifests, indexes and configs are small; a larger one is not a real document.
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// An image in an OCI image layout directory.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    image: Image,
}

impl OciLayout {
    /// Opens the image tagged `tag` (or the layout's only image), choosing among the
    /// platforms of a multi-platform index with `platform` (default: the host's, then
    /// linux/amd64). `name` is what the report calls the image.
    pub fn open(dir: &Path, tag: Option<&str>, platform: Option<&Platform>, name: &str) -> Result<OciLayout, ScanError> {
        let index: IndexDocument = read_json(&dir.join("index.json"), "index.json")?;
        let entry = select_tagged(&index.manifests, tag, dir)?;
        let mut digest = parse_digest(&entry.digest)?;
        let mut manifest: ManifestDocument = blob_json(dir, &digest)?;
        // Indexes may nest (an index naming a multi-platform index); a few levels suffice.
        for _ in 0..4 {
            if !is_index(&manifest) {
                break;
            }
            let children = manifest.manifests.unwrap_or_default();
            let child = select_platform(&children, platform)?;
            digest = parse_digest(&child.digest)?;
            manifest = blob_json(dir, &digest)?;
        }
        if is_index(&manifest) {
            return Err(ScanError::InvalidImage("indexes nest too deeply".to_owned()));
        }
        let config_descriptor = manifest.config.ok_or_else(|| ScanError::InvalidImage(format!("manifest {digest} has no config")))?;
        let config_digest = parse_digest(&config_descriptor.digest)?;
        let config: ConfigDocument = blob_json(dir, &config_digest)?;
        let layers = manifest
            .layers
            .into_iter()
            .map(|layer| Ok(Layer { digest: parse_digest(&layer.digest)?, media_type: layer.media_type, size: layer.size }))
            .collect::<Result<Vec<_>, ScanError>>()?;
        Ok(OciLayout {
            dir: dir.to_owned(),
            image: Image {
                name: name.to_owned(),
                digest: Some(digest),
                config_digest: Some(config_digest),
                platform: config.platform(),
                layers,
            },
        })
    }
}

impl ImageSource for OciLayout {
    fn image(&self) -> &Image {
        &self.image
    }

    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ScanError> {
        let digest = &self.image.layers[index].digest;
        let path = blob_path(&self.dir, digest);
        let file = File::open(&path).map_err(|e| missing_blob(&path, e))?;
        Ok(Box::new(BufReader::with_capacity(256 << 10, file)))
    }
}

fn select_tagged<'i>(entries: &'i [IndexEntry], tag: Option<&str>, dir: &Path) -> Result<&'i IndexEntry, ScanError> {
    let names = || -> String {
        let names: Vec<&str> = entries.iter().filter_map(|e| e.annotations.get(REF_NAME).map(String::as_str)).collect();
        if names.is_empty() { "no tags".to_owned() } else { format!("tags {}", names.join(", ")) }
    };
    match tag {
        Some(tag) => entries
            .iter()
            .find(|entry| {
                entry.annotations.get(REF_NAME).is_some_and(|name| name == tag || name.rsplit_once(':').is_some_and(|(_, t)| t == tag))
            })
            .ok_or_else(|| ScanError::InvalidImage(format!("no image tagged {tag:?} in {} (it has {})", dir.display(), names()))),
        None => match entries {
            [only] => Ok(only),
            [] => Err(ScanError::InvalidImage(format!("{} holds no image", dir.display()))),
            _ => Err(ScanError::InvalidImage(format!(
                "{} holds {} images ({}): name one as oci:DIR:TAG",
                dir.display(),
                entries.len(),
                names()
            ))),
        },
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join(digest.algorithm().as_str()).join(digest.hex())
}

/// Reads a small blob, checks its digest and parses it.
fn blob_json<T: serde::de::DeserializeOwned>(dir: &Path, digest: &Digest) -> Result<T, ScanError> {
    let path = blob_path(dir, digest);
    let bytes = read_small(&path).map_err(|e| match e {
        ScanError::Io(io) => missing_blob(&path, io),
        other => other,
    })?;
    verify(digest, &bytes)?;
    serde_json::from_slice(&bytes).map_err(|e| ScanError::InvalidImage(format!("blob {digest} is not a valid document: {e}")))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, ScanError> {
    let bytes = read_small(path).map_err(|e| match e {
        ScanError::Io(io) => ScanError::InvalidImage(format!("cannot read {}: {io} (is it an OCI image layout?)", path.display())),
        other => other,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ScanError::InvalidImage(format!("{what} is not valid: {e}")))
}

fn read_small(path: &Path) -> Result<Vec<u8>, ScanError> {
    let size = fs::metadata(path)?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(ScanError::InvalidImage(format!("{} is {size} bytes, too large for an image document", path.display())));
    }
    Ok(fs::read(path)?)
}

fn missing_blob(path: &Path, error: std::io::Error) -> ScanError {
    ScanError::InvalidImage(format!("cannot read blob {}: {error}", path.display()))
}

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::media_type::{self, MANIFEST_TYPES, is_index, is_non_distributable};

/// The spec's suggested manifest size limit; larger pushes get 413.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    #[error("schema 1 manifests are not supported; push an OCI or Docker schema 2 manifest")]
    SchemaOne,
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("{0} descriptor is missing or malformed")]
    Descriptor(&'static str),
    #[error("descriptor digest {0:?} is invalid")]
    DescriptorDigest(String),
    #[error("an image manifest needs a config descriptor")]
    MissingConfig,
    #[error("an index needs a manifests array")]
    MissingManifests,
}

/// What the registry keeps of a descriptor: enough to check existence and answer referrers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Clone, Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: i64,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Value>,
}

/// The registry's view of a pushed manifest (image manifest or index, OCI or Docker).
#[derive(Clone, Debug)]
pub struct ParsedManifest {
    /// The media type it is stored and served under.
    pub media_type: String,
    /// What the referrers API reports: `artifactType`, else an image's config media type.
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// Child manifests of an index.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// Annotations as pushed, re-served verbatim by the referrers API.
    pub annotations: Option<Value>,
}

impl ParsedManifest {
    /// Parses and validates a manifest. `content_type` is the request's Content-Type.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        let header = content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim()).filter(|ct| !ct.is_empty());

        let body_type = raw.media_type.as_deref().filter(|t| !t.is_empty());
        if [body_type, header].iter().flatten().any(|t| *t == media_type::DOCKER_MANIFEST_V1 || *t == media_type::DOCKER_MANIFEST_V1_SIGNED)
            || raw.schema_version == Some(1)
        {
            return Err(ManifestError::SchemaOne);
        }
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        if let (Some(body), Some(header)) = (body_type, header)
            && body != header
            && MANIFEST_TYPES.contains(&header)
        {
            return Err(ManifestError::MediaTypeMismatch { body: body.to_owned(), header: header.to_owned() });
        }
        let media_type = body_type
            .or(header.filter(|h| MANIFEST_TYPES.contains(h)))
            .map(str::to_owned)
            .unwrap_or_else(|| if raw.manifests.is_some() { media_type::OCI_INDEX } else { media_type::OCI_MANIFEST }.to_owned());

        let config = raw.config.map(|d| descriptor(d, "config")).transpose()?;
        let layers = descriptors(raw.layers, "layer")?;
        let manifests = descriptors(raw.manifests.clone(), "manifests")?;
        let subject = raw.subject.map(|d| descriptor(d, "subject")).transpose()?;

        if is_index(&media_type) {
            if raw.manifests.is_none() {
                return Err(ManifestError::MissingManifests);
            }
        } else if config.is_none() {
            return Err(ManifestError::MissingConfig);
        }
        let artifact_type = raw
            .artifact_type
            .filter(|t| !t.is_empty())
            .or_else(|| (!is_index(&media_type)).then(|| config.as_ref().map(|c| c.media_type.clone())).flatten());

        Ok(ParsedManifest {
            media_type,
            artifact_type,
            config,
            layers,
            manifests,
            subject,
            annotations: raw.annotations.filter(|a| a.is_object()),
        })
    }

    /// Blobs that must already be in the repository for the push to be accepted.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Digest> {
        self.config.iter().chain(self.layers.iter().filter(|l| !is_non_distributable(&l.media_type))).map(|d| &d.digest)
    }
}

fn descriptor(raw: RawDescriptor, what: &'static str) -> Result<Descriptor, ManifestError> {
    let digest = raw.digest.parse().map_err(|_| ManifestError::DescriptorDigest(raw.digest.clone()))?;
    let size = u64::try_from(raw.size).map_err(|_| ManifestError::Descriptor(what))?;
    Ok(Descriptor { media_type: raw.media_type, digest, size })
}

fn descriptors(raw: Option<Vec<RawDescriptor>>, what: &'static str) -> Result<Vec<Descriptor>, ManifestError> {
    raw.unwrap_or_default().into_iter().map(|d| descriptor(d, what)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_with_subject_and_foreign_layer() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.example.sbom","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10}},
                      {{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{}","size":10,"urls":["https://x"]}}],
            "subject":{{"mediaType":"{}","digest":"{}","size":5}},"annotations":{{"a":"b"}}}}"#,
            media_type::OCI_MANIFEST,
            d('a'),
            d('b'),
            d('c'),
            media_type::OCI_MANIFEST,
            d('d')
        );
        let m = ParsedManifest::parse(body.as_bytes(), Some(media_type::OCI_MANIFEST)).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.example.sbom"));
        let required: Vec<String> = m.required_blobs().map(|d| d.to_string()).collect();
        assert_eq!(required, vec![d('a'), d('b')]);
        assert_eq!(m.subject.unwrap().digest.to_string(), d('d'));
    }

    #[test]
    fn media_type_comes_from_header_when_body_has_none() {
        let body = format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"x","digest":"{}","size":1}}]}}"#, d('e'));
        let m = ParsedManifest::parse(body.as_bytes(), Some(media_type::DOCKER_MANIFEST_LIST)).unwrap();
        assert_eq!(m.media_type, media_type::DOCKER_MANIFEST_LIST);
        assert_eq!(m.artifact_type, None);
        assert_eq!(m.manifests.len(), 1);
    }

    #[test]
    fn refuses_invalid_manifests() {
        let cases = [
            ("not json".to_owned(), ManifestError::Json(String::new())),
            (r#"{"schemaVersion":1}"#.to_owned(), ManifestError::SchemaOne),
            (r#"{"schemaVersion":3}"#.to_owned(), ManifestError::SchemaVersion),
            (r#"{"schemaVersion":2,"layers":[]}"#.to_owned(), ManifestError::MissingConfig),
            (
                r#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1}}"#.to_string(),
                ManifestError::DescriptorDigest("sha256:zz".into()),
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"{}","size":1}}}}"#, media_type::OCI_MANIFEST, d('a')),
                ManifestError::MediaTypeMismatch { body: media_type::OCI_MANIFEST.into(), header: media_type::OCI_INDEX.into() },
            ),
        ];
        for (body, expected) in cases {
            let header = match expected {
                ManifestError::MediaTypeMismatch { .. } => media_type::OCI_INDEX,
                _ => media_type::OCI_MANIFEST,
            };
            let err = ParsedManifest::parse(body.as_bytes(), Some(header)).unwrap_err();
            match (&err, &expected) {
                (ManifestError::Json(_), ManifestError::Json(_)) => {}
                _ => assert_eq!(err, expected, "{body}"),
            }
        }
    }
}

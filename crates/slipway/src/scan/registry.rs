//! Images pulled from a registry over the OCI Distribution API: manifests (OCI index,
//! OCI image manifest, Docker schema 2 and manifest lists), the config, and layers
//! streamed into the scanner, every blob checked against its digest.
//!
//! Authentication follows the registry's challenge: a `Bearer` challenge sends the
//! client to the token realm (anonymously, or with the given credentials as HTTP
//! Basic), a `Basic` challenge takes the credentials directly.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail, ensure};
use futures::TryStreamExt;
use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use slipway_oci::{Digest, RepoName, media_type};
use slipway_scanner::ScanError;
use slipway_scanner::image::{ConfigDocument, Image, ImageSource, Layer, ManifestDocument, Platform, is_index, select_platform, verify};
use tokio::runtime::Handle;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Manifests larger than the distribution spec's suggested limit are refused.
const MAX_MANIFEST_BYTES: usize = slipway_oci::MAX_MANIFEST_BYTES;
/// Configs are small JSON documents; anything much larger is not one.
const MAX_CONFIG_BYTES: usize = 8 << 20;

/// Docker Hub, where a name without a registry host is looked up (as `docker pull` does).
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's registry API answers on.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// `HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub host: String,
    pub repository: RepoName,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Reads a reference as docker does: when the first component has no `.` or `:` and
    /// is not `localhost`, it is no host, and the name is on `default_host` (Docker Hub,
    /// or a mirror standing in for it), where a one-component name is an official image
    /// under `library/` (`alpine:3` is `docker.io/library/alpine:3`).
    pub fn parse_with_default(text: &str, default_host: &str) -> anyhow::Result<ImageRef> {
        let qualified = match text.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => text.to_owned(),
            Some(_) => format!("{default_host}/{text}"),
            None => format!("{default_host}/library/{text}"),
        };
        let mut reference: ImageRef = qualified.parse()?;
        if reference.is_docker_hub() && !reference.repository.as_str().contains('/') {
            reference.repository = format!("library/{}", reference.repository.as_str()).parse()?;
        }
        Ok(reference)
    }

    fn is_docker_hub(&self) -> bool {
        self.host == DOCKER_HUB || self.host == "index.docker.io"
    }

    /// Where the registry API is: Docker Hub's names live on another host than its API.
    fn api_host(&self) -> &str {
        if self.is_docker_hub() { DOCKER_HUB_API } else { &self.host }
    }

    /// The tag or digest a manifest is fetched by: the digest when both are given.
    fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// Whether the host is this machine: such registries are spoken to over plain HTTP.
    fn is_loopback(&self) -> bool {
        let host = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(host, port)| if port.chars().all(|c| c.is_ascii_digit()) { host } else { self.host.as_str() });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl FromStr for ImageRef {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<ImageRef> {
        let (host, rest) = text.split_once('/').with_context(|| {
            format!("{text:?} is not an image reference: expected HOST[:PORT]/REPOSITORY[:TAG], oci:DIR[:TAG] or docker-archive:FILE")
        })?;
        ensure!(host.contains(['.', ':']) || host == "localhost", "{text:?} names no registry host: write HOST[:PORT]/REPOSITORY[:TAG]");
        let (name, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest.parse::<Digest>().with_context(|| format!("invalid digest in {text:?}"))?)),
            None => (rest, None),
        };
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (name, None),
        };
        let tag = tag
            .map(|t| t.parse::<slipway_oci::Tag>().map(|t| t.as_str().to_owned()).with_context(|| format!("invalid tag in {text:?}")))
            .transpose()?;
        let repository = repository.parse::<RepoName>().with_context(|| format!("invalid repository name in {text:?}"))?;
        Ok(ImageRef { host: host.to_owned(), repository, tag, digest })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository.as_str())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// How to reach and sign in to a registry.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// Plain HTTP for a host that is not loopback.
    pub insecure: bool,
    pub credentials: Option<(String, String)>,
}

/// What a request authenticates with, once a challenge said how.
#[derive(Clone, Debug)]
enum Authorization {
    Bearer(String),
    Basic,
}

/// A client for one repository of one registry. Not `Debug`: it holds credentials.
struct Client {
    http: reqwest::Client,
    base: String,
    repository: String,
    credentials: Option<(String, String)>,
    authorization: Mutex<Option<Authorization>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params).
    fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let mut params = Vec::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let mut value = String::new();
                    let mut chars = quoted.char_indices();
                    let mut end = None;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => value.extend(chars.next().map(|(_, c)| c)),
                            '"' => {
                                end = Some(i + 1);
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    (value, &quoted[end?..])
                }
                None => {
                    let end = after.find(',').unwrap_or(after.len());
                    (after[..end].trim().to_owned(), &after[end..])
                }
            };
            params.push((key.trim().to_ascii_lowercase(), value));
            rest = after.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Client {
    /// GETs `url`, answering one authentication challenge if the registry sends one.
    async fn get(&self, url: &str, accept: Option<&str>) -> anyhow::Result<Response> {
        for attempt in 0..2 {
            let mut request = self.http.get(url);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            let authorization = self.authorization.lock().unwrap_or_else(|p| p.into_inner()).clone();
            request = match (authorization, &self.credentials) {
                (Some(Authorization::Bearer(token)), _) => request.bearer_auth(token),
                (Some(Authorization::Basic), Some((user, password))) => request.basic_auth(user, Some(password)),
                _ => request,
            };
            let response = request.send().await.with_context(|| format!("GET {url}"))?;
            if response.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(Challenge::parse)
                .with_context(|| format!("GET {url}: 401 without a usable WWW-Authenticate challenge"))?;
            let authorization = self.authenticate(&challenge).await?;
            *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(authorization);
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn authenticate(&self, challenge: &Challenge) -> anyhow::Result<Authorization> {
        match challenge.scheme.as_str() {
            "basic" => {
                ensure!(self.credentials.is_some(), "the registry asks for credentials: pass --username and --password-stdin");
                Ok(Authorization::Basic)
            }
            "bearer" => {
                let realm = challenge.param("realm").context("Bearer challenge without a realm")?;
                let mut query: Vec<(&str, String)> = Vec::new();
                if let Some(service) = challenge.param("service") {
                    query.push(("service", service.to_owned()));
                }
                // An insufficient_scope challenge names the scope it wants.
                let scope = challenge.param("scope").map_or_else(|| format!("repository:{}:pull", self.repository), str::to_owned);
                query.push(("scope", scope));
                let mut request = self.http.get(realm).query(&query);
                if let Some((user, password)) = &self.credentials {
                    request = request.basic_auth(user, Some(password));
                }
                let response = request.send().await.with_context(|| format!("asking {realm} for a token"))?;
                let status = response.status();
                if status == StatusCode::UNAUTHORIZED {
                    match self.credentials {
                        Some(_) => bail!("{realm} refused the credentials ({status})"),
                        None => bail!("{realm} gives no anonymous tokens ({status}): pass --username and --password-stdin"),
                    }
                }
                ensure!(status.is_success(), "{realm} answered {status} to a token request");
                let body: serde_json::Value = response.json().await.with_context(|| format!("reading the token from {realm}"))?;
                let token = body["token"]
                    .as_str()
                    .or_else(|| body["access_token"].as_str())
                    .with_context(|| format!("{realm} answered without a token"))?;
                Ok(Authorization::Bearer(token.to_owned()))
            }
            other => bail!("the registry asks for {other} authentication, which is not supported"),
        }
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    /// A manifest's bytes and media type, checked against `expected` when it is a digest.
    async fn manifest(&self, reference: &str, expected: Option<&Digest>) -> anyhow::Result<(Vec<u8>, Digest)> {
        let accept =
            [media_type::OCI_INDEX, media_type::OCI_MANIFEST, media_type::DOCKER_MANIFEST_LIST, media_type::DOCKER_MANIFEST].join(", ");
        let response = self.get(&self.url("manifests", reference), Some(&accept)).await?;
        let response = check(response, &format!("manifest {}:{reference}", self.repository)).await?;
        let bytes = read_limited(response, MAX_MANIFEST_BYTES, "manifest").await?;
        let digest = match expected {
            Some(expected) => {
                verify(expected, &bytes).context("the registry served a manifest that does not match its digest")?;
                expected.clone()
            }
            None => Digest::of(slipway_oci::Algorithm::Sha256, &bytes),
        };
        Ok((bytes, digest))
    }

    async fn blob(&self, digest: &Digest) -> anyhow::Result<Response> {
        let response = self.get(&self.url("blobs", &digest.to_string()), None).await?;
        check(response, &format!("blob {digest}")).await
    }
}

/// Turns an error status into an error naming what was asked for.
async fn check(response: Response, what: &str) -> anyhow::Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let detail =
        body["errors"][0]["message"].as_str().or_else(|| body["errors"][0]["code"].as_str()).map(|m| format!(": {m}")).unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            bail!("{what}: access denied ({status}){detail}; pass --username and --password-stdin if the repository needs them")
        }
        StatusCode::NOT_FOUND => bail!("{what} not found{detail}"),
        _ => bail!("{what}: the registry answered {status}{detail}"),
    }
}

async fn read_limited(response: Response, limit: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.try_next().await.with_context(|| format!("reading the {what}"))? {
        ensure!(bytes.len() + chunk.len() <= limit, "the {what} is larger than {limit} bytes");
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// An image in a registry, its layers streamed on demand.
pub struct RegistryImage {
    client: Arc<Client>,
    image: Image,
    handle: Handle,
}

impl RegistryImage {
    /// Resolves `reference` to one image manifest (choosing `platform` in an index) and
    /// reads its config. Must be called within a Tokio runtime, whose handle the layer
    /// streams use later.
    pub async fn open(
        reference: &ImageRef,
        options: &RegistryOptions,
        platform: Option<&Platform>,
        name: &str,
    ) -> anyhow::Result<RegistryImage> {
        let scheme = if options.insecure || reference.is_loopback() { "http" } else { "https" };
        let http = slipway_net::client().build().context("building the HTTP client")?;
        let client = Client {
            http,
            base: format!("{scheme}://{}", reference.api_host()),
            repository: reference.repository.as_str().to_owned(),
            credentials: options.credentials.clone(),
            authorization: Mutex::new(None),
        };
        let (mut bytes, mut digest) = client.manifest(&reference.reference(), reference.digest.as_ref()).await?;
        let mut manifest = parse_manifest(&bytes)?;
        if is_index(&manifest) {
            let entries = manifest.manifests.take().unwrap_or_default();
            let entry = select_platform(&entries, platform)?;
            let child: Digest = entry.digest.parse().with_context(|| format!("invalid digest {:?} in the index", entry.digest))?;
            (bytes, digest) = client.manifest(&child.to_string(), Some(&child)).await?;
            manifest = parse_manifest(&bytes)?;
            ensure!(!is_index(&manifest), "the index names another index for its platform");
        }
        let config = manifest.config.as_ref().context("the manifest has no config")?;
        let config_digest: Digest = config.digest.parse().with_context(|| format!("invalid config digest {:?}", config.digest))?;
        let config_bytes = read_limited(client.blob(&config_digest).await?, MAX_CONFIG_BYTES, "image config").await?;
        verify(&config_digest, &config_bytes).context("the registry served a config that does not match its digest")?;
        let config: ConfigDocument = serde_json::from_slice(&config_bytes).context("the image config is not valid JSON")?;
        let layers = manifest
            .layers
            .iter()
            .map(|layer| {
                Ok(Layer {
                    digest: layer.digest.parse().with_context(|| format!("invalid layer digest {:?}", layer.digest))?,
                    media_type: layer.media_type.clone(),
                    size: layer.size,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(RegistryImage {
            client: Arc::new(client),
            image: Image {
                name: name.to_owned(),
                digest: Some(digest),
                config_digest: Some(config_digest),
                platform: config.platform(),
                layers,
            },
            handle: Handle::current(),
        })
    }
}

fn parse_manifest(bytes: &[u8]) -> anyhow::Result<ManifestDocument> {
    let manifest: ManifestDocument = serde_json::from_slice(bytes).context("the manifest is not valid JSON")?;
    ensure!(manifest.schema_version == Some(2), "only schema 2 manifests (OCI, Docker v2) can be scanned");
    Ok(manifest)
}

impl ImageSource for RegistryImage {
    fn image(&self) -> &Image {
        &self.image
    }

    /// Called from the scanner's worker threads, outside the runtime: the request is
    /// driven on the runtime and its body bridged into a blocking reader.
    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ScanError> {
        let digest = &self.image.layers[index].digest;
        let response = self.handle.block_on(self.client.blob(digest)).map_err(|e| ScanError::Fetch(e.into()))?;
        let stream = Box::pin(response.bytes_stream().map_err(std::io::Error::other));
        Ok(Box::new(SyncIoBridge::new_with_handle(StreamReader::new(stream), self.handle.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r: ImageRef = "127.0.0.1:5000/acme/app:1.0".parse().unwrap();
        assert_eq!((r.host.as_str(), r.repository.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "acme/app", Some("1.0")));
        assert!(r.is_loopback());
        assert_eq!(r.reference(), "1.0");
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned: ImageRef = format!("registry.example/app@{digest}").parse().unwrap();
        assert_eq!(pinned.reference(), digest);
        assert!(!pinned.is_loopback());
        let latest: ImageRef = "localhost:5000/app".parse().unwrap();
        assert_eq!(latest.reference(), "latest");
        assert!(latest.is_loopback());
        assert!("[::1]:5000/app".parse::<ImageRef>().unwrap().is_loopback());
        assert!("acme/app:1.0".parse::<ImageRef>().unwrap_err().to_string().contains("names no registry host"));
        assert!("app".parse::<ImageRef>().is_err());
        assert!("host.example/App".parse::<ImageRef>().is_err());
    }

    #[test]
    fn short_names_resolve_as_docker_resolves_them() {
        let hub = |text: &str| ImageRef::parse_with_default(text, DOCKER_HUB).unwrap();
        for (text, expected) in [
            ("alpine", "docker.io/library/alpine"),
            ("alpine:3", "docker.io/library/alpine:3"),
            ("library/alpine:3", "docker.io/library/alpine:3"),
            ("docker.io/alpine", "docker.io/library/alpine"),
            ("index.docker.io/alpine", "index.docker.io/library/alpine"),
            ("acme/app:1.0", "docker.io/acme/app:1.0"),
            ("ghcr.io/acme/app", "ghcr.io/acme/app"),
            ("localhost/app", "localhost/app"),
            ("localhost:5000/app", "localhost:5000/app"),
            ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
        ] {
            assert_eq!(hub(text).to_string(), expected, "{text}");
        }
        let pinned = hub(&format!("alpine@sha256:{}", "a".repeat(64)));
        assert_eq!(pinned.repository.as_str(), "library/alpine");
        assert_eq!(hub("alpine").api_host(), "registry-1.docker.io");
        assert_eq!(hub("ghcr.io/acme/app").api_host(), "ghcr.io");
        // A mirror standing in for Docker Hub keeps Docker Hub's names.
        let mirrored = ImageRef::parse_with_default("alpine:3", "127.0.0.1:5000").unwrap();
        assert_eq!(mirrored.to_string(), "127.0.0.1:5000/library/alpine:3");
        assert!(mirrored.is_loopback());
        assert!(ImageRef::parse_with_default("Alpine", DOCKER_HUB).is_err());
        assert!(ImageRef::parse_with_default("", DOCKER_HUB).is_err());
    }

    #[test]
    fn challenges_parse() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        let basic = Challenge::parse(r#"Basic realm="Registry \"x\"""#).unwrap();
        assert_eq!((basic.scheme.as_str(), basic.param("realm")), ("basic", Some("Registry \"x\"")));
        assert_eq!(Challenge::parse("Basic").unwrap().params, vec![]);
    }
}

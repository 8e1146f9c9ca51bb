//! The publisher's security pages, private to its members and staff (anyone else gets
//! "not found"): its repositories; a repository's tags by platform with size, OS and the
//! vulnerabilities per class; an image's history: its layers from the base, each with the
//! build step that made it, the components it brought and their vulnerabilities (severity,
//! CVSS, fixed version, a link to the CVE entry); and the results as a download.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use slipway_policy::{Action, Resource, decide};
use slipway_security::{ExportFormat, FindingEntry, ImageResults, LayerEntry, MAX_TAGS, PackageEntry, ScanningError, TaggedVersion};
use slipway_types::ErrorKind;

use super::{Chrome, PageError, PageResult, Visit, filters};
use crate::WebState;

impl From<ScanningError> for PageError {
    fn from(e: ScanningError) -> PageError {
        PageError::Refused(e.kind(), e.to_string())
    }
}

fn security_path(org: &str) -> String {
    format!("/publish/{org}/security")
}

/// Not found, as for an organization without repositories: whether `org` exists is not
/// told to those who may not see its scans.
fn not_found(org: &str) -> PageError {
    PageError::Refused(ErrorKind::NotFound, format!("no repositories of {org} to show"))
}

/// A repository named in a query, checked to be `org`'s.
fn own_repository<'a>(org: &str, repository: &'a str) -> Result<&'a str, PageError> {
    match repository.split_once('/') {
        Some((namespace, rest)) if namespace == org && !rest.is_empty() => Ok(repository),
        _ => Err(not_found(org)),
    }
}

#[derive(Deserialize)]
pub(super) struct RepositoryQuery {
    repository: Option<String>,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    chrome: Chrome,
    org: String,
    repositories: Vec<String>,
    /// The repository shown, with its tags (the most recent [`MAX_TAGS`]).
    selected: Option<String>,
    tags: Vec<TaggedVersion>,
    max_tags: usize,
}

pub(super) async fn repositories(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<RepositoryQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&security_path(&org))?;
    let namespace = format!("{org}/");
    if !decide(&viewer.actor(), Action::ReadScans, &Resource::Scans { repository: &namespace }).is_allowed() {
        return Err(not_found(&org));
    }
    let repositories = state.scanning.repositories_of(Some(&viewer.subject), &org).await?;
    let (selected, tags) = match query.repository.as_deref() {
        Some(repository) => {
            let repository = own_repository(&org, repository)?;
            (Some(repository.to_owned()), state.scanning.tagged_versions(Some(&viewer.subject), repository).await?)
        }
        None => (None, Vec::new()),
    };
    visit.render(SecurityPage { chrome: visit.chrome_clone(), org, repositories, selected, tags, max_tags: MAX_TAGS })
}

#[derive(Deserialize)]
pub(super) struct ImageQuery {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    format: String,
}

/// A layer as the image page shows it: the build step, and the components it brought
/// with their vulnerabilities.
struct LayerView {
    layer: LayerEntry,
    components: Vec<Component>,
}

impl LayerView {
    /// Whether a component it brought has a known vulnerability: such layers show open.
    fn vulnerable(&self) -> bool {
        self.components.iter().any(|c| !c.findings.is_empty())
    }
}

struct Component {
    package: PackageEntry,
    findings: Vec<FindingEntry>,
}

impl Component {
    /// The component's most severe class, for its row.
    fn worst(&self) -> &str {
        self.findings.first().map_or("", |f| f.class.as_str())
    }
}

/// Where a vulnerability is described: the CVE list for a CVE id, OSV for the rest.
fn entry_url(finding: &FindingEntry) -> String {
    match std::iter::once(&finding.advisory_id).chain(&finding.aliases).find(|id| id.starts_with("CVE-")) {
        Some(cve) => format!("https://www.cve.org/CVERecord?id={cve}"),
        None => format!("https://osv.dev/vulnerability/{}", finding.advisory_id),
    }
}

#[derive(Template)]
#[template(path = "security_image.html")]
struct ImagePage {
    chrome: Chrome,
    org: String,
    repository: String,
    image: ImageResults,
    layers: Vec<LayerView>,
    /// Components in no layer the manifest lists (none, for a well-formed image).
    unplaced: Vec<Component>,
}

impl ImagePage {
    fn url(&self, finding: &FindingEntry) -> String {
        entry_url(finding)
    }

    fn export(&self, format: &str) -> String {
        format!("/publish/{}/security/export?repository={}&digest={}&format={format}", self.org, self.repository, self.image.digest)
    }
}

/// The components of `packages` with their findings, most severe first.
fn components(packages: Vec<PackageEntry>, findings: &[FindingEntry]) -> Vec<Component> {
    let mut out: Vec<Component> = packages
        .into_iter()
        .map(|package| {
            let findings = findings.iter().filter(|f| f.purl == package.purl).cloned().collect();
            Component { package, findings }
        })
        .collect();
    let rank = |c: &Component| match c.worst() {
        "critical" => 0,
        "major" => 1,
        "minor" => 2,
        "unrated" => 3,
        _ => 4,
    };
    out.sort_by(|a, b| (rank(a), &a.package.name).cmp(&(rank(b), &b.package.name)));
    out
}

async fn image_results(state: &WebState, visit: &Visit, org: &str, query: &ImageQuery) -> Result<(String, ImageResults), PageError> {
    let viewer = visit.require(&security_path(org))?;
    let repository = own_repository(org, &query.repository)?;
    let results = state.scanning.results(Some(&viewer.subject), repository, &query.digest).await?;
    // An index names its platform images, each with a page of its own.
    let image = results.images.into_iter().find(|i| i.digest == query.digest).ok_or_else(|| {
        PageError::Refused(ErrorKind::NotFound, format!("{} is not an image of {repository}: choose a platform", query.digest))
    })?;
    Ok((repository.to_owned(), image))
}

pub(super) async fn image(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<ImageQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let (repository, mut image) = image_results(&state, &visit, &org, &query).await?;
    let mut packages = std::mem::take(&mut image.packages);
    let mut layers = Vec::with_capacity(image.layers.len());
    for layer in &image.layers {
        let (own, rest): (Vec<_>, Vec<_>) = packages.into_iter().partition(|p| p.layer == layer.digest);
        packages = rest;
        layers.push(LayerView { layer: layer.clone(), components: components(own, &image.findings) });
    }
    let unplaced = components(packages, &image.findings);
    visit.render(ImagePage { chrome: visit.chrome_clone(), org, repository, image, layers, unplaced })
}

pub(super) async fn export(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<ImageQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&security_path(&org))?;
    let repository = own_repository(&org, &query.repository)?;
    let format = ExportFormat::parse(&query.format)
        .ok_or_else(|| PageError::Refused(ErrorKind::Invalid, "choose a download format: csv, sarif or cyclonedx".into()))?;
    let body = state.scanning.export(Some(&viewer.subject), repository, &query.digest, format).await?;
    let (content_type, extension) = format.content_type();
    let name: String = format!("{repository}-{}", query.digest.trim_start_matches("sha256:").chars().take(12).collect::<String>())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\""))
        .map_err(|e| PageError::Refused(ErrorKind::Internal, e.to_string()))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

//! The HTTP edge of `/v2/`: request parsing, headers and status codes.

use std::collections::HashMap;

use axum::body::Body;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use slipway_oci::{Algorithm, Digest, ErrorCode, MAX_MANIFEST_BYTES, Reference, RepoName, media_type};
use slipway_storage::{BlobRead, ByteStream};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use slipway_auth::AuthService;

use crate::error::{RegistryError, range_header};
use crate::guard::{self, Needed, Verdict};
use crate::path::{Route, repo_name};
use crate::rate_limit::{Quota, RateLimitSettings, RateLimiter};
use crate::service::{Chunk, Registry, upload_location};

/// Which kind of /v2/ route served a response, for metrics (a low-cardinality label).
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// Reads of large blobs go out in pieces this big: few syscalls, modest memory.
const SEND_CHUNK: usize = 256 * 1024;

type Params = HashMap<String, String>;

#[derive(Clone)]
struct RegistryState {
    registry: Registry,
    /// None: the registry is open (no authentication), for isolated test setups.
    auth: Option<AuthService>,
    limiter: Arc<RateLimiter>,
}

pub fn router(registry: Registry, auth: Option<AuthService>, limits: RateLimitSettings) -> Router {
    let limiter = Arc::new(RateLimiter::new(limits, registry.db.clone()));
    Router::new().route("/v2", any(dispatch)).route("/v2/", any(dispatch)).route("/v2/{*rest}", any(dispatch)).with_state(RegistryState {
        registry,
        auth,
        limiter,
    })
}

async fn dispatch(State(state): State<RegistryState>, mut request: Request) -> Response {
    let registry = &state.registry;
    let path = request.uri().path().to_owned();
    // Exactly one slash after /v2: `/v2//abs` names the invalid repository `/abs`.
    let rest = path.strip_prefix("/v2").unwrap_or_default();
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let route = Route::parse(rest);
    let label = route.as_ref().map_or("unknown", Route::label);
    let mut account = None;
    // Set for a customer's manifest read: the manifest served must be a released version.
    let mut release_gate = None;
    if let (Some(auth), Some(route)) = (&state.auth, &route) {
        let needed = Needed::of(route, request.method());
        match guard::check(auth, request.headers(), &needed).await {
            Verdict::Allowed(claims) => {
                if let Some(mut response) = check_mount(auth, &claims, route, &mut request).await {
                    finish(&mut response, label, None);
                    return response;
                }
                if let Route::Manifest { name, .. } | Route::Tags { name } = route
                    && claims.released_only(name)
                {
                    release_gate = Some(auth);
                }
                account = Some(claims.sub).filter(|sub| !sub.is_empty());
            }
            Verdict::Refused(mut response) => {
                finish(&mut response, label, None);
                return response;
            }
        }
    }
    let quota = match &route {
        Some(Route::Manifest { name, .. }) if request.method() == Method::GET => {
            // The address the app's client-address layer worked out (behind a trusted
            // proxy, the client rather than the proxy).
            let ip = slipway_auth::client_ip(request.extensions());
            count_pull(&state, name, account.as_deref(), ip).await
        }
        _ => None,
    };
    if let Some(Quota { retry_after: Some(wait), .. }) = &quota {
        let mut response = RegistryError::spec(
            ErrorCode::TooManyRequests,
            format!("pull rate limit reached; try again in {} seconds or sign in", wait.as_secs().max(1)),
        )
        .into_response();
        response.headers_mut().insert("Retry-After", HeaderValue::from(wait.as_secs().max(1)));
        finish(&mut response, label, quota.as_ref());
        return response;
    }
    let mut response = match route {
        Some(route) => handle(registry, release_gate, route, request).await.unwrap_or_else(IntoResponse::into_response),
        None => RegistryError::spec(ErrorCode::NameUnknown, format!("no registry route for {path}")).into_response(),
    };
    finish(&mut response, label, quota.as_ref());
    response
}

/// What every /v2/ response carries, refusals included.
fn finish(response: &mut Response, label: &'static str, quota: Option<&Quota>) {
    response.headers_mut().insert("Docker-Distribution-API-Version", HeaderValue::from_static("registry/2.0"));
    rate_limit_headers(response, quota);
    response.extensions_mut().insert(RouteLabel(label));
}

/// Counts a manifest GET against the caller's pull quota. Pulls of licensed content by
/// entitled customers are paid for, so they are not limited. The repository's policy is
/// looked up only when accounts are limited at all: it cost a database query on every
/// token-authenticated manifest GET (bench/auth.sh).
async fn count_pull(state: &RegistryState, repository: &str, account: Option<&str>, ip: Option<IpAddr>) -> Option<Quota> {
    if let (Some(_), Some(auth)) = (account, &state.auth)
        && state.limiter.limits_accounts()
        && matches!(auth.policy(repository).await, Ok(slipway_auth::access::Policy::Licensed { .. }))
    {
        return None;
    }
    // A pull limit is no permission: when it cannot be counted the pull goes ahead.
    state.limiter.count(account, ip).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "counting a pull against its rate limit failed");
        None
    })
}

fn rate_limit_headers(response: &mut Response, quota: Option<&Quota>) {
    let Some(quota) = quota else { return };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{};w={}", quota.limit, quota.window.as_secs())) {
        headers.insert("RateLimit-Limit", v);
    }
    headers.insert("RateLimit-Remaining", HeaderValue::from(quota.remaining));
}

/// A cross-repository mount reads the source repository, so the token must allow pull
/// there too. A token that did not ask for the source, held by someone who may pull it, is
/// challenged for a wider one; otherwise (and for a mount without `from`, which could
/// reveal blobs of repositories the caller cannot see) the mount parameters are dropped
/// and the request becomes a plain upload.
async fn check_mount(auth: &AuthService, claims: &slipway_auth::Claims, route: &Route<'_>, request: &mut Request) -> Option<Response> {
    let Route::UploadStart { name } = route else { return None };
    let query = request.uri().query()?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    pairs.iter().find(|(k, _)| k == "mount")?;
    let from = pairs.iter().find(|(k, _)| k == "from").map(|(_, v)| v.clone());
    if let Some(from) = &from {
        if claims.allows("repository", from, "pull") {
            return None;
        }
        if let guard::MountSource::Challenge(response) = guard::mount_source(auth, request.headers(), claims, name, from).await {
            return Some(response);
        }
    }
    let kept: Vec<_> = pairs.iter().filter(|(k, _)| k != "mount" && k != "from").collect();
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish();
    let path = request.uri().path().to_owned();
    let rebuilt = if query.is_empty() { path } else { format!("{path}?{query}") };
    if let Ok(uri) = rebuilt.parse() {
        *request.uri_mut() = uri;
    }
    None
}

async fn handle(
    registry: &Registry,
    release_gate: Option<&AuthService>,
    route: Route<'_>,
    request: Request,
) -> Result<Response, RegistryError> {
    let name = route
        .name()
        .map(|n| repo_name(n).ok_or_else(|| RegistryError::spec(ErrorCode::NameInvalid, format!("invalid repository name {n:?}"))))
        .transpose()?;
    let query: Vec<(String, String)> =
        request.uri().query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    // A manifest pushed by digest may be tagged in the same request with repeated `tag=`.
    let extra_tags: Vec<String> = query.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.clone()).collect();
    let params: Params = query.into_iter().collect();
    // Only the parts (which are Sync) are held across awaits; the body moves where needed.
    let (parts, body) = request.into_parts();
    let (method, headers) = (parts.method, &parts.headers);
    let repo = || name.as_ref().expect("named route");
    match (route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(Json(serde_json::json!({})).into_response()),
        (Route::Catalog, Method::GET) => catalog(registry, &params).await,
        (Route::Tags { .. }, Method::GET) => tags(registry, release_gate, repo(), &params).await,
        (Route::Manifest { reference, .. }, Method::GET | Method::HEAD) => {
            get_manifest(registry, release_gate, repo(), &parse_reference(reference)?, &method, headers).await
        }
        (Route::Manifest { reference, .. }, Method::PUT) => {
            put_manifest(registry, repo(), &parse_reference(reference)?, &extra_tags, headers, body).await
        }
        (Route::Manifest { reference, .. }, Method::DELETE) => {
            registry.delete_manifest(repo(), &parse_reference(reference)?).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Route::Blob { digest, .. }, Method::GET | Method::HEAD) => {
            get_blob(registry, repo(), &parse_digest(digest)?, &method, headers).await
        }
        (Route::Blob { digest, .. }, Method::DELETE) => {
            registry.delete_blob(repo(), &parse_digest(digest)?).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Route::UploadStart { .. }, Method::POST) => start_upload(registry, repo(), &params, headers, body).await,
        (Route::Upload { id, .. }, Method::GET) => {
            let size = registry.upload_size(repo(), id).await?;
            Ok(upload_accepted(StatusCode::NO_CONTENT, repo(), id, size))
        }
        (Route::Upload { id, .. }, Method::PATCH) => {
            let chunk = chunk(headers, body)?.unwrap_or_else(|| Chunk { start: None, len: Some(0), body: empty_body() });
            let size = registry.append(repo(), id, chunk).await?;
            Ok(upload_accepted(StatusCode::ACCEPTED, repo(), id, size))
        }
        (Route::Upload { id, .. }, Method::PUT) => {
            let digest = digest_param(&params)?;
            registry.finish_upload(repo(), id, &digest, chunk(headers, body)?).await?;
            Ok(blob_created(repo(), &digest))
        }
        (Route::Upload { id, .. }, Method::DELETE) => {
            registry.cancel_upload(repo(), id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Route::Referrers { digest, .. }, Method::GET) => referrers(registry, repo(), &parse_digest(digest)?, &params).await,
        (_, method) => Err(RegistryError::spec(ErrorCode::Unsupported, format!("{method} is not supported on this route"))),
    }
}

// ---- request parsing --------------------------------------------------------------------

fn parse_digest(text: &str) -> Result<Digest, RegistryError> {
    text.parse().map_err(|e: slipway_oci::DigestError| RegistryError::spec(ErrorCode::DigestInvalid, e.to_string()))
}

fn digest_param(params: &Params) -> Result<Digest, RegistryError> {
    let text =
        params.get("digest").ok_or_else(|| RegistryError::spec(ErrorCode::DigestInvalid, "the digest query parameter is required"))?;
    parse_digest(text)
}

fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    text.parse().map_err(|e: slipway_oci::NameError| match e {
        slipway_oci::NameError::Reference(_) => RegistryError::spec(ErrorCode::DigestInvalid, e.to_string()),
        _ => RegistryError::spec(ErrorCode::ManifestInvalid, e.to_string()),
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream().map_err(std::io::Error::other).boxed()
}

fn empty_body() -> ByteStream {
    futures::stream::empty().boxed()
}

/// The chunk a PATCH or closing PUT carries, if any, with its declared position and size.
fn chunk(headers: &HeaderMap, body: Body) -> Result<Option<Chunk>, RegistryError> {
    let content_length = match header_str(headers, header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| RegistryError::spec(ErrorCode::SizeInvalid, format!("Content-Length {v:?} is not a number")))?,
        ),
        None => None,
    };
    let range = match header_str(headers, header::CONTENT_RANGE) {
        Some(v) => Some(parse_content_range(v)?),
        None => None,
    };
    let len = match (range, content_length) {
        (Some((start, end)), Some(cl)) if end - start + 1 != cl => {
            return Err(RegistryError::spec(
                ErrorCode::SizeInvalid,
                format!("Content-Range {start}-{end} does not match Content-Length {cl}"),
            ));
        }
        (Some((start, end)), _) => Some(end - start + 1),
        (None, cl) => cl,
    };
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if len == Some(0) || (len.is_none() && !chunked) {
        return Ok(None);
    }
    Ok(Some(Chunk { start: range.map(|r| r.0), len, body: body_stream(body) }))
}

/// `Content-Range: <start>-<end>` as the spec defines it for uploads (inclusive, no unit).
pub fn parse_content_range(value: &str) -> Result<(u64, u64), RegistryError> {
    let bad = || RegistryError::spec(ErrorCode::RangeInvalid, format!("Content-Range {value:?} is not <start>-<end>"));
    let (start, end) = value.trim().split_once('-').ok_or_else(bad)?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(start) || !all_digits(end) {
        return Err(bad());
    }
    let (start, end) = (start.parse::<u64>().map_err(|_| bad())?, end.parse::<u64>().map_err(|_| bad())?);
    // The length, end - start + 1, must be a number too: `0-18446744073709551615` is
    // 2^64 bytes (found by the content_range fuzz target).
    if end.checked_sub(start).and_then(|last| last.checked_add(1)).is_none() {
        return Err(bad());
    }
    Ok((start, end))
}

/// A single `Range: bytes=...` request against a blob of `size` bytes. Multi-range
/// requests are answered with the whole blob, which HTTP allows.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, RegistryError> {
    let unsatisfiable = || RegistryError::UnsatisfiableRange { size };
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size - 1)
        }
        (start, "") => (start.parse().map_err(|_| unsatisfiable())?, size.saturating_sub(1)),
        (start, end) => {
            let (s, e): (u64, u64) = (start.parse().map_err(|_| unsatisfiable())?, end.parse().map_err(|_| unsatisfiable())?);
            if e < s {
                return Err(unsatisfiable());
            }
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end)))
}

// ---- responses --------------------------------------------------------------------------

fn with_headers(status: StatusCode, headers: &[(&'static str, String)], body: Body) -> Response {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(body).unwrap_or_else(|e| {
        tracing::error!(error = %e, "invalid response header");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

fn upload_accepted(status: StatusCode, repo: &RepoName, id: &str, size: u64) -> Response {
    let mut response =
        with_headers(status, &[("Location", upload_location(repo, id)), ("Docker-Upload-UUID", id.to_owned())], Body::empty());
    response.headers_mut().insert("Range", range_header(size));
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn blob_created(repo: &RepoName, digest: &Digest) -> Response {
    with_headers(
        StatusCode::CREATED,
        &[
            ("Location", format!("/v2/{repo}/blobs/{digest}")),
            ("Docker-Content-Digest", digest.to_string()),
            ("Content-Length", "0".to_owned()),
        ],
        Body::empty(),
    )
}

fn next_link(path: &str, n: usize, last: Option<&String>) -> Option<(&'static str, String)> {
    last.map(|last| ("Link", format!("<{path}?n={n}&last={last}>; rel=\"next\"")))
}

fn page_size(params: &Params) -> Result<Option<usize>, RegistryError> {
    params
        .get("n")
        .map(|n| n.parse::<usize>().map_err(|_| RegistryError::spec(ErrorCode::Unsupported, format!("n={n:?} is not a number"))))
        .transpose()
}

fn json_response(headers: &[(&'static str, String)], content_type: &str, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).expect("JSON values serialize");
    let mut all = vec![("Content-Type", content_type.to_owned())];
    all.extend_from_slice(headers);
    with_headers(StatusCode::OK, &all, Body::from(body))
}

// ---- handlers ---------------------------------------------------------------------------

async fn catalog(registry: &Registry, params: &Params) -> Result<Response, RegistryError> {
    let n = page_size(params)?;
    let last = params.get("last").map(String::as_str).unwrap_or_default();
    let (names, more) = registry.catalog(last, n).await?;
    let link = if more { next_link("/v2/_catalog", names.len(), names.last()) } else { None };
    Ok(json_response(&link.into_iter().collect::<Vec<_>>(), "application/json", &serde_json::json!({ "repositories": names })))
}

/// A page of a repository's tags; to a customer (`release_gate`), the released ones (the
/// next page still starts after the last tag of this one, released or not).
async fn tags(
    registry: &Registry,
    release_gate: Option<&AuthService>,
    repo: &RepoName,
    params: &Params,
) -> Result<Response, RegistryError> {
    let n = page_size(params)?;
    let last = params.get("last").map(String::as_str).unwrap_or_default();
    let (mut tags, more) = registry.tags(repo, last, n).await?;
    let path = format!("/v2/{repo}/tags/list");
    let link = if more { next_link(&path, tags.len(), tags.last()) } else { None };
    if let Some(auth) = release_gate {
        let released = auth.released_tag_names(repo.as_str()).await?;
        tags.retain(|t| released.contains(t));
    }
    Ok(json_response(
        &link.into_iter().collect::<Vec<_>>(),
        "application/json",
        &serde_json::json!({ "name": repo.as_str(), "tags": tags }),
    ))
}

/// Whether a client's `Accept` header admits a manifest of `media_type`. Clients that send
/// no Accept header, or a generic one, get whatever is stored.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let offered: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
        .collect();
    offered.is_empty() || offered.iter().any(|o| *o == media_type || matches!(*o, "*/*" | "application/*" | "application/json"))
}

/// Serves a manifest; to a customer (`release_gate`), only a released version.
async fn get_manifest(
    registry: &Registry,
    release_gate: Option<&AuthService>,
    repo: &RepoName,
    reference: &Reference,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let manifest = registry.manifest(repo, reference).await?;
    if let Some(auth) = release_gate {
        let tag = match reference {
            Reference::Tag(tag) => Some(tag.as_str()),
            Reference::Digest(_) => None,
        };
        if let Some(why) = auth.release_refusal(repo.as_str(), tag, &manifest.digest).await? {
            return Err(RegistryError::spec(ErrorCode::Denied, why));
        }
    }
    if !accepts(headers, &manifest.media_type) {
        return Err(RegistryError::spec(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is a {} that the client's Accept header does not allow", manifest.media_type),
        ));
    }
    let response_headers = [
        ("Content-Type", manifest.media_type.clone()),
        ("Docker-Content-Digest", manifest.digest.clone()),
        ("ETag", format!("\"{}\"", manifest.digest)),
        ("Content-Length", manifest.content.len().to_string()),
    ];
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        registry.record_pull(repo);
        Body::from(manifest.content)
    };
    Ok(with_headers(StatusCode::OK, &response_headers, body))
}

async fn put_manifest(
    registry: &Registry,
    repo: &RepoName,
    reference: &Reference,
    extra_tags: &[String],
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let too_large = || RegistryError::spec(ErrorCode::ManifestTooLarge, format!("manifests are limited to {MAX_MANIFEST_BYTES} bytes"));
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_MANIFEST_BYTES) {
        return Err(too_large());
    }
    let extra_tags = extra_tags
        .iter()
        .map(|t| t.parse().map_err(|e: slipway_oci::NameError| RegistryError::spec(ErrorCode::ManifestInvalid, e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let content = axum::body::to_bytes(body, MAX_MANIFEST_BYTES).await.map_err(|_| too_large())?;
    let pushed = registry.put_manifest(repo, reference, &extra_tags, content_type, &content).await?;
    let mut headers = vec![
        ("Location", format!("/v2/{repo}/manifests/{}", pushed.digest)),
        ("Docker-Content-Digest", pushed.digest.to_string()),
        ("Content-Length", "0".to_owned()),
    ];
    if let Some(subject) = pushed.subject {
        headers.push(("OCI-Subject", subject.to_string()));
    }
    headers.extend(extra_tags.iter().map(|tag| ("OCI-Tag", tag.to_string())));
    Ok(with_headers(StatusCode::CREATED, &headers, Body::empty()))
}

async fn get_blob(
    registry: &Registry,
    repo: &RepoName,
    digest: &Digest,
    method: &Method,
    request_headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let size = registry.blob_size(repo, digest).await?;
    let range = match header_str(request_headers, header::RANGE) {
        Some(value) => parse_range(value, size)?,
        None => None,
    };
    let is_head = method == Method::HEAD;
    if !is_head
        && range.is_none()
        && let Some(url) = registry.blob_redirect(digest).await?
    {
        return Ok(with_headers(
            StatusCode::TEMPORARY_REDIRECT,
            &[("Location", url), ("Docker-Content-Digest", digest.to_string())],
            Body::empty(),
        ));
    }
    let mut headers = vec![
        ("Content-Type", "application/octet-stream".to_owned()),
        ("Docker-Content-Digest", digest.to_string()),
        ("ETag", format!("\"{digest}\"")),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    let status = match range {
        Some((start, end)) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            headers.push(("Content-Length", (end - start + 1).to_string()));
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            headers.push(("Content-Length", size.to_string()));
            StatusCode::OK
        }
    };
    if is_head {
        return Ok(with_headers(status, &headers, Body::empty()));
    }
    let blob = registry.read_blob(repo, digest, size, range.map(|(s, e)| s..e + 1)).await?;
    metrics::counter!("slipway_blob_bytes_sent_total").increment(blob.len());
    let body = match blob {
        // Small blobs (configs, signatures) go out in one piece with the headers.
        BlobRead::Bytes(bytes) => Body::from(bytes),
        BlobRead::File { file, len } => Body::from_stream(ReaderStream::with_capacity(file.take(len), SEND_CHUNK)),
        BlobRead::Stream { stream, .. } => Body::from_stream(stream),
    };
    Ok(with_headers(status, &headers, body))
}

async fn start_upload(
    registry: &Registry,
    repo: &RepoName,
    params: &Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    if let Some(mount) = params.get("mount") {
        let digest = parse_digest(mount)?;
        // An invalid `from` cannot name a repository holding the blob: fall back to upload.
        let from = params.get("from").and_then(|f| repo_name(f));
        let mountable = params.get("from").is_none() || from.is_some();
        if mountable && registry.mount(repo, &digest, from.as_ref()).await? {
            tracing::debug!(repository = %repo, %digest, from = from.as_ref().map_or("", |f| f.as_str()), "blob mounted");
            return Ok(blob_created(repo, &digest));
        }
    } else if params.contains_key("digest") {
        let digest = digest_param(params)?;
        let chunk = chunk(headers, body)?.unwrap_or_else(|| Chunk { start: None, len: Some(0), body: empty_body() });
        registry.put_blob(repo, &digest, chunk).await?;
        return Ok(blob_created(repo, &digest));
    }
    let algorithm = match params.get("digest-algorithm") {
        Some(alg) => alg.parse::<Algorithm>().map_err(|e| RegistryError::spec(ErrorCode::DigestInvalid, e.to_string()))?,
        None => Algorithm::Sha256,
    };
    let id = registry.start_upload(repo, algorithm).await?.to_string();
    Ok(upload_accepted(StatusCode::ACCEPTED, repo, &id, 0))
}

async fn referrers(registry: &Registry, repo: &RepoName, subject: &Digest, params: &Params) -> Result<Response, RegistryError> {
    let filter = params.get("artifactType").map(String::as_str).filter(|t| !t.is_empty());
    let found = registry.referrers(repo, subject, filter).await?;
    let manifests: Vec<serde_json::Value> = found
        .into_iter()
        .map(|r| {
            let mut d = serde_json::json!({ "mediaType": r.media_type, "digest": r.digest, "size": r.size });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = t.into();
            }
            if let Some(a) = r.annotations.and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()) {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests });
    let headers: Vec<_> = filter.map(|_| ("OCI-Filters-Applied", "artifactType".to_owned())).into_iter().collect();
    Ok(json_response(&headers, media_type::OCI_INDEX, &index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100).unwrap(), Some((50, 99)));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("bytes=9-1", 100).is_err());
        assert!(parse_range("bytes=x-1", 100).is_err());
    }

    #[test]
    fn upload_content_ranges() {
        assert_eq!(parse_content_range("0-99").unwrap(), (0, 99));
        assert_eq!(parse_content_range("1-18446744073709551615").unwrap(), (1, u64::MAX));
        for bad in ["", "5", "bytes 0-9/10", "9-1", "-1-5", "a-b", "0-18446744073709551615", "0-18446744073709551616"] {
            assert!(parse_content_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn accept_negotiation() {
        let mut headers = HeaderMap::new();
        assert!(accepts(&headers, media_type::OCI_INDEX));
        headers.insert(header::ACCEPT, HeaderValue::from_static(media_type::DOCKER_MANIFEST));
        assert!(!accepts(&headers, media_type::OCI_INDEX));
        headers.append(header::ACCEPT, HeaderValue::from_static("application/vnd.oci.image.index.v1+json; q=0.5"));
        assert!(accepts(&headers, media_type::OCI_INDEX));
    }
}

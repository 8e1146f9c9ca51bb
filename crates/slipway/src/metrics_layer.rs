//! Prometheus metrics: request counts and latency by route, bytes in and out, the job
//! queue, build information. Other crates record through the `metrics` facade (scan and
//! feed-import durations, jobs run); the recorder is installed once here.
//!
//! Every label's values are bounded, whatever clients send: the route is a template of the
//! router (`/v2/` routes by their kind, others by their pattern, `unmatched` for a 404),
//! the method one of the standard ones or `other`, the status a number.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::App;
use crate::config::Secret;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use slipway_registry::RouteLabel;

fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Fixed buckets keep each histogram a handful of counters (summaries would keep
        // samples), and they aggregate across replicas.
        let handle = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("the metrics recorder is installed once per process");
        // Without upkeep, samples recorded between scrapes pile up: memory would grow with
        // traffic on a server nobody scrapes.
        metrics::gauge!("slipway_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("spawn the metrics upkeep thread");
        handle
    })
}

/// `/metrics` on the main listener: absent when `metrics.listen` serves it elsewhere;
/// with `metrics.token`, for bearers of the token; otherwise for loopback peers only,
/// so that a scraper on the same host works out of the box and nobody else reads it.
pub async fn render_main(State(app): State<App>, request: Request) -> Response {
    let config = &app.config.metrics;
    if config.listen.is_some() {
        return (StatusCode::NOT_FOUND, "/metrics is served on metrics.listen\n").into_response();
    }
    if let Some(token) = &config.token {
        return render_for_bearer(&app, token, request.headers()).await;
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
    // A proxy on this host forwarding the world connects from loopback too; a request it
    // forwarded names its client in one of these.
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|h| request.headers().contains_key(*h));
    if peer.is_some_and(|ip| ip.to_canonical().is_loopback()) && !forwarded {
        return render(&app).await;
    }
    (
        StatusCode::FORBIDDEN,
        "/metrics is served to loopback clients only; set metrics.token or metrics.listen to scrape it from elsewhere\n",
    )
        .into_response()
}

/// `/metrics` on its own listener (`metrics.listen`): the token too, if one is set.
pub async fn render_separate(State(app): State<App>, headers: HeaderMap) -> Response {
    match &app.config.metrics.token {
        Some(token) => render_for_bearer(&app, token, &headers).await,
        None => render(&app).await,
    }
}

/// The exposition, with the job queue read from the database as it is now: how many jobs
/// of each kind wait, run and failed, and how long the longest-waiting due one has.
async fn render(app: &App) -> Response {
    // Kinds seen before and absent now have no jobs left: they read 0, not their last
    // value. Job kinds are names in the code, so the set stays small.
    static KINDS: std::sync::Mutex<std::collections::BTreeSet<String>> = std::sync::Mutex::new(std::collections::BTreeSet::new());
    match app.jobs.job_counts().await {
        Ok(mut counts) => {
            let now = app.db.clock().now_ms();
            {
                let mut kinds = KINDS.lock().unwrap_or_else(|e| e.into_inner());
                kinds.extend(counts.iter().map(|c| c.kind.clone()));
                for kind in kinds.iter().filter(|k| !counts.iter().any(|c| &c.kind == *k)).cloned().collect::<Vec<_>>() {
                    counts.push(slipway_db::JobCounts { kind, pending: 0, running: 0, failed: 0, oldest_due_at: None });
                }
            }
            for count in counts {
                let kind = count.kind;
                metrics::gauge!("slipway_jobs_queued", "kind" => kind.clone()).set((count.pending - count.running) as f64);
                metrics::gauge!("slipway_jobs_running", "kind" => kind.clone()).set(count.running as f64);
                metrics::gauge!("slipway_jobs_failed", "kind" => kind.clone()).set(count.failed as f64);
                let waited = count.oldest_due_at.map_or(0, |due| now.saturating_sub(due).max(0));
                metrics::gauge!("slipway_jobs_oldest_due_age_seconds", "kind" => kind).set(waited as f64 / 1000.0);
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading the job queue for /metrics failed"),
    }
    handle().render().into_response()
}

async fn render_for_bearer(app: &App, token: &Secret, headers: &HeaderMap) -> Response {
    let sent = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    if same_token(sent, token.expose()) {
        return render(app).await;
    }
    (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")], "/metrics needs the bearer token metrics.token\n")
        .into_response()
}

/// Compares digests, so the time taken tells nothing about the token, its length included.
fn same_token(sent: &str, token: &str) -> bool {
    let (a, b) = (Sha256::digest(sent.as_bytes()), Sha256::digest(token.as_bytes()));
    !token.is_empty() && a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The method as a label: the standard ones by name, any other (a client may send any
/// token) as `other`.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD.iter().find(|m| *m == method).map_or("other", Method::as_str)
}

pub async fn record(request: Request, next: Next) -> Response {
    handle();
    let started = Instant::now();
    let method = method_label(request.method());
    let bytes_in = content_length(request.headers());
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let route = match (response.extensions().get::<RouteLabel>(), matched) {
        (Some(label), _) => std::borrow::Cow::Borrowed(label.0),
        (None, Some(pattern)) => std::borrow::Cow::Owned(pattern),
        (None, None) => std::borrow::Cow::Borrowed("unmatched"),
    };
    crate::telemetry::record_route(method, &route);
    let status = response.status().as_u16().to_string();
    metrics::counter!("slipway_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("slipway_http_request_duration_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("slipway_http_request_bytes_total", "route" => route.clone()).increment(bytes_in);
    metrics::counter!("slipway_http_response_bytes_total", "route" => route).increment(content_length(response.headers()));
    response
}

//! Prometheus metrics: request counts and latency by route, bytes in and out. Other
//! crates record through the `metrics` facade; the recorder is installed once here.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use slipway_registry::RouteLabel;

fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("the metrics recorder is installed once per process")
    })
}

pub async fn render() -> String {
    handle().render()
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub async fn record(request: Request, next: Next) -> Response {
    handle();
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let bytes_in = content_length(request.headers());
    let response = next.run(request).await;
    let route = match response.extensions().get::<RouteLabel>() {
        Some(RouteLabel(label)) => *label,
        None => "other",
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!("slipway_http_requests_total", "route" => route, "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("slipway_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("slipway_http_request_bytes_total", "route" => route).increment(bytes_in);
    metrics::counter!("slipway_http_response_bytes_total", "route" => route)
        .increment(content_length(response.headers()));
    response
}

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
        // Fixed buckets keep each histogram a handful of counters (summaries would keep
        // samples), and they aggregate across replicas.
        let handle = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("the metrics recorder is installed once per process");
        // Without upkeep, samples recorded between scrapes pile up: memory would grow with
        // traffic on a server nobody scrapes.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .expect("spawn the metrics upkeep thread");
        handle
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

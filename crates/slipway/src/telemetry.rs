//! Logs, and traces for an OpenTelemetry collector: one `tracing` subscriber writes the
//! log (text or JSON) and, with `[traces] otlp_endpoint`, exports spans over OTLP/HTTP.
//!
//! Every request gets an INFO span (`request_span`) whose parent is the caller's W3C
//! `traceparent`, if it sent one, so a trace continues from the client or the proxy in
//! front; the route template and the status are recorded on it once known. Spans leave in
//! batches from a thread of their own, through a bounded queue: a collector that is down
//! or slow costs dropped spans, never a request's time.

use anyhow::Context;
use axum::extract::Request;
use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::Config;

/// Whether spans are exported: the route's span name is only worth formatting then.
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The exporter, flushed when the process ends.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Sets up the process's subscriber: the log on stderr, and the OTLP exporter if configured.
pub fn init(config: &Config) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::new(&config.log.filter);
    // Colours only on a terminal: a log file or a pipe gets plain text to search.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let log = if config.log.format == "json" { log.json().boxed() } else { log.boxed() };
    let provider = match &config.traces.otlp_endpoint {
        Some(endpoint) => Some(provider(endpoint, config.traces.sample_ratio, &config.traces.service_name)?),
        None => None,
    };
    EXPORTING.store(provider.is_some(), std::sync::atomic::Ordering::Relaxed);
    let traces = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("slipway")));
    tracing_subscriber::registry().with(filter).with(log).with(traces).init();
    Ok(Telemetry { provider })
}

fn provider(endpoint: &str, ratio: f64, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    anyhow::ensure!((0.0..=1.0).contains(&ratio), "traces.sample_ratio is between 0.0 and 1.0, not {ratio}");
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .with_context(|| format!("the OTLP exporter for {endpoint}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_owned()).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
        .with_resource(resource)
        .build())
}

impl Telemetry {
    /// Sends the spans still queued (within the exporter's timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing the last traces failed");
        }
    }
}

/// The span of one request: its method and path (never the query, which may carry a
/// one-time code), the caller's trace as its parent, and `http.route` and the status filled
/// in later (`record_route`, `record_status`).
pub fn request_span(request: &Request) -> Span {
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "request",
        otel.name = method,
        otel.kind = "server",
        http.request.method = method,
        url.path = request.uri().path(),
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
    let _ = span.set_parent(parent);
    span
}

/// The route template, once the router has matched one: it names the span. (The span
/// already exists on the OpenTelemetry side, since its parent was set, so the name is
/// changed there: a recorded `otel.name` would only reach a span not started yet.)
pub fn record_route(method: &str, route: &str) {
    let span = Span::current();
    span.record("http.route", route);
    if EXPORTING.load(std::sync::atomic::Ordering::Relaxed) {
        span.context().span().update_name(format!("{method} {route}"));
    }
}

pub fn record_status(status: u16) {
    Span::current().record("http.response.status_code", status);
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

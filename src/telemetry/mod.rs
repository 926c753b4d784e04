//! Telemetry: log lines (`logging`) and OpenTelemetry traces (`traces`, exported by `export`).
//!
//! Prompt text reaches a log line or a span only through `pipeline`'s one `LOG_PROMPTS` gate; keys
//! and export headers are `SecretString` and never formatted.

mod export;
mod logging;
pub mod traces;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanExporter as _};
use secrecy::ExposeSecret;

use crate::config::{LoggingSettings, OtlpSettings};
pub use export::dropped as trace_spans_dropped;

/// Installs the log subscriber alone (no traces): the CLI and tests.
pub fn init(settings: &LoggingSettings) -> Result<(), String> {
    logging::install(settings, None::<logging::NoTraces>)
}

/// Installs the log subscriber and, when `otlp.endpoint` is set, trace export. Call it inside the
/// runtime that lives as long as the process: the export task is spawned on it.
pub fn start(logging: &LoggingSettings, otlp: &OtlpSettings) -> Result<(), String> {
    let Some(url) = otlp.traces_url() else {
        return init(logging);
    };
    // The exporter's client is the gateway's reqwest (rustls with ring), never redirected; every
    // process that builds one installs the provider first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(otlp.timeout())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("telemetry.otlp: the export client: {e}"))?;
    let headers = otlp
        .headers
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
        .collect();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(http)
        .with_endpoint(url)
        .with_timeout(otlp.timeout())
        .with_headers(headers)
        .build()
        .map_err(|e| format!("telemetry.otlp: {e}"))?;
    let resource = Resource::builder().with_service_name(otlp.service_name.clone()).build();
    // The export task owns the exporter, so it gets the resource here rather than from the provider.
    exporter.set_resource(&resource);
    let (processor, task) = export::QueueProcessor::new(
        exporter,
        otlp.queue_size,
        otlp.batch_size,
        Duration::from_millis(otlp.flush_interval_ms),
    );
    let flusher = processor.sender();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            otlp.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("ai-gateway"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        .with_target(false);
    logging::install(logging, Some(layer))?;
    tokio::spawn(task);
    let _ = EXPORT.set(Export { provider, flusher });
    traces::enable();
    Ok(())
}

struct Export {
    /// Kept so the tracer stays alive for the process.
    #[expect(dead_code, reason = "held, never read: dropping it would stop span recording")]
    provider: SdkTracerProvider,
    flusher: tokio::sync::mpsc::Sender<export::Message>,
}

static EXPORT: OnceLock<Export> = OnceLock::new();

/// Exports the spans still queued, waiting at most `within` (at shutdown).
pub async fn flush(within: Duration) {
    if let Some(e) = EXPORT.get() {
        export::flush(&e.flusher, within).await;
    }
}

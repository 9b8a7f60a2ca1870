//! Logs and traces: the process's tracing subscriber (logs to stderr following
//! `RUST_LOG`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the export of the oracle's spans over
//! OTLP/gRPC with W3C trace-context propagation.
//!
//! Only the oracle's own spans (target `preemption_oracle`, level DEBUG and above: the
//! calls at INFO, their phases at DEBUG) go to OpenTelemetry: h2, hyper, tonic and
//! tower, and the exporter itself, stay out, so exporting never traces its own traffic.
//! Logs take INFO by default, so a query's phase spans (a few per call, their fields
//! formatted by the log layer whether or not an event ever shows them) cost nothing
//! unless traces are exported or `RUST_LOG` asks for DEBUG. Spans are exported in batches from a
//! bounded queue: a slow or unreachable collector costs dropped spans, never a
//! slower answer.

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// The environment variables that turn the OTLP export on.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// The service name spans carry unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "preemption-oracle";

/// How long shutdown waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The installed subscriber; [`Tracing::shutdown`] flushes the spans not yet exported.
#[derive(Debug)]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

/// The OTLP exporter could not be built from the environment.
#[derive(Debug, thiserror::Error)]
#[error("OTLP trace exporter: {0}")]
pub struct ExporterError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The OTLP endpoint from the environment, if the export is on.
fn otlp_endpoint() -> Option<String> {
    ENDPOINT_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

/// Installs the global subscriber: logs to stderr (`RUST_LOG`, default `info`), and
/// spans to the OTLP endpoint when one is configured. Call inside the Tokio runtime:
/// the exporter's gRPC channel runs on it.
pub fn init() -> Result<Tracing, ExporterError> {
    // Colours only on a terminal: a log file or a journal gets plain text.
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    let provider = otlp_endpoint().map(|_| provider()).transpose()?;
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(SERVICE_NAME))
            .with_filter(Targets::new().with_target("preemption_oracle", LevelFilter::DEBUG))
    });
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    tracing_subscriber::registry().with(logs).with(otel).init();
    if let Some(endpoint) = otlp_endpoint() {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    Ok(Tracing { provider })
}

fn provider() -> Result<SdkTracerProvider, ExporterError> {
    // The endpoint, headers, timeout and compression come from the standard OTEL_*
    // variables.
    let exporter = SpanExporter::builder().with_tonic().build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

impl Tracing {
    /// Exports the spans still queued (waiting at most a few seconds) and stops the
    /// exporter. Call inside the Tokio runtime, before it stops.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                .await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "exporting the last spans failed"),
            Err(e) => tracing::warn!(error = %e, "exporting the last spans failed"),
        }
    }
}

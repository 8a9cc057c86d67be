//! Keel's observability: the `tracing` subscriber, OpenTelemetry traces (exported over
//! OTLP when an endpoint is configured), Prometheus metrics, W3C trace-context
//! propagation into jobs, and the request middleware that ties them to HTTP.
//!
//! Only this crate and the binary touch OpenTelemetry APIs; every other crate emits
//! `tracing` spans/events (dotted field names: `org.id`, `job.kind`) and `metrics` macros.

mod client_faults;
pub mod http;
mod logging;
pub mod metrics;
pub mod outgoing;
pub mod propagation;
mod traces;
mod w3c;

pub use logging::init_for_tests;

use keel_config::TelemetrySettings;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// What [`init`] installed; call [`Telemetry::shutdown`] last, to flush spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry: could not build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("telemetry: invalid log filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("telemetry: a global subscriber is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber (pretty/JSON/compact logs + OpenTelemetry layer), the
/// W3C propagator and the Prometheus recorder. Never blocks on the collector: spans are
/// exported in the background and dropped if it is unreachable.
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    install_tls_provider();
    let provider = traces::provider(settings)?;
    logging::install(settings, &provider)?;
    metrics::install();
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Flushes buffered spans (bounded by the exporter timeout) and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "trace provider shutdown");
        }
    }
}

/// This process among its replicas, `host-pid` (the pod name on Kubernetes): what the
/// ops console and worker leases name it by.
pub fn instance() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "keel".to_owned());
        format!("{host}-{}", std::process::id())
    })
}

/// Makes ring the process's TLS crypto provider. Keel's HTTP clients (the OTLP exporter,
/// outgoing webhooks) share one reqwest built without a provider of its own, so that the
/// process carries one TLS stack (ring, as the SMTP client uses); a client built before
/// this would panic. Idempotent.
pub fn install_tls_provider() {
    // Err only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

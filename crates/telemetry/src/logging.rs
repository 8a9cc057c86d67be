//! The global `tracing` subscriber.

use crate::TelemetryError;
use crate::client_faults::ClientFaults;
use crate::w3c::W3cLayer;
use keel_config::{LogFormat, TelemetrySettings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// One subscriber: an env-filter, the log formatter chosen by `telemetry.log_format`, the
/// OpenTelemetry layer that turns spans into exported traces, and [`ClientFaults`],
/// which keeps clients' protocol errors out of the error log. `RUST_LOG`, when set,
/// overrides `telemetry.log_filter` for a debugging session.
pub(crate) fn install(
    settings: &TelemetrySettings,
    provider: &SdkTracerProvider,
) -> Result<(), TelemetryError> {
    let filter_spec = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.log_filter.clone());
    let filter = EnvFilter::try_new(&filter_spec).map_err(|e| TelemetryError::Filter {
        filter: filter_spec.clone(),
        reason: e.to_string(),
    })?;
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().pretty().boxed(),
        LogFormat::Compact => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let trace_filter =
        EnvFilter::try_new(&settings.trace_filter).map_err(|e| TelemetryError::Filter {
            filter: settings.trace_filter.clone(),
            reason: e.to_string(),
        })?;
    // Exporting: OpenTelemetry spans. Not exporting: only W3C ids (see `w3c`), at a
    // fraction of the cost. Separate filters: quiet logs must not switch off the spans
    // that carry trace context into jobs and to the collector.
    let traces = match settings.otlp_endpoint() {
        Some(_) => {
            EXPORTING.store(true, Ordering::Relaxed);
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("keel"))
                .with_error_records_to_exceptions(true)
                .with_filter(trace_filter)
                .boxed()
        }
        None => W3cLayer.with_filter(trace_filter).boxed(),
    };
    Registry::default()
        .with(traces)
        .with(fmt.with_filter(filter))
        // Outermost: a client's protocol error reaches neither logs nor spans.
        .with(ClientFaults)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)
}

/// Whether spans go to an OpenTelemetry exporter (set once, at install).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: work that only the exported span needs (its name) is
/// skipped otherwise.
pub(crate) fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// For tests: installs the same stack once per process (quiet unless `RUST_LOG` is set),
/// so spans get trace ids and metrics are recorded. Later calls do nothing.
pub fn init_for_tests() {
    crate::install_tls_provider();
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let settings = TelemetrySettings {
            log_format: LogFormat::Compact,
            log_filter: "error".to_owned(),
            trace_filter: "info".to_owned(),
            service_name: "keel-test".to_owned(),
            otlp_endpoint: String::new(),
            otlp_timeout_ms: 100,
            sample_ratio: 1.0,
            slow_request_ms: 0,
            slow_query_ms: 0.0,
        };
        if let Ok(provider) = crate::traces::provider(&settings) {
            let _ = install(&settings, &provider);
        }
        crate::metrics::install();
    });
}

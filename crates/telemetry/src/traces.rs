//! The OpenTelemetry tracer provider.

use crate::TelemetryError;
use keel_config::TelemetrySettings;
use opentelemetry::global;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::time::Duration;

/// A provider is always built, even with export off: it gives every span a W3C trace
/// id, so an incoming `traceparent` is continued and handed on to jobs whether or not a
/// collector listens. Only with an endpoint does it get a (batching, background) exporter.
pub(crate) fn provider(settings: &TelemetrySettings) -> Result<SdkTracerProvider, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    match settings.otlp_endpoint() {
        // Nothing is exported: record nothing. Spans keep valid ids, so trace context
        // still flows into jobs and `traceresponse`, at a fraction of the cost.
        None => builder = builder.with_sampler(Sampler::AlwaysOff),
        // Follow the caller's decision; sample new traces at the configured ratio.
        Some(_) => {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(settings.sample_ratio),
            )))
        }
    }
    if let Some(endpoint) = settings.otlp_endpoint() {
        let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_millis(settings.otlp_timeout_ms))
            .with_headers(Default::default())
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());
    Ok(provider)
}

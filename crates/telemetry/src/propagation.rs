//! W3C trace context across process boundaries: captured when a job is enqueued, restored
//! when a worker runs it, so the job's span belongs to the trace of the request that
//! caused it.

use crate::w3c;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C headers of a span context, stored with a job (`queue_jobs.trace_context`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The 32-hex-digit trace id inside `traceparent`.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.split('-').nth(1)
    }
}

/// The context of the current `tracing` span, or `None` when it has no valid trace.
pub fn current() -> Option<TraceContext> {
    from_span(&tracing::Span::current())
}

/// The context of `span`, or `None` when it has no valid trace (e.g. it was disabled).
pub fn from_span(span: &tracing::Span) -> Option<TraceContext> {
    if let Some(ids) = w3c::ids(span) {
        return Some(TraceContext {
            traceparent: ids.traceparent(),
            tracestate: None,
        });
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    // The W3C format, written directly: this runs on every request (`traceresponse`).
    let tracestate = sc.trace_state().header();
    Some(TraceContext {
        traceparent: format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        ),
        tracestate: Some(tracestate).filter(|s| !s.is_empty()),
    })
}

/// Makes `span` a child of the remote context (a stored job context or an incoming
/// request's headers). An invalid or missing `traceparent` leaves `span` a new root.
pub fn set_parent(span: &tracing::Span, context: &TraceContext) {
    if let Some(remote) = w3c::W3cIds::parse(&context.traceparent)
        && w3c::set_remote_parent(span, &remote)
    {
        return;
    }
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), context.traceparent.clone());
    if let Some(state) = &context.tracestate {
        carrier.insert("tracestate".to_owned(), state.clone());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid()
        && let Err(e) = span.set_parent(parent)
    {
        tracing::debug!(error = %e, "could not continue the remote trace");
    }
}

/// The trace id of the current span (32 hex digits), for logs and test assertions.
pub fn current_trace_id() -> Option<String> {
    current().and_then(|c| c.trace_id().map(str::to_owned))
}

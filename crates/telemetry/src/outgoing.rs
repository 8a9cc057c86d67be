//! Outgoing HTTP calls to third parties (webhook receivers, the AI provider) as client
//! spans, and the `traceparent` each call carries so the receiver can join the trace.

use crate::propagation;

/// One outgoing call: its client span, and the W3C `traceparent` naming that span as the
/// receiver's parent. `None` when the span has no valid trace (tracing disabled).
#[derive(Debug)]
pub struct Outgoing {
    pub span: tracing::Span,
    pub traceparent: Option<String>,
}

impl Outgoing {
    /// A client span (OpenTelemetry semantic conventions: `http.request.method`,
    /// `server.address`, `server.port`) under the current span. The host is a label an
    /// operator searches by; the path and query are left out, as they may carry secrets.
    pub fn start(method: &'static str, host: &str, port: u16) -> Self {
        let span = tracing::info_span!(
            "http.client",
            otel.name = method,
            otel.kind = "client",
            http.request.method = method,
            server.address = host,
            server.port = port,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let traceparent = propagation::from_span(&span).map(|cx| cx.traceparent);
        Self { span, traceparent }
    }

    /// The answer's status code.
    pub fn answered(&self, status: u16) {
        self.span.record("http.response.status_code", status);
        if status >= 400 {
            self.span.record("error.type", status);
        }
    }

    /// The call got no answer (`kind`: timeout, connect, ...).
    pub fn failed(&self, kind: &str) {
        self.span.record("error.type", kind);
    }
}

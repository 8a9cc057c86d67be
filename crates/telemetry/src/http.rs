//! Per-request span and metrics for actix-web.
//!
//! Mounted with `actix_web::middleware::from_fn(keel_telemetry::http::observe)`. Every
//! request gets a server span that continues an incoming `traceparent`, carries the
//! request id, method, route template and status, and is counted in
//! `keel_http_requests_total` / `keel_http_request_duration_seconds`. The response carries
//! `traceresponse` (W3C Trace Context level 2) so a caller can find the trace. A request
//! slower than the app's [`SlowRequests`] threshold is logged as a warning with its
//! route, status, duration and trace id — the one log line that says where to look.

use crate::propagation::{self, TraceContext};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use metrics::{Counter, Histogram};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;
use tracing::Instrument;

/// App data: requests slower than this are logged (`telemetry.slow_request_ms`). Absent:
/// none is.
#[derive(Debug, Clone, Copy)]
pub struct SlowRequests(pub std::time::Duration);

/// The label for requests that matched no route: keeps the label set bounded whatever
/// paths scanners try.
const UNMATCHED: &str = "unmatched";

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let slow = req
        .app_data::<actix_web::web::Data<SlowRequests>>()
        .map(|threshold| threshold.0);
    // Only standard methods become label values: the label set must stay bounded.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let span = tracing::info_span!(
        "http.request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        http.request.method = %method,
        http.route = tracing::field::Empty,
        url.path = %req.path(),
        // Recorded by `keel_http::client_address` (it knows which proxies to believe).
        client.address = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        request_id = %header(&req, "x-request-id").unwrap_or_default(),
    );
    if let Some(traceparent) = header(&req, "traceparent") {
        let remote = TraceContext {
            traceparent: traceparent.to_owned(),
            tracestate: header(&req, "tracestate").map(str::to_owned),
        };
        propagation::set_parent(&span, &remote);
    }

    let result = next.call(req).instrument(span.clone()).await;

    let (status, route) = match &result {
        Ok(res) => (res.status(), route_template(res.request())),
        Err(err) => (err.as_response_error().status_code(), None),
    };
    let route = route.unwrap_or_else(|| Rc::from(UNMATCHED));
    span.record("http.route", &*route);
    // The exported span's name (`GET /api/v1/me`); nothing reads it when spans are not
    // exported. Renamed on the OpenTelemetry span itself: once a child or the job
    // context has read the span's context, a recorded `otel.name` is ignored.
    if crate::logging::exporting() {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        span.context()
            .span()
            .update_name(format!("{method} {route}"));
    }
    span.record("http.response.status_code", status.as_u16());

    let elapsed = started.elapsed();
    let trace = propagation::from_span(&span);
    if slow.is_some_and(|threshold| elapsed >= threshold) {
        let trace_id = trace
            .as_ref()
            .and_then(|cx| cx.traceparent.split('-').nth(1))
            .unwrap_or_default();
        span.in_scope(|| {
            tracing::warn!(
                http.route = %route,
                http.response.status_code = status.as_u16(),
                duration_ms = elapsed.as_millis() as u64,
                trace_id,
                "slow request"
            );
        });
    }
    record(method, route, status.as_u16(), elapsed.as_secs_f64());

    let mut res = result?;
    if let Some(cx) = trace
        && let Ok(value) = HeaderValue::from_str(&cx.traceparent)
    {
        res.headers_mut()
            .insert(HeaderName::from_static("traceresponse"), value);
    }
    Ok(res)
}

/// Paths whose route template this thread already resolved; cleared when full.
const TEMPLATE_MEMO: usize = 4096;

thread_local! {
    static TEMPLATES: RefCell<HashMap<String, Option<Rc<str>>>> = RefCell::new(HashMap::new());
}

/// The route template of the request (`/api/v1/orgs/{org_id}`). actix resolves it by
/// matching the path against every route again (regexes for patterned ones), which cost
/// more than half the throughput of a cached route; repeated paths are answered from a
/// small per-thread memo instead.
fn route_template(req: &actix_web::HttpRequest) -> Option<Rc<str>> {
    TEMPLATES.with(|memo| {
        if let Some(hit) = memo.borrow().get(req.path()) {
            return hit.clone();
        }
        let template: Option<Rc<str>> = req.match_pattern().map(Rc::from);
        let mut memo = memo.borrow_mut();
        if memo.len() >= TEMPLATE_MEMO {
            memo.clear();
        }
        memo.insert(req.path().to_owned(), template.clone());
        template
    })
}

/// (method, route template, status): cheap to build per request, the route being shared.
type SeriesKey = (&'static str, Rc<str>, u16);

thread_local! {
    /// Metric handles per (method, route, status), per worker thread: looking a series up
    /// in the global registry on every request costs more than the request itself.
    static SERIES: RefCell<HashMap<SeriesKey, (Counter, Histogram)>> = RefCell::new(HashMap::new());
}

fn record(method: &'static str, route: Rc<str>, status: u16, seconds: f64) {
    SERIES.with(|series| {
        let mut series = series.borrow_mut();
        let key = (method, route, status);
        let (counter, histogram) =
            series
                .entry(key)
                .or_insert_with_key(|(method, route, status)| {
                    let labels = [
                        ("method", (*method).to_owned()),
                        ("route", route.to_string()),
                        ("status", status.to_string()),
                    ];
                    (
                        metrics::counter!("keel_http_requests_total", &labels),
                        metrics::histogram!("keel_http_request_duration_seconds", &labels),
                    )
                });
        counter.increment(1);
        histogram.record(seconds);
    });
}

fn header<'r>(req: &'r ServiceRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

//! `GET /metrics`: Prometheus text exposition, on the operations port (and on the API
//! port only when `server.metrics_on_api_port` says so).

use crate::platform::Platform;
use actix_web::{HttpRequest, HttpResponse, get, web};
use keel_http::ApiError;

/// Every metric of this process. State gauges (pool occupancy, queue backlog) are
/// refreshed here, at scrape time. With `server.metrics_token` set, only a scraper that
/// sends it as a bearer token gets them.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, body = keel_http::ErrorBody, description = "`server.metrics_token` is set and was not sent")))]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    platform: web::Data<Platform>,
) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = platform.settings.server.metrics_token()
        && !super::bearer_is(&req, expected)
    {
        return Err(ApiError::unauthorized(
            "send the metrics token as Authorization: Bearer <token>",
        ));
    }
    platform.pool.record_metrics();
    platform.queue.record_metrics().await;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(keel_telemetry::metrics::render()))
}

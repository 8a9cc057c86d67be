//! `GET /metrics`: Prometheus text exposition.

use crate::platform::Platform;
use actix_web::{HttpResponse, get, web};

/// Every metric of this process. State gauges (pool occupancy, queue backlog) are
/// refreshed here, at scrape time.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(platform: web::Data<Platform>) -> HttpResponse {
    platform.pool.record_metrics();
    platform.queue.record_metrics().await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(keel_telemetry::metrics::render())
}

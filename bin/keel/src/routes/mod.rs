//! The binary's own routes: health, metrics, API documentation, admin.

pub mod admin;
pub mod docs;
pub mod health;
pub mod metrics;

use utoipa_actix_web::service_config::ServiceConfig;

/// Health and metrics: served by every process (`keel work` serves only these).
pub fn operations(cfg: &mut ServiceConfig) {
    cfg.service(health::live)
        .service(health::ready)
        .service(metrics::metrics);
}

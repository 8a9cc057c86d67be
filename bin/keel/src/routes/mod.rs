//! The binary's own routes: health, metrics, API documentation, admin.

pub mod admin;
pub mod docs;
pub mod health;
pub mod metrics;

use utoipa_actix_web::service_config::ServiceConfig;

/// Health, and metrics when `metrics`: health is on every port (load balancers probe
/// the API port), metrics on the operations port and, if configured, the API port.
pub fn operations(cfg: &mut ServiceConfig, metrics: bool) {
    cfg.service(health::live).service(health::ready);
    if metrics {
        cfg.service(metrics::metrics);
    }
}

/// Whether `req` carries `Authorization: Bearer <expected>`, compared in constant time so
/// response timing does not reveal the token.
pub(crate) fn bearer_is(req: &actix_web::HttpRequest, expected: &str) -> bool {
    let given = keel_http::auth::bearer(req).unwrap_or_default();
    bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        expected.as_bytes(),
    ))
}

//! The binary's own routes: health, metrics, API documentation, admin.

pub mod admin;
pub mod docs;
pub mod health;
pub mod metrics;

use actix_web::web;
use keel_config::Settings;
use keel_http::AllowedMethods;
use utoipa::openapi::OpenApi;
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

/// The methods each served path answers, for the 405s of [`keel_http::unmatched`]: the
/// paths of `doc`, the document this server serves (a worker's operations port has none:
/// there, every unmatched request is 404). Without an admin token the admin routes do not
/// exist (their handlers answer 404), so they get no 405 either.
pub fn allowed_methods(doc: Option<&OpenApi>, settings: &Settings) -> web::Data<AllowedMethods> {
    let admin = settings.admin.token().is_some();
    let paths = doc.iter().flat_map(|doc| doc.paths.paths.iter());
    web::Data::new(
        paths
            .filter(|(path, _)| admin || !path.starts_with(admin::PREFIX))
            .collect(),
    )
}

//! The OpenAPI document and its browsable UI (Swagger UI, served from the binary: works
//! offline).

use super::{admin, health, metrics};
use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Keel API", description = "Every error response has the body `ErrorBody`; see docs/api.md."),
    paths(
        health::live, health::ready, metrics::metrics,
        admin::counts, admin::dead, admin::status, admin::retry,
    ),
    components(schemas(keel_http::ErrorBody, keel_http::ErrorDetail)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Health and metrics"),
        (name = "admin", description = "Job queue administration (admin token)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token (keel_sess_...) or an API key (keel_key_...); see docs/auth.md"))
                    .build(),
            ),
        );
    }
}

/// The whole document: the binary's routes merged with every domain's.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(keel_accounts::http::AccountsApi::openapi());
    doc.merge(keel_notifications::http::NotificationsApi::openapi());
    doc
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(docs_redirect)
        .service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", openapi()));
}

#[get("/api/docs")]
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/docs/"))
        .finish()
}

//! The OpenAPI document and its browsable UI (Swagger UI, served from the binary: works
//! offline).

use crate::server::Routes;
use actix_web::{App, HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Keel API", description = "Every error response has the body `ErrorBody`; see docs/api.md."),
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

/// The whole document. Its paths are collected from the very registrations that serve
/// them (each handler's `#[utoipa::path]`, mounted once with `.service(handler)`), so a
/// served route cannot be missing from it; this adds the document's info, security
/// schemes, the domains' tag descriptions and the answers every route shares.
/// `metrics`: whether the API port serves `/metrics`.
pub fn openapi(api: &Routes, metrics: bool) -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    let (_, paths) = App::new()
        .into_utoipa_app()
        .configure(|cfg| super::operations(cfg, metrics))
        .service(utoipa_actix_web::scope("/api/v1").configure(|cfg| api(cfg)))
        .configure(super::admin::configure)
        .split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    doc.merge(keel_accounts::http::AccountsApi::openapi());
    doc.merge(keel_notifications::http::NotificationsApi::openapi());
    doc.merge(keel_uploads::http::UploadsApi::openapi());
    doc.merge(keel_exports::http::ExportsApi::openapi());
    keel_http::openapi::StandardAnswers.modify(&mut doc);
    scope_values(&mut doc);
    doc
}

/// The scopes an API key may be given are the areas of the domains this binary mounts
/// (`crate::domains::SCOPE_AREAS`), each `:read` or `:write`: listed as the values of
/// `CreateApiKey.scopes`, so the document refuses what the service refuses.
fn scope_values(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ArrayItems, ObjectBuilder, Schema, Type};
    let values: Vec<String> = crate::domains::SCOPE_AREAS
        .iter()
        .flat_map(|area| [format!("{area}:read"), format!("{area}:write")])
        .collect();
    let scopes = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("CreateApiKey"))
        .and_then(|schema| match schema {
            RefOr::T(Schema::Object(object)) => object.properties.get_mut("scopes"),
            _ => None,
        });
    if let Some(RefOr::T(Schema::Array(array))) = scopes {
        array.items = ArrayItems::RefOrSchema(Box::new(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(values))
                .into(),
        ));
    }
}

/// The document at `/api/openapi.json` and Swagger UI at `/api/docs/`.
pub fn configure(cfg: &mut web::ServiceConfig, doc: utoipa::openapi::OpenApi) {
    cfg.service(docs_redirect)
        .service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", doc));
}

#[get("/api/docs")]
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/docs/"))
        .finish()
}

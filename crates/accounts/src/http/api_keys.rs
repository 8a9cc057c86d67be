//! `/orgs/{org_id}/api-keys`.

use crate::api_keys::{CreatedApiKey, NewApiKey};
use crate::repo::ApiKeyRow;
use crate::service::Accounts;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use keel_http::{
    Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json, PageQuery, Paginated,
};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_api_key)
        .service(list_api_keys)
        .service(revoke_api_key);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// `<area>:read` or `<area>:write`, for the areas of the domains this deployment runs
    /// (the document's enum lists them).
    #[schema(min_items = 1, inline, value_type = Vec<String>)]
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates a key. The `secret` in the answer is shown this once; store it now.
#[utoipa::path(tag = "api keys", security(("bearer" = [])),
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/orgs/{org_id}/api-keys")]
pub async fn create_api_key(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<CreateApiKey>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let reply = key.reply(|created: &CreatedApiKey| Answer::json(StatusCode::CREATED, created));
    let created = accounts
        .create_api_key(
            &caller.0,
            *org_id,
            NewApiKey {
                name: b.name,
                scopes: b.scopes,
                expires_at: b.expires_at,
            },
            &reply,
        )
        .await?;
    Ok(reply.respond(&created))
}

/// Live keys, newest first, without secrets.
#[utoipa::path(tag = "api keys", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Paginated<ApiKeyRow>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/orgs/{org_id}/api-keys")]
pub async fn list_api_keys(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    Ok(HttpResponse::Ok().json(accounts.list_api_keys(&caller.0, *org_id, page).await?))
}

/// Revokes a key; it stops working at once.
#[utoipa::path(tag = "api keys", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/orgs/{org_id}/api-keys/{key_id}")]
pub async fn revoke_api_key(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, key_id) = path.into_inner();
    accounts.revoke_api_key(&caller.0, org_id, key_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

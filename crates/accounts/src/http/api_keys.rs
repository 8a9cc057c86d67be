//! `/orgs/{org_id}/api-keys`.

use crate::api_keys::{CreatedApiKey, NewApiKey};
use crate::repo::ApiKeyRow;
use crate::service::Accounts;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use keel_http::{
    Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json, PageQuery, Paginated,
};
use serde::Deserialize;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/orgs/{org_id}/api-keys", web::post().to(create))
        .route("/orgs/{org_id}/api-keys", web::get().to(list))
        .route("/orgs/{org_id}/api-keys/{key_id}", web::delete().to(revoke));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// `<area>:read` or `<area>:write`, for the areas of the domains this deployment runs
    /// (`accounts`, `notifications`).
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates a key. The `secret` in the answer is shown this once; store it now.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/api-keys", tag = "api keys", security(("bearer" = [])),
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
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
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/api-keys", tag = "api keys", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Paginated<ApiKeyRow>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    Ok(HttpResponse::Ok().json(accounts.list_api_keys(&caller.0, *org_id, page).await?))
}

/// Revokes a key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/api-keys/{key_id}", tag = "api keys", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, key_id) = path.into_inner();
    accounts.revoke_api_key(&caller.0, org_id, key_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

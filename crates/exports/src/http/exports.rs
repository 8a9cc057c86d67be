//! `/orgs/{org_id}/exports`: request, list, read, cancel, delete; and the sources on offer.

use super::{actor, org_access};
use crate::source::SourceInfo;
use crate::{Export, Exports, NewExport};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use keel_http::{
    Access, Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json, PageQuery, Paginated,
};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_export)
        .service(list_exports)
        .service(list_export_sources)
        .service(get_export)
        .service(cancel_export)
        .service(delete_export);
}

/// Requests an export. The answer is the export in state `queued` (202, with its
/// `Location`); poll it, or listen for `export.completed`. Unknown source, format or
/// filter: 422 naming the field. Past the organization's limits (exports queued or
/// running at once, exports per day): 429 with `Retry-After`.
#[utoipa::path(tag = "exports", security(("bearer" = [])), params(("org_id" = Uuid, Path, description = "The organization")),
    request_body = NewExport,
    responses((status = 202, body = Export), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[post("")]
pub async fn create_export(
    e: web::Data<Exports>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<NewExport>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Write)?;
    let reply = key.reply(move |export: &Export| {
        Answer::json(StatusCode::ACCEPTED, export).location(&super::location(org_id, export.id))
    });
    let export = e.request(org_id, actor(&caller.0), body.0, &reply).await?;
    Ok(reply.respond(&export))
}

/// The organization's exports, newest first.
#[utoipa::path(tag = "exports", security(("bearer" = [])), params(("org_id" = Uuid, Path, description = "The organization"), PageQuery),
    responses((status = 200, body = Paginated<Export>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("")]
pub async fn list_exports(
    e: web::Data<Exports>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Read)?;
    let page = query.parse()?;
    Ok(HttpResponse::Ok().json(e.list(org_id, &page).await?))
}

/// What can be exported: each source's columns and filters.
#[utoipa::path(tag = "exports", security(("bearer" = [])), params(("org_id" = Uuid, Path, description = "The organization")),
    responses((status = 200, body = Vec<SourceInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[get("/sources")]
pub async fn list_export_sources(
    e: web::Data<Exports>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    org_access(&caller.0, *org_id, Access::Read)?;
    let sources: Vec<&SourceInfo> = e.sources().iter().map(|s| s.info()).collect();
    Ok(HttpResponse::Ok().json(sources))
}

/// One export: its state, progress and file.
#[utoipa::path(tag = "exports", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The export")), security(("bearer" = [])),
    responses((status = 200, body = Export), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[get("/{id}")]
pub async fn get_export(
    e: web::Data<Exports>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    Ok(HttpResponse::Ok().json(e.get(org_id, id).await?))
}

/// Cancels a queued or running export: the job stops at its next batch and its partial
/// file is deleted. Cancelling it again answers the same; a finished export is 409.
#[utoipa::path(tag = "exports", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The export")), security(("bearer" = [])),
    responses((status = 200, body = Export), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/{id}/cancel")]
pub async fn cancel_export(
    e: web::Data<Exports>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    Ok(HttpResponse::Ok().json(e.cancel(org_id, id, actor(&caller.0)).await?))
}

/// Deletes an export before its retention: it is gone from the API at once, its file
/// shortly after; a running export stops. In the audit trail as `export.deleted`.
#[utoipa::path(tag = "exports", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The export")), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/{id}")]
pub async fn delete_export(
    e: web::Data<Exports>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    e.delete(org_id, id, actor(&caller.0)).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/orgs/{org_id}/uploads/direct` and `/complete`: uploads whose bytes go straight to
//! S3 through a presigned URL.

use super::{org_access, uploader};
use crate::Uploads;
use crate::direct::{DirectUpload, NewDirectUpload};
use crate::model::Upload;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use keel_http::{Access, Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_direct_upload)
        .service(complete_direct_upload);
}

/// Starts a direct upload (S3 storage only; 409 otherwise): the answer's `url` takes one
/// PUT of the file with the given `headers` until `url_expires_at`; then call
/// `POST .../uploads/{id}/complete`. The size counts against the quota from now; an
/// upload never completed is removed after `uploads.unfinished_expiry_hours`.
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization")), security(("bearer" = [])), request_body = NewDirectUpload,
    responses((status = 201, body = DirectUpload), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[post("/direct")]
pub async fn create_direct_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<NewDirectUpload>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Write)?;
    let reply = key.reply(move |direct: &DirectUpload| {
        Answer::json(StatusCode::CREATED, direct)
            .location(&super::location(org_id, direct.upload.id))
    });
    let direct = u
        .create_direct(org_id, uploader(&caller.0), body.0, &reply)
        .await?;
    Ok(reply.respond(&direct))
}

/// Says the bytes of a direct upload are in place: they must be there with the declared
/// size (409 otherwise: not uploaded yet, or another size, then removed), and
/// processing starts (202). Calling it again answers the upload as it is.
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload")), security(("bearer" = [])),
    responses((status = 202, body = Upload), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/{id}/complete")]
pub async fn complete_direct_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    let only_by = super::only_by(&caller.0);
    Ok(HttpResponse::Accepted().json(u.complete_direct(org_id, id, only_by).await?))
}

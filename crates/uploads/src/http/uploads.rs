//! `/orgs/{org_id}/uploads`: upload (raw body or multipart form), list, read, download,
//! thumbnail, delete.

use super::content;
use super::{org_access, uploader};
use crate::model::{Upload, UploadState};
use crate::repo::uploads::ListFilter;
use crate::service::{Incoming, Uploader};
use crate::{Uploads, UploadsError, names};
use actix_multipart::Multipart;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use futures::StreamExt;
use keel_http::{
    Access, Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, PageQuery, Paginated, Reply,
};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_upload)
        .service(list_uploads)
        .service(get_upload)
        .service(get_upload_content)
        .service(get_upload_thumbnail)
        .service(delete_upload);
}

/// Query of `POST .../uploads`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name (raw bodies; a multipart part names its own file). Also read from
    /// a `Content-Disposition: attachment; filename=...` request header.
    pub name: Option<String>,
}

/// Uploads a file, streamed to storage as it arrives. Send the bytes as the body with
/// their `Content-Type` (the name in `?name=` or `Content-Disposition`), or as
/// `multipart/form-data` with one file part. The answer is the upload in state
/// `processing`; poll it (or listen for `upload.processed`) for the outcome. Past the
/// size cap or the organization's quota: 413, and nothing is kept.
#[utoipa::path(tag = "uploads", security(("bearer" = [])), params(("org_id" = Uuid, Path, description = "The organization"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes (any type), or a multipart/form-data body with one file part"),
    responses((status = 201, body = Upload), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("")]
pub async fn create_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<UploadQuery>,
    req: HttpRequest,
    payload: web::Payload,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Write)?;
    let reply = key.reply(move |upload: &Upload| {
        Answer::json(StatusCode::CREATED, upload).location(&super::location(org_id, upload.id))
    });
    let who = uploader(&caller.0);
    let query = query.into_inner();
    match receive(&u, org_id, who, query, &req, payload, &reply).await {
        Ok(upload) => Ok(reply.respond(&upload)),
        Err(e) => Ok(refused(e)),
    }
}

/// An upload refused before its body was read to the end: the connection is closed
/// after the answer rather than kept for another request, so the client stops sending
/// (and cannot mistake its unsent bytes for the next request).
fn refused(e: UploadsError) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&ApiError::from(e));
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response
}

async fn receive(
    u: &Uploads,
    org_id: Uuid,
    who: Uploader,
    query: UploadQuery,
    req: &HttpRequest,
    payload: web::Payload,
    reply: &Reply<Upload>,
) -> Result<Upload, UploadsError> {
    let declared = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if declared.as_deref().is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
    }) {
        from_form(u, org_id, who, req, payload, reply).await
    } else {
        let name = query.name.or_else(|| {
            req.headers()
                .get(header::CONTENT_DISPOSITION)
                .and_then(names::from_disposition)
        });
        let incoming = Incoming {
            name,
            declared_type: declared,
            announced_length: announced_length(req),
            body: payload,
        };
        u.receive_streamed(org_id, who, incoming, reply).await
    }
}

/// The first part of the form that carries a file; other fields before it are skipped,
/// and those after it are read (up to [`TRAILING_FORM_BYTES`]) and dropped, so the whole
/// body has been read when the upload is recorded (its `Idempotency-Key` fingerprint
/// covers every byte).
async fn from_form(
    u: &Uploads,
    org_id: Uuid,
    who: Uploader,
    req: &HttpRequest,
    payload: web::Payload,
    reply: &Reply<Upload>,
) -> Result<Upload, UploadsError> {
    let mut form = Multipart::new(req.headers(), payload);
    while let Some(field) = form.next().await {
        let field = field.map_err(|e| UploadsError::Incomplete(e.to_string()))?;
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        if file_name.is_none() {
            continue;
        }
        let declared_type = field.content_type().map(ToString::to_string);
        let rest =
            futures::stream::once(drain(form)).filter_map(|r| async move { r.err().map(Err) });
        let body = Box::pin(
            field
                .map(|chunk| chunk.map_err(|e| e.to_string()))
                .chain(rest),
        );
        let incoming = Incoming {
            name: file_name,
            declared_type,
            announced_length: None,
            body,
        };
        return u.receive_streamed(org_id, who, incoming, reply).await;
    }
    Err(UploadsError::Unsupported(
        "the multipart form has no file part (a part with a filename)".to_owned(),
    ))
}

/// Bytes of form fields after the file that are read and dropped; more is refused.
const TRAILING_FORM_BYTES: usize = 64 * 1024;

/// Reads the rest of a form to its end.
async fn drain(mut form: Multipart) -> Result<(), String> {
    let mut seen = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| e.to_string())?;
        while let Some(chunk) = field.next().await {
            seen += chunk.map_err(|e| e.to_string())?.len();
            if seen > TRAILING_FORM_BYTES {
                return Err("the form goes on too long after its file part".to_owned());
            }
        }
    }
    Ok(())
}

fn announced_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Filters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only uploads in this state.
    pub state: Option<UploadState>,
    /// Only uploads whose content is of this type (`image/png`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub detected_type: Option<String>,
    /// Items per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The organization's uploads, newest first.
#[utoipa::path(tag = "uploads", security(("bearer" = [])), params(("org_id" = Uuid, Path, description = "The organization"), ListQuery),
    responses((status = 200, body = Paginated<Upload>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("")]
pub async fn list_uploads(
    u: web::Data<Uploads>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Read)?;
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let filter = ListFilter {
        state: query.state,
        detected_type: query.detected_type.map(|t| t.to_ascii_lowercase()),
    };
    Ok(HttpResponse::Ok().json(u.list(org_id, &filter, &page).await?))
}

/// One upload: its state, and what processing found.
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload")), security(("bearer" = [])),
    responses((status = 200, body = Upload), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[get("/{id}")]
pub async fn get_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    Ok(HttpResponse::Ok().json(u.get(org_id, id).await?))
}

/// The file, as the type its bytes show, as an attachment. `Range: bytes=a-b` gets 206;
/// `If-None-Match` with the `ETag` gets 304. Only `ready` uploads (409 otherwise).
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload")), security(("bearer" = [])),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 206, body = Vec<u8>),
              (status = 304), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 416, body = ErrorBody)))]
#[get("/{id}/content")]
pub async fn get_upload_content(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    let upload = match u.get(org_id, id).await {
        Ok(upload) => upload,
        Err(e) => return Ok(content::error(e)),
    };
    let etag = content::etag(&upload);
    if upload.state == UploadState::Ready
        && keel_http::download::not_modified(&req, etag.as_deref())
    {
        return Ok(keel_http::download::unchanged(
            etag.as_deref().unwrap_or_default(),
        ));
    }
    let range = keel_http::download::requested_range(&req);
    Ok(match u.content(org_id, &upload, range).await {
        Ok(download) => {
            let content_type = upload
                .detected_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            keel_http::download::respond(
                download,
                content_type,
                &upload.file_name,
                etag.as_deref(),
                range.is_some(),
            )
        }
        Err(e) => content::error(e),
    })
}

/// A PNG thumbnail of an image upload (404 when it has none).
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload")), security(("bearer" = [])),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[get("/{id}/thumbnail")]
pub async fn get_upload_thumbnail(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    let (upload, download) = u.thumbnail(org_id, id).await?;
    let name = format!("{}.thumbnail.png", upload.file_name);
    Ok(keel_http::download::respond(
        download,
        "image/png",
        &name,
        None,
        false,
    ))
}

/// Deletes the upload: it is gone from the API at once, its bytes shortly after. The
/// uploader, an owner or admin, or an API key with `uploads:write` may.
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload")), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/{id}")]
pub async fn delete_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    u.delete(org_id, id, super::only_by(&caller.0)).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/orgs/{org_id}/uploads/resumable`: the tus 1.0 protocol (core, creation,
//! termination, expiration, checksum with sha1 and sha256), so any tus client
//! (`tus-js-client`, `tuspy`, Uppy, ...) can upload large files over flaky networks.
//! The protocol's own headers carry its state; errors keep Keel's error body.

use super::tus_headers::{CHECKSUMS, checksum, metadata, number};
use super::{org_access, uploader};
use crate::Uploads;
use crate::model::{Upload, UploadState};
use crate::resumable::Chunk;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{
    HttpRequest, HttpResponse, HttpResponseBuilder, delete, head, options, patch, post, web,
};
use chrono::{DateTime, Utc};
use keel_http::{Access, ApiError, Authenticated, ErrorBody};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// The protocol version spoken (and the only one).
const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,expiration,checksum,termination";
/// The body type of a PATCH.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// The protocol version header, as the OpenAPI document declares it.
#[derive(Debug, utoipa::ToSchema)]
#[expect(dead_code, reason = "a schema for the OpenAPI document only")]
pub enum TusVersion {
    #[schema(rename = "1.0.0")]
    V1,
}

/// Headers of a tus creation.
#[derive(Debug, utoipa::IntoParams)]
#[expect(
    dead_code,
    reason = "declares the headers in the OpenAPI document; handlers read them themselves"
)]
#[into_params(parameter_in = Header)]
pub struct TusCreation {
    /// The protocol version: `1.0.0`.
    #[param(rename = "Tus-Resumable", value_type = TusVersion)]
    pub tus_resumable: String,
    /// The file's size in bytes.
    #[param(rename = "Upload-Length", minimum = 1)]
    pub upload_length: u64,
    /// `filename <base64>,filetype <base64>`.
    #[param(rename = "Upload-Metadata")]
    pub upload_metadata: Option<String>,
}

/// The header every tus request but discovery carries.
#[derive(Debug, utoipa::IntoParams)]
#[expect(
    dead_code,
    reason = "declares the header in the OpenAPI document; handlers read it themselves"
)]
#[into_params(parameter_in = Header)]
pub struct TusRequest {
    /// The protocol version: `1.0.0`.
    #[param(rename = "Tus-Resumable", value_type = TusVersion)]
    pub tus_resumable: String,
}

/// Headers of a tus chunk.
#[derive(Debug, utoipa::IntoParams)]
#[expect(
    dead_code,
    reason = "declares the headers in the OpenAPI document; handlers read them themselves"
)]
#[into_params(parameter_in = Header)]
pub struct TusChunk {
    /// The protocol version: `1.0.0`.
    #[param(rename = "Tus-Resumable", value_type = TusVersion)]
    pub tus_resumable: String,
    /// Where this chunk starts: the upload's offset.
    #[param(rename = "Upload-Offset")]
    pub upload_offset: u64,
    /// `sha256 <base64>` or `sha1 <base64>` of this chunk.
    #[param(rename = "Upload-Checksum")]
    pub upload_checksum: Option<String>,
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resumable_upload_options)
        .service(create_resumable_upload)
        .service(resumable_upload_offset)
        .service(append_resumable_upload)
        .service(delete_resumable_upload);
}

/// What the server supports (tus discovery). Needs no credentials.
#[utoipa::path(tag = "uploads", params(("org_id" = Uuid, Path, description = "The organization")),
    responses((status = 204, description = "Tus-Version, Tus-Extension, Tus-Max-Size and Tus-Checksum-Algorithm headers"),
              (status = 404, body = ErrorBody)))]
#[options("/resumable")]
pub async fn resumable_upload_options(
    u: web::Data<Uploads>,
    org_id: web::Path<Uuid>,
) -> HttpResponse {
    let _ = org_id;
    tus(&mut HttpResponse::NoContent())
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", EXTENSIONS))
        .insert_header(("Tus-Max-Size", u.max_size_bytes().to_string()))
        .insert_header(("Tus-Checksum-Algorithm", CHECKSUMS))
        .finish()
}

/// Creates a resumable upload of `Upload-Length` bytes (tus creation); `Upload-Metadata`
/// may name it (`filename`) and give its type (`filetype`). The answer's `Location` takes
/// the chunks. The length counts against the quota from now; an upload not finished
/// within `uploads.unfinished_expiry_hours` is removed (`Upload-Expires`).
#[utoipa::path(tag = "uploads", security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "The organization"), TusCreation),
    responses((status = 201, body = Upload, description = "Location, Upload-Expires"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 412, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/resumable")]
pub async fn create_resumable_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Write)?;
    if let Some(refusal) = version_refused(&req) {
        return Ok(refusal);
    }
    let headers = req.headers();
    if headers.contains_key("upload-defer-length") {
        return Ok(tus_error(ApiError::bad_request(
            "Upload-Defer-Length is not supported: send Upload-Length",
        )));
    }
    let Some(length) = number(headers, "upload-length") else {
        return Ok(tus_error(ApiError::bad_request(
            "Upload-Length must be the file's size in bytes",
        )));
    };
    let metadata = match metadata(headers) {
        Ok(metadata) => metadata,
        Err(why) => return Ok(tus_error(ApiError::bad_request(why))),
    };
    let created = u
        .create_resumable(
            org_id,
            uploader(&caller.0),
            length,
            metadata.name.as_deref(),
            metadata.content_type.as_deref(),
        )
        .await;
    Ok(match created {
        Ok(upload) => {
            let mut res = HttpResponse::Created();
            tus(&mut res)
                .insert_header((header::LOCATION, location(org_id, upload.id)))
                .insert_header(("Upload-Offset", "0"));
            expires(&mut res, &upload);
            res.json(upload)
        }
        Err(e) => tus_error(e.into()),
    })
}

/// The upload's offset (tus HEAD): how many bytes arrived, so a client resumes there.
#[utoipa::path(tag = "uploads", security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload"), TusRequest),
    responses((status = 200, description = "Upload-Offset, Upload-Length, Upload-Expires"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody),
              (status = 412, body = ErrorBody)))]
#[head("/resumable/{id}")]
pub async fn resumable_upload_offset(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    if let Some(refusal) = version_refused(&req) {
        return Ok(refusal);
    }
    Ok(match u.resumable(org_id, id).await {
        Ok(upload) => {
            let mut res = HttpResponse::Ok();
            tus(&mut res)
                .insert_header(("Upload-Offset", offset(&upload).to_string()))
                .insert_header(("Upload-Length", upload.size_bytes.to_string()))
                .insert_header((header::CACHE_CONTROL, "no-store"));
            expires(&mut res, &upload);
            res.finish()
        }
        Err(e) => tus_error(e.into()),
    })
}

/// Appends a chunk at `Upload-Offset` (which must be the upload's offset: 409
/// otherwise). With `Upload-Checksum: sha256 <base64>` (or `sha1`) a chunk that does
/// not match is dropped (460). A chunk cut short keeps what arrived. The last chunk
/// starts processing.
#[utoipa::path(tag = "uploads", security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload"), TusChunk),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses((status = 204, description = "Upload-Offset, Upload-Expires"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 412, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 460, body = ErrorBody)))]
#[patch("/resumable/{id}")]
pub async fn append_resumable_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    if let Some(refusal) = version_refused(&req) {
        return Ok(refusal);
    }
    let headers = req.headers();
    let is_chunk = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM));
    if !is_chunk {
        return Ok(closing(tus_error(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a chunk is sent as Content-Type: application/offset+octet-stream",
        ))));
    }
    let Some(at) = number(headers, "upload-offset") else {
        return Ok(closing(tus_error(ApiError::bad_request(
            "Upload-Offset must be where this chunk starts, in bytes",
        ))));
    };
    let checksum = match checksum(headers) {
        Ok(checksum) => checksum,
        Err(why) => return Ok(closing(tus_error(ApiError::bad_request(why)))),
    };
    let chunk = Chunk {
        offset: at,
        checksum,
        body: payload,
    };
    Ok(
        match u.append(org_id, id, chunk, super::only_by(&caller.0)).await {
            Ok(upload) => {
                let mut res = HttpResponse::NoContent();
                tus(&mut res).insert_header(("Upload-Offset", offset(&upload).to_string()));
                expires(&mut res, &upload);
                res.finish()
            }
            Err(e) => closing(tus_error(e.into())),
        },
    )
}

/// Abandons the upload (tus termination): its row and its bytes go.
#[utoipa::path(tag = "uploads", security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The upload"), TusRequest),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
#[delete("/resumable/{id}")]
pub async fn delete_resumable_upload(
    u: web::Data<Uploads>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    if let Some(refusal) = version_refused(&req) {
        return Ok(refusal);
    }
    if let Err(e) = u.resumable(org_id, id).await {
        return Ok(tus_error(e.into()));
    }
    Ok(
        match u.delete(org_id, id, super::only_by(&caller.0)).await {
            Ok(()) => tus(&mut HttpResponse::NoContent()).finish(),
            Err(e) => tus_error(e.into()),
        },
    )
}

fn tus(res: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    res.insert_header(("Tus-Resumable", TUS_VERSION))
}

fn tus_error(e: ApiError) -> HttpResponse {
    let mut res = actix_web::ResponseError::error_response(&e);
    res.headers_mut().insert(
        header::HeaderName::from_static("tus-resumable"),
        header::HeaderValue::from_static(TUS_VERSION),
    );
    res
}

/// The connection closes after an answer given before the chunk was read to its end.
fn closing(mut res: HttpResponse) -> HttpResponse {
    res.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    res
}

/// 412 with `Tus-Version` unless the request speaks tus 1.0.0.
fn version_refused(req: &HttpRequest) -> Option<HttpResponse> {
    let spoken = req
        .headers()
        .get("tus-resumable")
        .and_then(|v| v.to_str().ok());
    if spoken == Some(TUS_VERSION) {
        return None;
    }
    let mut res = tus_error(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "send Tus-Resumable: 1.0.0 (the tus protocol version this server speaks)",
    ));
    res.headers_mut().insert(
        header::HeaderName::from_static("tus-version"),
        header::HeaderValue::from_static(TUS_VERSION),
    );
    Some(res)
}

fn location(org_id: Uuid, id: Uuid) -> String {
    format!("/api/v1/orgs/{org_id}/uploads/resumable/{id}")
}

/// Bytes received; all of them once the upload left `receiving`.
fn offset(upload: &Upload) -> i64 {
    if upload.state == UploadState::Receiving {
        upload.received_bytes
    } else {
        upload.size_bytes
    }
}

fn expires(res: &mut HttpResponseBuilder, upload: &Upload) {
    if let Some(at) = upload
        .expires_at
        .filter(|_| upload.state == UploadState::Receiving)
    {
        res.insert_header(("Upload-Expires", http_date(at)));
    }
}

/// RFC 9110's IMF-fixdate.
fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

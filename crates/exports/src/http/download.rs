//! Downloading an export: `GET .../{id}/download` (authenticated) answers a redirect to
//! a signed link; `GET .../{id}/file` (the local backend's signed link) serves the file.

use super::{actor, org_access};
use crate::link::Signature;
use crate::{DownloadLink, Exports, ExportsError};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use keel_http::{Access, ApiError, Authenticated, ErrorBody};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(download_export).service(get_export_file);
}

/// A link to a succeeded export's file: 303 to it (`Location`), with the link and its
/// expiry in the body for clients that do not follow redirects. The link needs no
/// credentials and works for `exports.link_expiry_secs` (at most 15 minutes): on S3 a
/// presigned URL, otherwise Keel's own signed route. Not succeeded yet: 409; past its
/// retention: 410.
#[utoipa::path(tag = "exports", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The export")), security(("bearer" = [])),
    responses((status = 303, body = DownloadLink, headers(("Location" = String, description = "The signed link"))),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
#[get("/{id}/download")]
pub async fn download_export(
    e: web::Data<Exports>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    let link = e.download_link(org_id, id, actor(&caller.0)).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, link.url.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(&link))
}

/// The file of a succeeded export, through a signed link (no credentials: the signature
/// is the permission). `Range: bytes=a-b` gets 206. A link tampered with, incomplete or
/// expired: 403.
#[utoipa::path(tag = "exports", params(("org_id" = Uuid, Path, description = "The organization"), ("id" = Uuid, Path, description = "The export"), Signature),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 206, body = Vec<u8>),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 416, body = ErrorBody)))]
#[get("/{id}/file")]
pub async fn get_export_file(
    e: web::Data<Exports>,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
) -> HttpResponse {
    let (org_id, id) = path.into_inner();
    // Read by hand: a link with a part missing or garbled was tampered with (403), not
    // a request to correct (the query extractor's 400).
    let Ok(signature) = web::Query::<Signature>::from_query(req.query_string()) else {
        return keel_http::download::error(
            ExportsError::BadLink(crate::link::Refused::Forged.message()).into(),
            None,
        );
    };
    let range = keel_http::download::requested_range(&req);
    match e.open_signed(org_id, id, &signature, range).await {
        Ok((export, download)) => keel_http::download::respond(
            download,
            export.format.content_type(export.compress),
            &export.file_name,
            export.sha256.map(|sha| format!("\"{sha}\"")).as_deref(),
            range.is_some(),
        ),
        Err(e) => {
            let size = match &e {
                ExportsError::Range { size } => Some(*size),
                _ => None,
            };
            keel_http::download::error(e.into(), size)
        }
    }
}

//! Serving stored bytes: `Range` (one range; others are served whole, as RFC 9110
//! allows), a strong `ETag` from the SHA-256 with `If-None-Match`, and headers that keep
//! a browser from running what it downloads.

use crate::model::Upload;
use crate::{UploadsError, names};
use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use futures::TryStreamExt;
use keel_http::ApiError;
use keel_storage::{ByteRange, Download};

/// The range asked for, when it is one well-formed `bytes=` range. Anything else
/// (several ranges, another unit, garbage) is ignored and the whole content served.
pub fn requested_range(req: &HttpRequest) -> Option<ByteRange> {
    let value = req.headers().get(header::RANGE)?.to_str().ok()?;
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.trim().split_once('-')?;
    match (start.parse::<u64>().ok(), end.parse::<u64>().ok()) {
        (Some(start), Some(end)) if end >= start => {
            Some(ByteRange::Bounded(start, end.saturating_add(1)))
        }
        (Some(start), None) if end.is_empty() => Some(ByteRange::From(start)),
        (None, Some(last)) if start.is_empty() && last > 0 => Some(ByteRange::Last(last)),
        _ => None,
    }
}

/// The strong entity tag of an upload's content.
pub fn etag(upload: &Upload) -> Option<String> {
    upload.sha256.as_ref().map(|sha| format!("\"{sha}\""))
}

/// True when the client's `If-None-Match` already names this content.
pub fn not_modified(req: &HttpRequest, etag: Option<&str>) -> bool {
    let (Some(etag), Some(header)) = (etag, req.headers().get(header::IF_NONE_MATCH)) else {
        return false;
    };
    header.to_str().is_ok_and(|value| {
        value.trim() == "*"
            || value
                .split(',')
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == etag)
    })
}

/// The response carrying `download`: 200 or 206, as an attachment of `content_type`.
pub fn respond(
    download: Download,
    content_type: &str,
    file_name: &str,
    etag: Option<&str>,
    ranged: bool,
) -> HttpResponse {
    let mut builder = HttpResponse::build(if ranged {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    builder
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            names::content_disposition(file_name),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Opened directly anyway, an HTML or SVG upload runs no script and reaches nothing.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=0, must-revalidate"));
    if let Some(etag) = etag {
        builder.insert_header((header::ETAG, etag));
    }
    if ranged {
        let range = &download.range;
        builder.insert_header((
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                range.start,
                range.end.saturating_sub(1),
                download.size
            ),
        ));
    }
    let length = download.range.end - download.range.start;
    let stream = download.stream.map_err(std::io::Error::other);
    builder.body(SizedStream::new(length, stream))
}

/// 304 with the tag, no body.
pub fn unchanged(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .finish()
}

/// An error response; a 416 also says how long the content is (`Content-Range: bytes */n`).
pub fn error(e: UploadsError) -> HttpResponse {
    let size = match &e {
        UploadsError::Range { size } => Some(*size),
        _ => None,
    };
    let mut response = actix_web::ResponseError::error_response(&ApiError::from(e));
    if let Some(size) = size
        && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
    {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

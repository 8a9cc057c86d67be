//! Serving stored files (uploads' content, exports' files): `Range` (one range; others
//! are served whole, as RFC 9110 allows), a strong `ETag` with `If-None-Match`, a
//! `Content-Disposition` file name, and headers that keep a browser from running what
//! it downloads.

use crate::ApiError;
use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use futures::TryStreamExt;
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
        .insert_header((header::CONTENT_DISPOSITION, content_disposition(file_name)))
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

/// `error`'s response; a 416 (`size` given) also says how long the content is
/// (`Content-Range: bytes */n`).
pub fn error(error: ApiError, size: Option<u64>) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&error);
    if let Some(size) = size
        && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
    {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266): old
/// clients read the ASCII fallback, everyone else the exact name. Quotes and
/// backslashes never reach the quoted form.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

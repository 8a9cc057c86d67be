//! `X-Request-Id` on every request and response, and the error-body guarantee.
//!
//! Mounted outermost (`.wrap(from_fn(keel_http::request_id::middleware))` last), it:
//! - keeps a caller's `X-Request-Id` when it is sane (1–64 of `[A-Za-z0-9._-]`), otherwise
//!   assigns one, and writes it into the request headers (so the telemetry span logs it)
//!   and the response;
//! - makes the id available to [`current`] for the whole request, so every error body
//!   carries it;
//! - rewrites any error response that is not already JSON (unknown routes, 405s, errors
//!   raised inside actix) into the standard error body, so clients parse one shape.

use crate::error::for_status;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if called within one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Process-unique ids without a syscall per request: a random per-process prefix and a
/// counter.
fn generate() -> String {
    static PREFIX: LazyLock<u64> = LazyLock::new(rand::random);
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:012x}{:08x}",
        *PREFIX & 0xffff_ffff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(generate);
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(HEADER, value.clone());

    let result = REQUEST_ID
        .scope(id.clone(), async move {
            next.call(req)
                .await
                .map(|res| shape(res.map_into_boxed_body()))
        })
        .await;
    match result {
        Ok(mut res) => {
            res.headers_mut().insert(HEADER, value);
            Ok(res)
        }
        // An error that escaped every handler is rendered by actix after this returns,
        // outside the scope: carry the id in the error itself.
        Err(err) => Err(for_status(err.as_response_error().status_code())
            .with_request_id(id)
            .into()),
    }
}

/// Replaces an error body that is neither JSON nor a page (actix's plain-text errors,
/// an empty body) with the standard one, keeping the status and headers such as `Allow`
/// and `Retry-After`. HTML is kept: only the ops console answers with pages, and its
/// error pages are written for the operator reading them.
fn shape(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let deliberate = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json")
                || ct.starts_with("application/problem+json")
                || ct.starts_with("text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || deliberate {
        return res;
    }
    let (req, old) = res.into_parts();
    let mut new: HttpResponse = for_status(status).error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_acceptable() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(acceptable(&a) && acceptable(&b));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable(&"x".repeat(65)));
    }
}

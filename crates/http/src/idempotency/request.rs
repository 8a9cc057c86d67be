//! What the middleware reads off a request: the key, the caller's scope, the body (with
//! a cap) and the fingerprint a retry must match.

use super::{HEADER, MAX_KEY_LEN};
use crate::error::ApiError;
use actix_web::HttpMessage;
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// The key, `None` without the header, an error when it is malformed or repeated.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Option<Result<String, ApiError>> {
    let mut values = headers.get_all(HEADER);
    let value = values.next()?;
    if values.next().is_some() {
        return Some(Err(ApiError::bad_request(
            "send exactly one Idempotency-Key header",
        )));
    }
    let bytes = value.as_bytes();
    let valid =
        (1..=MAX_KEY_LEN).contains(&bytes.len()) && bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    Some(if valid {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    } else {
        Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
        )))
    })
}

/// `<sha256(Authorization) | anonymous> <METHOD> <route template>`.
pub(super) fn scope_of(req: &ServiceRequest) -> String {
    let caller = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => hex::encode(Sha256::digest(value.as_bytes())),
        None => "anonymous".to_owned(),
    };
    let route = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    format!("{caller} {} {route}", req.method())
}

/// SHA-256 over the path and query, the content type and the body, each length-prefixed.
pub(super) fn fingerprint(req: &ServiceRequest, body: &[u8]) -> Vec<u8> {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(&[][..], HeaderValue::as_bytes);
    let mut hash = Sha256::new();
    for part in [target.as_bytes(), content_type, body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

/// Buffers the request body, refusing more than `limit` bytes.
pub(super) async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds the limit of {limit} bytes for idempotent requests"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        map
    }

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(idempotency_key(&HeaderMap::new()).is_none());
        assert!(idempotency_key(&headers(b"a")).unwrap().is_ok());
        assert!(
            idempotency_key(&headers(b"order 42/retry-1"))
                .unwrap()
                .is_ok()
        );
        assert!(
            idempotency_key(&headers("k".repeat(255).as_bytes()))
                .unwrap()
                .is_ok()
        );
        assert!(
            idempotency_key(&headers("k".repeat(256).as_bytes()))
                .unwrap()
                .is_err()
        );
        assert!(idempotency_key(&headers(b"")).unwrap().is_err());
        assert!(idempotency_key(&headers(b"tab\there")).unwrap().is_err());
        assert!(idempotency_key(&headers(b"caf\xc3\xa9")).unwrap().is_err());
        let mut twice = headers(b"a");
        twice.append(HEADER, HeaderValue::from_static("b"));
        assert!(idempotency_key(&twice).unwrap().is_err());
    }

    #[test]
    fn the_scope_names_the_caller_by_the_lowercase_sha256_of_its_credentials() {
        let req = actix_web::test::TestRequest::post()
            .uri("/things")
            .insert_header((header::AUTHORIZATION, "Bearer a"))
            .to_srv_request();
        assert_eq!(
            scope_of(&req),
            "122c4e371d393490e5789c418af3d3854ed07f2b8b087f8ac4b418dba01cf197 POST /things"
        );
    }
}

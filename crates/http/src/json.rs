//! The JSON body extractor every handler uses, and the error handlers of actix's own
//! extractors.
//!
//! [`Json`] is stricter and more helpful than `actix_web::web::Json`: it rejects bodies
//! over the configured limit before reading them (413), requires a JSON content type
//! (415), tells malformed JSON (400, with line and column) from well-formed JSON of the
//! wrong shape (422, naming the field by its path, e.g. `items[2].quantity`). JSON
//! exchanged between systems is UTF-8 (RFC 8259 §8.1), so a `charset` other than UTF-8
//! is refused (415) rather than read as UTF-8 regardless of what the client declared.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::mime::{self, Mime};
use actix_web::{FromRequest, HttpRequest, web};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// Largest JSON body accepted, as app data (`web::Data` not needed: plain `app_data`).
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// Default when no [`JsonLimit`] is registered.
const DEFAULT_LIMIT: usize = 64 * 1024;

/// A JSON request body deserialized into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<JsonLimit>().map_or(DEFAULT_LIMIT, |l| l.0);
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Mime>().ok())
            .is_some_and(|m| is_utf8_json(&m));
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(unsupported_media_type());
            }
            if declared.is_some_and(|len| len > limit) {
                return Err(too_large(limit));
            }
            let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(Json)
        })
    }
}

/// Deserializes `body`, classifying the failure as [`Json`] documents.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                // serde reports a missing field at its parent; name the field itself.
                let field = missing_field(&message)
                    .map(|f| {
                        if path == "." {
                            f.to_owned()
                        } else {
                            format!("{path}.{f}")
                        }
                    })
                    .unwrap_or(path);
                ApiError::validation(field, message)
            }
            _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The field named by serde's "missing field `x`" message, which it reports at the
/// parent's path. (An unknown field is reported at its own path already.)
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// serde_json appends " at line 1 column 17" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Whether a body of type `mime` is one [`Json`] reads: JSON (`application/json` or a
/// `+json` type) in UTF-8, the only encoding JSON may use between systems (RFC 8259
/// §8.1). A `charset` parameter is optional (JSON has no use for one) but when present
/// must say UTF-8 (any case, quoted or not): a body declared as UTF-16 and read as UTF-8
/// would be a different text than the client meant.
fn is_utf8_json(mime: &Mime) -> bool {
    let json = mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON);
    json && mime.get_param(mime::CHARSET).is_none_or(|charset| {
        charset
            .as_str()
            .trim_matches('"')
            .eq_ignore_ascii_case(mime::UTF_8.as_str())
    })
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the body must be UTF-8 JSON, sent with Content-Type: application/json",
    )
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds the limit of {limit} bytes"),
    )
}

/// Error handlers for actix's own `web::Json`, `web::Query` and `web::Path`, so a handler
/// that uses them still answers with the standard body.
///
/// `web::Json` cannot be made to refuse a charset other than UTF-8: its `content_type`
/// predicate only widens what it accepts (actix ORs it with its own `application/json`
/// test) and `content_type_required(false)` accepts anything. So routes read bodies with
/// [`Json`], never `web::Json` (the binary's architecture test checks every domain).
pub fn configure_extractors(cfg: &mut web::ServiceConfig, json_limit: usize) {
    cfg.app_data(JsonLimit(json_limit))
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(|err, _| json_payload_error(err).into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|err, _| query_error(err).into()))
        .app_data(web::PathConfig::default().error_handler(|err, _| path_error(err).into()));
}

fn json_payload_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => too_large(limit),
        JsonPayloadError::ContentType => unsupported_media_type(),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::validation("body", strip_position(&e.to_string()))
        }
        other => ApiError::bad_request(format!("the body is not valid JSON: {other}")),
    }
}

fn query_error(err: QueryPayloadError) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {err}"))
}

fn path_error(err: PathError) -> ApiError {
    // A path segment that does not parse (e.g. not a UUID) names no existing resource.
    ApiError::not_found(format!("no such resource: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Order {
        email: String,
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Item {
        quantity: u32,
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let err = parse::<Order>(b"{\"email\": ").unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
    }

    #[test]
    fn a_wrong_type_names_the_nested_field() {
        let err =
            parse::<Order>(br#"{"email":"a@b.c","items":[{"quantity":1},{"quantity":"two"}]}"#)
                .unwrap_err();
        assert_eq!(err.status().as_u16(), 422);
        assert_eq!(err.field(), Some("items[1].quantity"));
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse::<Order>(br#"{"items":[]}"#).unwrap_err();
        assert_eq!(err.field(), Some("email"));
    }

    fn utf8_json(content_type: &str) -> bool {
        is_utf8_json(&content_type.parse().unwrap())
    }

    #[test]
    fn json_is_accepted_without_a_charset_or_with_utf8_in_any_spelling() {
        for ok in [
            "application/json",
            "application/merge-patch+json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"Utf-8\"",
        ] {
            assert!(utf8_json(ok), "{ok}");
        }
    }

    #[test]
    fn another_charset_or_type_is_refused() {
        for refused in [
            "application/json; charset=utf-16",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf8",
            "text/plain; charset=utf-8",
        ] {
            assert!(!utf8_json(refused), "{refused}");
        }
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let err = parse::<Item>(br#"{"quantity":1} x"#).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
    }
}

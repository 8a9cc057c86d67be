//! The one error body of the API.
//!
//! Every error response — handler errors, extractor failures, unknown routes, errors
//! raised by actix itself — has the shape
//! `{"error": {"code": "...", "message": "...", "request_id": "...", "field": "..."}}`
//! (`field` only for validation errors). Status policy:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `bad_request` | the body is not valid JSON, a query/path parameter does not parse |
//! | 401 | `unauthorized` | no or invalid credentials |
//! | 403 | `forbidden` | authenticated, but not allowed |
//! | 404 | `not_found` | no such resource (or not visible to the caller's organization) |
//! | 405 | `method_not_allowed` | the path is served, not with this method; `Allow` lists those it is |
//! | 409 | `conflict` | the change clashes with existing state |
//! | 413 | `payload_too_large` | the body exceeds the configured limit |
//! | 415 | `unsupported_media_type` | a JSON body without `Content-Type: application/json`, or with a charset other than UTF-8 |
//! | 422 | `validation_failed` | well-formed input with a wrong type or an unacceptable value; names the field |
//! | 429 | `rate_limited` | too many requests; `Retry-After` says when to come back |
//! | 503 | `unavailable` | a dependency is saturated or down; `Retry-After` set |
//! | 500 | `internal` | a bug; the cause is logged with the request id, never shown |

use crate::request_id;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use keel_persistence::DbError;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// An error on its way to becoming the standard error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    field: Option<Cow<'static, str>>,
    retry_after_secs: Option<u64>,
    /// Set only when rendered outside the request's scope (see `request_id`).
    request_id: Option<String>,
}

/// The JSON body, also used in the OpenAPI document.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code (`not_found`, `validation_failed`, ...).
    pub code: String,
    /// Human-readable explanation; safe to show, never contains internals.
    pub message: String,
    /// The `X-Request-Id` of the request, to quote when reporting a problem.
    pub request_id: String,
    /// For `validation_failed`: the offending field (dotted path for nested fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after_secs: None,
            request_id: None,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 naming the field that failed and why.
    pub fn validation(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        );
        e.field = Some(field.into());
        e
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        )
        .retry_after(retry_after_secs)
    }

    /// 503: a dependency is saturated or down; clients should retry after a pause.
    pub fn unavailable(message: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            .retry_after(retry_after_secs)
    }

    /// 500 with a generic message; `cause` is logged (with its chain) but never sent.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; quote the request id when reporting it",
        )
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub(crate) fn with_request_id(mut self, id: String) -> Self {
        self.request_id = Some(id);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The body for this error in the current request.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.to_string(),
                request_id: self
                    .request_id
                    .clone()
                    .or_else(request_id::current)
                    .unwrap_or_default(),
                field: self.field.as_ref().map(|f| f.to_string()),
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if let Some(id) = self
            .request_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            res.insert_header((request_id::HEADER, id));
        }
        res.json(self.body())
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => ApiError::not_found("not found"),
            // A retry took this attempt's Idempotency-Key over: that attempt's answer counts.
            DbError::Conflict {
                constraint: Some(c),
            } if c == crate::idempotency::TAKEN_OVER => crate::idempotency::in_flight(),
            DbError::Conflict { .. } => ApiError::conflict("conflicts with an existing resource"),
            DbError::Busy => ApiError::unavailable("the database is busy; retry shortly", 1),
            DbError::Unavailable(_) | DbError::Timeout => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable("the database is unavailable; retry shortly", 5)
            }
            DbError::Constraint { .. } | DbError::Query(_) | DbError::Internal { .. } => {
                ApiError::internal(&err)
            }
        }
    }
}

/// Maps a bare status (an error actix produced without our body) to a code and message.
pub(crate) fn for_status(status: StatusCode) -> ApiError {
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", "the request is malformed"),
        401 => ("unauthorized", "authentication required"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such resource"),
        405 => (
            "method_not_allowed",
            "this method is not allowed on this resource",
        ),
        406 => ("not_acceptable", "no acceptable representation"),
        408 => ("request_timeout", "the request took too long to arrive"),
        413 => ("payload_too_large", "the request body is too large"),
        414 => ("uri_too_long", "the request URI is too long"),
        415 => ("unsupported_media_type", "unsupported content type"),
        422 => ("validation_failed", "the request is not acceptable"),
        429 => ("rate_limited", "too many requests"),
        503 => ("unavailable", "temporarily unavailable"),
        s if s >= 500 => (
            "internal",
            "internal error; quote the request id when reporting it",
        ),
        _ => ("error", "the request failed"),
    };
    ApiError::new(status, code, message)
}

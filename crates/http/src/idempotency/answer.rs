//! The answer of an idempotent request, and how a handler has it stored in the same
//! transaction as the request's effect.
//!
//! A handler that changes something takes an [`IdempotencyKey`] and turns it into a
//! [`Reply`]: the function that renders the service's result as the HTTP answer. The
//! service calls [`Reply::record`] inside its transaction, so the effect and the answer a
//! retry will replay commit together; the handler then answers [`Reply::respond`], the
//! same bytes. After a crash a retry finds either both (and replays the answer) or
//! neither (and runs on a clean slate) — never an effect without its answer.
//!
//! ```ignore
//! pub async fn create(a: web::Data<Accounts>, caller: Authenticated, key: IdempotencyKey,
//!                     body: Json<NewThing>) -> Result<HttpResponse, ApiError> {
//!     let reply = key.reply(|thing: &Thing| Answer::json(StatusCode::CREATED, thing));
//!     let thing = a.create_thing(&caller.0, body.into_inner(), &reply).await?;
//!     Ok(reply.respond(&thing))
//! }
//! // in the service, last statement of the transaction:
//! reply.record(conn, &thing).await?;
//! ```

use super::claim::ClaimState;
use super::store::{self, Stored};
use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use keel_persistence::{AsyncPgConnection, DbError, DbResult};
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

/// The constraint named by the error [`Reply::record`] returns when a retry took the key
/// over while this attempt ran (its process looked dead): the transaction must roll back,
/// the retry's attempt is the one that counts.
pub const TAKEN_OVER: &str = "http_idempotency_keys_taken_over";

/// Response headers kept with an answer; all others (request ids, trace headers) belong
/// to the request that carries them.
const STORED_HEADERS: [HeaderName; 3] =
    [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER];

/// A whole response known before it is sent: what is stored and what is answered.
#[derive(Debug, Clone)]
pub struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// `status` with `value` as a JSON body.
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Self {
                    status,
                    headers,
                    body: body.into(),
                }
            }
            // A type of ours that does not serialise is a bug: a 500 (the request-id
            // middleware gives it the standard body), never stored.
            Err(err) => {
                tracing::error!(error = %err, "a reply that does not serialise");
                Self::empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// `status` with no body (204, or a 202 that has nothing to say).
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a `Location` header (the created resource).
    pub fn location(mut self, uri: &str) -> Self {
        match HeaderValue::from_str(uri) {
            Ok(value) => {
                self.headers.insert(header::LOCATION, value);
            }
            Err(err) => tracing::error!(error = %err, "a Location that is no header value"),
        }
        self
    }

    /// The response to send now.
    pub fn to_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            res.append_header((name.clone(), value.clone()));
        }
        res.body(self.body.clone())
    }

    fn stored(&self) -> Stored<'_> {
        Stored::of(self.status, &self.headers, &self.body)
    }
}

/// Extractor: this request's claim on its `Idempotency-Key`, empty when the request
/// carries none (or the route is not behind the [`super::Idempotency`] middleware).
#[derive(Clone, Default)]
pub struct IdempotencyKey(Option<Arc<ClaimState>>);

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdempotencyKey")
            .field(&self.0.as_ref().map(|c| &c.fence.key))
            .finish()
    }
}

impl IdempotencyKey {
    /// The reply of this request, rendered from the service's result by `render`.
    pub fn reply<T>(self, render: impl Fn(&T) -> Answer + Send + Sync + 'static) -> Reply<T> {
        Reply {
            claim: self.0,
            render: Box::new(render),
        }
    }
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.extensions().get::<Arc<ClaimState>>().cloned())))
    }
}

/// How a request's result becomes its answer, stored with the effect (see the module
/// docs). Record it once, in the transaction that makes the request's last change.
pub struct Reply<T> {
    claim: Option<Arc<ClaimState>>,
    render: Box<dyn Fn(&T) -> Answer + Send + Sync>,
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("keyed", &self.claim.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Reply<T> {
    /// Stores the answer for `value` on `conn`, inside the transaction of the effect.
    /// Without a key it does nothing. Fails with a [`DbError::Conflict`] naming
    /// [`TAKEN_OVER`] when a retry has taken the key over, and with
    /// [`DbError::Internal`] when the answer would not be kept (a 5xx or 429: a value that
    /// does not render): return the error so the transaction rolls back, and the change
    /// never commits without its answer.
    pub async fn record(&self, conn: &mut AsyncPgConnection, value: &T) -> DbResult<()> {
        let Some(claim) = &self.claim else {
            return Ok(());
        };
        let answer = (self.render)(value);
        if super::is_transient(answer.status) {
            return Err(DbError::internal(
                "recording an idempotent answer",
                std::io::Error::other(format!(
                    "the answer is {}, which is never kept",
                    answer.status
                )),
            ));
        }
        let fingerprint = claim.final_fingerprint();
        if !store::record(conn, &claim.fence, answer.stored(), fingerprint.as_deref()).await? {
            return Err(DbError::Conflict {
                constraint: Some(TAKEN_OVER.to_owned()),
            });
        }
        claim.mark_recorded();
        Ok(())
    }

    /// The answer for `value`, byte for byte what [`Reply::record`] stored.
    pub fn respond(&self, value: &T) -> HttpResponse {
        (self.render)(value).to_response()
    }
}

/// The kept response headers as `[[name, value], ...]`.
pub(super) fn stored_headers(headers: &HeaderMap) -> serde_json::Value {
    let pairs = STORED_HEADERS
        .iter()
        .flat_map(|name| {
            headers
                .get_all(name)
                .filter_map(|v| v.to_str().ok())
                .map(|v| serde_json::json!([name.as_str(), v]))
        })
        .collect();
    serde_json::Value::Array(pairs)
}

pub(super) fn stored_pairs(headers: Option<&serde_json::Value>) -> Vec<(HeaderName, HeaderValue)> {
    let Some(serde_json::Value::Array(pairs)) = headers else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter_map(|pair| {
            let name = HeaderName::from_bytes(pair.get(0)?.as_str()?.as_bytes()).ok()?;
            let value = HeaderValue::from_str(pair.get(1)?.as_str()?).ok()?;
            Some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_headers_round_trip_and_skip_per_request_ones() {
        let mut map = HeaderMap::new();
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        map.insert(header::LOCATION, HeaderValue::from_static("/things/1"));
        map.insert(
            HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("abc"),
        );
        let stored = stored_headers(&map);
        let pairs = stored_pairs(Some(&stored));
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].0, header::CONTENT_TYPE);
        assert_eq!(pairs[1].1, "/things/1");
    }

    #[test]
    fn an_answer_renders_its_status_headers_and_body() {
        let answer = Answer::json(StatusCode::CREATED, &serde_json::json!({ "id": 7 }))
            .location("/things/7");
        let res = answer.to_response();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "/things/7");
        assert_eq!(answer.stored().status, 201);
        assert_eq!(answer.stored().body, br#"{"id":7}"#);
    }
}

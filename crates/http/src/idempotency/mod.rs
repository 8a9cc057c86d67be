//! `Idempotency-Key` for POST requests: a retried create answers what the first attempt
//! answered instead of creating a second resource.
//!
//! Mount [`Idempotency`] on the resources (or scopes) that create things:
//!
//! ```ignore
//! cfg.service(
//!     web::resource("/exports")
//!         .wrap(keel_http::Idempotency::new(pool.clone()))
//!         .route(web::post().to(create_export)),
//! );
//! ```
//!
//! and schedule [`purge_expired`] (e.g. hourly) to delete keys past their 24 hours.
//!
//! What a client sees, for a POST with `Idempotency-Key: <1–255 printable ASCII>`:
//!
//! | situation | answer |
//! |---|---|
//! | first use of the key | the handler runs; its status, `Content-Type`, `Location`, `Retry-After` and body are kept for 24 h |
//! | same key, same request, first one finished | the kept answer, byte for byte, plus `Idempotent-Replayed: true` (no handler run) |
//! | same key, same request, first one still running | 409 `idempotency_key_in_flight`, `Retry-After: 1` |
//! | same key, different request | 422 `idempotency_key_reused` |
//! | the handler answered 5xx or 429, a middleware inside failed with an error, or the request was abandoned | nothing is kept: a retry runs again |
//! | the handler answered another 4xx | kept and replayed like a success (same request, same answer) |
//! | malformed key, or several `Idempotency-Key` headers | 400 `bad_request` |
//! | body above the buffering cap (1 MiB by default) | 413 `payload_too_large` |
//! | the key store (PostgreSQL) unavailable | 503 `unavailable`; the handler does not run unprotected |
//!
//! Requests without the header, and other methods, pass through untouched.
//!
//! **Scope.** A key belongs to one caller, method and route: the scope is the SHA-256 of
//! the `Authorization` header (or `anonymous` without one), the method, and the route
//! template (`/api/v1/orgs/{org_id}/exports`, from [`ServiceRequest::match_pattern`]; the
//! raw path when no route matches). The middleware runs before authentication, so the
//! caller is its credentials: a refreshed token starts a new scope. The template rather
//! than the path keeps one key space per endpoint; the concrete path and query are part
//! of the request fingerprint, so the same key sent to `/orgs/1/exports` and then to
//! `/orgs/2/exports` is a 422 (a reused key), never a replay of the other resource's
//! answer. Mounting the middleware app-wide also works: actix resolves the template from
//! the application's route map before routing.
//!
//! **Fingerprint.** SHA-256 over the path and query, the `Content-Type` and the body
//! bytes. A retry must send the same bytes (clients retry the serialized request, not
//! the object it came from).
//!
//! **Replays** carry the first response's body as it was, including the `request_id`
//! inside an error body; the `X-Request-Id` and `traceresponse` headers are the retry's own.
//!
//! Metrics: `keel_idempotency_requests_total{outcome="first"|"replayed"|"in_flight"|"mismatch"}`.

mod store;

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpResponse};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::TryFutureExt;
use futures::future::{Either, LocalBoxFuture, MapOk};
use keel_persistence::{DbPool, DbResult};
use sha2::{Digest, Sha256};
use std::fmt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Duration;

/// The request header carrying the key.
pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set (to `true`) on responses that replay a stored answer.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long an answer is kept and replayed; older keys count as unused.
pub const TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default cap on the request body the middleware buffers.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default time after which a claim whose request never finished (its process died) may
/// be taken over by a retry of the same request.
pub const DEFAULT_IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Response headers kept with an answer; all others (request ids, trace headers) belong
/// to the request that carries them.
const STORED_HEADERS: [HeaderName; 3] =
    [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER];

/// Deletes keys older than [`TTL`] in batches; returns how many were deleted. For a
/// periodic job: expired keys are already ignored, this only reclaims their space.
pub async fn purge_expired(pool: &DbPool) -> DbResult<usize> {
    store::purge(pool, TTL.as_secs_f64()).await
}

/// The middleware factory: `.wrap(Idempotency::new(pool))` on a resource or scope.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pool: DbPool,
    max_body_bytes: usize,
    in_flight_timeout: Duration,
}

impl Idempotency {
    /// Keys are stored through `pool`.
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            in_flight_timeout: DEFAULT_IN_FLIGHT_TIMEOUT,
        }
    }

    /// Largest request body buffered (larger ones get 413). Default 1 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// After this long, a claim still in flight is presumed abandoned (its process died)
    /// and a retry of the same request may run the handler. Keep it above the slowest
    /// handler. Default 60 s.
    pub fn in_flight_timeout(mut self, timeout: Duration) -> Self {
        self.in_flight_timeout = timeout;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for Idempotency
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = IdempotencyMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(IdempotencyMiddleware {
            service: Rc::new(service),
            config: Rc::new(self.clone()),
        }))
    }
}

/// The service [`Idempotency`] wraps around a resource or scope.
pub struct IdempotencyMiddleware<S> {
    service: Rc<S>,
    config: Rc<Idempotency>,
}

impl<S> fmt::Debug for IdempotencyMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyMiddleware")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for IdempotencyMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = Either<
        MapOk<S::Future, fn(ServiceResponse<B>) -> ServiceResponse<BoxBody>>,
        LocalBoxFuture<'static, Result<Self::Response, Self::Error>>,
    >;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // Most requests (every GET) have nothing to deduplicate: straight through,
        // without building and boxing the keyed path's future.
        let key = match req.method() {
            &Method::POST => idempotency_key(req.headers()),
            _ => None,
        };
        let Some(key) = key else {
            let boxed: fn(ServiceResponse<B>) -> ServiceResponse<BoxBody> =
                ServiceResponse::map_into_boxed_body;
            return Either::Left(self.service.call(req).map_ok(boxed));
        };
        Either::Right(Box::pin(handle(
            Rc::clone(&self.service),
            Rc::clone(&self.config),
            req,
            key,
        )))
    }
}

/// A POST with an `Idempotency-Key` header (`key`: the header, checked).
async fn handle<S, B>(
    service: Rc<S>,
    config: Rc<Idempotency>,
    mut req: ServiceRequest,
    key: Result<String, ApiError>,
) -> Result<ServiceResponse<BoxBody>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    let key = match key {
        Ok(key) => key,
        Err(err) => return Ok(req.error_response(err)),
    };
    let scope = scope_of(&req);
    let body = match read_body(&mut req, config.max_body_bytes).await {
        Ok(body) => body,
        Err(err) => return Ok(req.error_response(err)),
    };
    let request_hash = fingerprint(&req, &body);

    let claimed = store::claim(
        &config.pool,
        &scope,
        &key,
        &request_hash,
        TTL.as_secs_f64(),
        config.in_flight_timeout.as_secs_f64(),
    )
    .await;
    let claimed_at = match claimed {
        Ok(store::Claim::Owned(at)) => at,
        Ok(store::Claim::Existing(row)) => return Ok(answer_existing(req, row, &request_hash)),
        Ok(store::Claim::Contended) => {
            count("in_flight");
            return Ok(req.error_response(in_flight()));
        }
        Err(err) => {
            let err = if err.is_transient() {
                tracing::warn!(error = %err, "idempotency key store unavailable");
                ApiError::unavailable("idempotency keys are unavailable; retry shortly", 1)
            } else {
                ApiError::from(err)
            };
            return Ok(req.error_response(err));
        }
    };
    count("first");

    let mut claim = ClaimGuard {
        pool: config.pool.clone(),
        scope,
        key,
        claimed_at,
        armed: true,
    };
    req.set_payload(Payload::from(body));
    // Handler errors arrive as responses. An `Err` comes from a middleware inside this
    // one and is rendered by the layers outside, so its bytes cannot be stored: the key
    // is released and a retry is evaluated afresh. (No clone of the request may be kept
    // across the call: routing inside a scope needs the request to itself.)
    let res = match service.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            claim.release().await;
            return Err(err);
        }
    };
    let status = res.status();
    if is_transient(status) {
        claim.release().await;
        return Ok(res);
    }

    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(err) => {
            claim.release().await;
            return Err(ApiError::internal(&*err).into());
        }
    };
    claim.complete(status, head.headers(), &bytes).await;
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(BoxBody::new(bytes)),
    ))
}

/// Answers a key another request claimed: its answer, 409 while it runs, 422 when this
/// is a different request.
fn answer_existing(
    req: ServiceRequest,
    row: store::Existing,
    request_hash: &[u8],
) -> ServiceResponse<BoxBody> {
    if row.request_hash != request_hash {
        count("mismatch");
        return req.error_response(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request; \
             send a new key for a new request",
        ));
    }
    let Some(status) = row.status else {
        count("in_flight");
        return req.error_response(in_flight());
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok());
    let Some(status) = status else {
        let err = std::io::Error::other("stored idempotent response has an invalid status");
        return req.error_response(ApiError::internal(&err));
    };
    count("replayed");
    let mut res = HttpResponse::build(status);
    for (name, value) in stored_pairs(row.headers.as_ref()) {
        res.append_header((name, value));
    }
    res.insert_header((REPLAYED_HEADER, HeaderValue::from_static("true")));
    req.into_response(res.body(row.body.unwrap_or_default()))
}

fn in_flight() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_flight",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
    .retry_after(1)
}

/// 5xx and 429 say "try again later", not "this is the answer": the key is released.
fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn count(outcome: &'static str) {
    metrics::counter!("keel_idempotency_requests_total", "outcome" => outcome).increment(1);
    tracing::debug!(idempotency.outcome = outcome, "idempotency key");
}

/// The key, `None` without the header, an error when it is malformed or repeated.
fn idempotency_key(headers: &HeaderMap) -> Option<Result<String, ApiError>> {
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
fn scope_of(req: &ServiceRequest) -> String {
    let caller = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => hex::encode(Sha256::digest(value.as_bytes())),
        None => "anonymous".to_owned(),
    };
    let route = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    format!("{caller} {} {route}", req.method())
}

/// SHA-256 over the path and query, the content type and the body, each length-prefixed.
fn fingerprint(req: &ServiceRequest, body: &[u8]) -> Vec<u8> {
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
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
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

/// The kept response headers as `[[name, value], ...]`.
fn stored_headers(headers: &HeaderMap) -> serde_json::Value {
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

fn stored_pairs(headers: Option<&serde_json::Value>) -> Vec<(HeaderName, HeaderValue)> {
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

/// The claim of a running request. Completing or releasing it disarms it; dropped while
/// armed (the request was cancelled: client gone, server stopping), it releases the key
/// in the background so a retry is not refused until the in-flight timeout.
struct ClaimGuard {
    pool: DbPool,
    scope: String,
    key: String,
    claimed_at: DateTime<Utc>,
    armed: bool,
}

impl ClaimGuard {
    async fn complete(&mut self, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        self.armed = false;
        let status = i16::try_from(status.as_u16()).unwrap_or(i16::MAX);
        let stored = store::complete(
            &self.pool,
            &self.scope,
            &self.key,
            self.claimed_at,
            status,
            stored_headers(headers),
            body,
        )
        .await;
        match stored {
            Ok(true) => {}
            // Left in flight, the key is refused (409) until the in-flight timeout, then
            // a retry runs again: the best that can be done without the answer stored.
            Ok(false) => tracing::warn!("idempotency claim was taken over before it completed"),
            Err(err) => tracing::error!(error = %err, "could not store the idempotent response"),
        }
    }

    async fn release(&mut self) {
        self.armed = false;
        release(&self.pool, &self.scope, &self.key, self.claimed_at).await;
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        let scope = std::mem::take(&mut self.scope);
        let key = std::mem::take(&mut self.key);
        let claimed_at = self.claimed_at;
        runtime.spawn(async move { release(&pool, &scope, &key, claimed_at).await });
    }
}

async fn release(pool: &DbPool, scope: &str, key: &str, claimed_at: DateTime<Utc>) {
    if let Err(err) = store::release(pool, scope, key, claimed_at).await {
        tracing::warn!(error = %err, "could not release an idempotency key");
    }
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

//! `Idempotency-Key` for POST requests: a retried create answers what the first attempt
//! answered instead of creating a second resource — also when the server died in the
//! middle of the first attempt.
//!
//! Mount [`Idempotency`] on the resources (or scopes) that create things, have each
//! handler that changes something record its answer in the transaction of its change
//! ([`IdempotencyKey`] → [`Reply`], see [`answer`]), and schedule [`purge_expired`]
//! (e.g. hourly) to delete keys past their 24 hours:
//!
//! ```ignore
//! cfg.service(
//!     web::resource("/exports")
//!         .wrap(keel_http::Idempotency::new(pool.clone()))
//!         .route(web::post().to(create_export)),
//! );
//! ```
//!
//! What a client sees, for a POST with `Idempotency-Key: <1–255 printable ASCII>`:
//!
//! | situation | answer |
//! |---|---|
//! | first use of the key | the handler runs; its status, `Content-Type`, `Location`, `Retry-After` and body are kept for 24 h |
//! | same key, same request, first one finished | the kept answer, byte for byte, plus `Idempotent-Replayed: true` (no handler run) |
//! | same key, same request, first one still running | 409 `idempotency_key_in_flight`, `Retry-After: 1` |
//! | same key, same request, first one's process died | if its change committed, its answer committed with it and is replayed; if not, after the in-flight timeout (10 s by default) without a sign of life from the first attempt, the handler runs on a clean slate |
//! | same key, different request | 422 `idempotency_key_reused` |
//! | the handler answered 5xx or 429, a middleware inside failed with an error, or the request was abandoned before its change committed | nothing is kept: a retry runs again |
//! | the handler answered another 4xx | kept and replayed like a success (same request, same answer) |
//! | malformed key, or several `Idempotency-Key` headers | 400 `bad_request` |
//! | body above the buffering cap (1 MiB by default) | 413 `payload_too_large` |
//! | the key store (PostgreSQL) unavailable | 503 `unavailable`; the handler does not run unprotected |
//!
//! Requests without the header, and other methods, pass through untouched.
//!
//! **Crash safety** (Stripe's "atomic phases"; zero-to-production's idempotency module).
//! The key is claimed in a statement of its own, so duplicates get their 409 without
//! holding a connection. The answer is stored by the handler's own transaction, the one
//! that makes its change ([`Reply::record`]): the change and the answer commit together
//! or not at all. While the handler runs, the claim's `alive_at` is refreshed every
//! quarter of the in-flight timeout; a retry takes over a claim that has no answer and no
//! recent sign of life. Every write of an attempt is fenced by its claim's `created_at`,
//! so an attempt whose claim was taken over cannot commit its change any more: after a
//! crash a retry replays the stored answer or runs on a clean slate, never both. Handlers
//! whose answer comes with no change (a refusal) have it stored by the middleware after
//! they return, and so do the few routes whose change is the same however often it is
//! made (mark read, read all, unsubscribe): for those a second run changes nothing.
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
//!
//! [`ServiceRequest::match_pattern`]: actix_web::dev::ServiceRequest::match_pattern

pub mod answer;
mod claim;
mod middleware;
mod request;
mod store;
mod streamed;

pub use answer::{Answer, IdempotencyKey, Reply, TAKEN_OVER};
pub use middleware::IdempotencyMiddleware;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use keel_persistence::{DbPool, DbResult};
use std::time::Duration;

/// The request header carrying the key.
pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set (to `true`) on responses that replay a stored answer.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long an answer is kept and replayed; older keys count as unused.
pub const TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default cap on the request body the middleware buffers.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default time without a sign of life after which a claim whose request never finished
/// (its process died) may be taken over by a retry of the same request.
pub const DEFAULT_IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

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
    /// Route templates whose body is streamed to the handler, never buffered.
    streamed: std::sync::Arc<[String]>,
}

impl Idempotency {
    /// Keys are stored through `pool`.
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            in_flight_timeout: DEFAULT_IN_FLIGHT_TIMEOUT,
            streamed: std::sync::Arc::from([]),
        }
    }

    /// Routes (templates as matched: `/api/v1/orgs/{org_id}/uploads`) whose body is
    /// streamed to the handler instead of buffered: files of any size. The key is claimed
    /// on the request's head; the body is hashed as the handler reads it; a retry is
    /// read to its end and compared by that digest before its answer is replayed.
    pub fn streamed(mut self, routes: impl IntoIterator<Item = String>) -> Self {
        self.streamed = routes.into_iter().collect();
        self
    }

    fn is_streamed(&self, route: Option<&str>) -> bool {
        route.is_some_and(|route| self.streamed.iter().any(|r| r == route))
    }

    /// Largest request body buffered (larger ones get 413). Default 1 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// After this long without a sign of life (a running attempt refreshes its claim
    /// four times per period), a claim with no answer is presumed abandoned (its process
    /// died) and a retry of the same request may run the handler. Default 10 s.
    pub fn in_flight_timeout(mut self, timeout: Duration) -> Self {
        self.in_flight_timeout = timeout;
        self
    }

    fn heartbeat_interval(&self) -> Duration {
        (self.in_flight_timeout / 4).max(Duration::from_millis(50))
    }
}

/// 5xx and 429 say "try again later", not "this is the answer": never kept.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// 409 `idempotency_key_in_flight`: another attempt of this request holds the key (or
/// took it over from this one); retry shortly and get its answer.
pub(crate) fn in_flight() -> crate::ApiError {
    crate::ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_flight",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
    .retry_after(1)
}

fn count(outcome: &'static str) {
    metrics::counter!("keel_idempotency_requests_total", "outcome" => outcome).increment(1);
    tracing::debug!(idempotency.outcome = outcome, "idempotency key");
}

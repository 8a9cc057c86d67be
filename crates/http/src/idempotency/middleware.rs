//! The actix middleware: claims the key, runs the handler (with a heartbeat), and
//! stores, replays or releases.

use super::Idempotency;
use super::answer::stored_pairs;
use super::claim::{ClaimGuard, ClaimState};
use super::request::{fingerprint, idempotency_key, read_body, scope_of};
use super::store::{self, Fence};
use super::streamed::{self, StreamedBody};
use super::{REPLAYED_HEADER, TTL, count, in_flight, is_transient};
use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpMessage, HttpResponse};
use futures::TryFutureExt;
use futures::future::{Either, LocalBoxFuture, MapOk};
use std::fmt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

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
    // A streamed route is claimed on its head; its body is hashed while the handler
    // reads it. Any other body is buffered (up to the cap) and hashed first.
    let (body, streamed) = if config.is_streamed(req.match_pattern().as_deref()) {
        let head = fingerprint(&req, &[]);
        (None, Some(Arc::new(StreamedBody::new(head))))
    } else {
        match read_body(&mut req, config.max_body_bytes).await {
            Ok(body) => (Some(body), None),
            Err(err) => return Ok(req.error_response(err)),
        }
    };
    let request_hash = fingerprint(&req, body.as_deref().unwrap_or_default());

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
        Ok(store::Claim::Existing(row)) if streamed.is_some() => {
            return Ok(answer_existing_streamed(req, row, &request_hash).await);
        }
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

    let state = Arc::new(ClaimState::new(
        Fence {
            scope,
            key,
            claimed_at,
        },
        streamed.clone(),
    ));
    let mut claim = ClaimGuard::new(config.pool.clone(), Arc::clone(&state));
    req.extensions_mut().insert(Arc::clone(&state));
    match (body, streamed) {
        (Some(body), _) => req.set_payload(Payload::from(body)),
        (None, Some(streamed)) => {
            let length = req
                .headers()
                .get(actix_web::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let payload = req.take_payload();
            req.set_payload(streamed::hashing(payload, streamed, length));
        }
        (None, None) => {}
    }
    // Handler errors arrive as responses. An `Err` comes from a middleware inside this
    // one and is rendered by the layers outside, so its bytes cannot be stored: the key
    // is released and a retry is evaluated afresh. (No clone of the request may be kept
    // across the call: routing inside a scope needs the request to itself.)
    let called = claim
        .beating(config.heartbeat_interval(), service.call(req))
        .await;
    let res = match called {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            claim.release().await;
            return Err(err);
        }
    };
    let status = res.status();
    // The handler's transaction stored this answer with its effect.
    if state.recorded() && (status.is_success() || status.is_redirection()) {
        claim.disarm();
        return Ok(res);
    }
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

/// [`answer_existing`] for a streamed route, whose stored fingerprint covers the body
/// once the first request finished: this one's body is read to its end and hashed to
/// compare. (An answer kept with the head's fingerprint alone — a refusal that read no
/// body, recorded by a handler that stopped reading before the end — is replayed on
/// the head; refusals after a partial read are not kept at all, see `ClaimGuard::complete`.)
async fn answer_existing_streamed(
    mut req: ServiceRequest,
    row: store::Existing,
    head: &[u8],
) -> ServiceResponse<BoxBody> {
    if row.status.is_none() || row.request_hash == head {
        return answer_existing(req, row, head);
    }
    match streamed::digest_of(req.take_payload()).await {
        Ok(digest) => {
            let whole = streamed::combine(head, &digest);
            answer_existing(req, row, &whole)
        }
        Err(e) => req.error_response(ApiError::bad_request(format!(
            "could not read the body: {e}"
        ))),
    }
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

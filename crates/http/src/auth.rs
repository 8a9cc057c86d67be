//! Where the authenticated caller comes from.
//!
//! Handlers take [`Authenticated`] as an argument; it reads `Authorization: Bearer ...`
//! and asks the [`Authenticator`] registered as app data (the accounts domain provides
//! it; the binary registers it). With none registered every authenticated route
//! answers 401, so a route can never be open by accident.
//!
//! A request's token is checked at most once: the rate limiter needs to know whether
//! the credential is valid before it decides what to count ([`credential_of`]), and the
//! extractor then takes that outcome, caller or error.

pub use crate::caller::Caller;
use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures::future::{BoxFuture, LocalBoxFuture};
use std::sync::Arc;

/// Resolves a bearer token to a caller (or a 401/429/503 error).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, ApiError>>;
}

/// The app data slot an [`Authenticator`] is registered in.
pub type AuthenticatorData = web::Data<Arc<dyn Authenticator>>;

/// Extractor: the authenticated caller of this request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(Checked(checked)) = req.extensions_mut().remove::<Checked>() {
            return Box::pin(std::future::ready(checked.map(Authenticated)));
        }
        let token = bearer(req);
        let authenticator = req.app_data::<AuthenticatorData>().cloned();
        Box::pin(async move {
            let token = token.ok_or_else(|| {
                ApiError::unauthorized("send credentials as Authorization: Bearer <token>")
            })?;
            let authenticator = authenticator
                .ok_or_else(|| ApiError::unauthorized("authentication is not available"))?;
            authenticator.authenticate(&token).await.map(Authenticated)
        })
    }
}

/// The outcome of checking a request's bearer token, kept in the request's extensions
/// by [`credential_of`] and taken by the [`Authenticated`] extractor: valid or not, a
/// token is looked up once per request.
struct Checked(Result<Caller, ApiError>);

/// The credential (session or API key id) of a request whose bearer token is valid;
/// `None` without a token, with an invalid one, or when it cannot be checked now. The
/// outcome, caller or error, is what the request's [`Authenticated`] extractor returns.
pub async fn credential_of(req: &HttpRequest) -> Option<uuid::Uuid> {
    let token = bearer(req)?;
    let authenticator = req.app_data::<AuthenticatorData>()?.clone();
    let checked = authenticator.authenticate(&token).await;
    let credential = checked.as_ref().ok().map(Caller::credential_id);
    req.extensions_mut().insert(Checked(checked));
    credential
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

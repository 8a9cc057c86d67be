//! Where the authenticated caller comes from.
//!
//! Handlers take [`Authenticated`] as an argument; it reads `Authorization: Bearer ...`
//! and asks the [`Authenticator`] registered as app data (the accounts domain provides
//! it; the binary registers it). With none registered every authenticated route
//! answers 401, so a route can never be open by accident.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::{BoxFuture, LocalBoxFuture};
use std::sync::Arc;
use uuid::Uuid;

/// Who is calling and for which organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user, for a session token or a key created by a user.
    pub user_id: Option<Uuid>,
    /// The API key, when the caller authenticated with one.
    pub api_key_id: Option<Uuid>,
    /// The session, when the caller authenticated with a session token.
    pub session_id: Option<Uuid>,
    /// The organization (tenant) the credentials act for.
    pub org_id: Option<Uuid>,
    /// Role in that organization (`owner`, `admin`, `member`).
    pub role: Option<String>,
    /// What an API key may do (`exports:read`, ...); empty for sessions (role decides).
    pub scopes: Vec<String>,
}

impl Caller {
    /// Whether an API-key caller holds `domain:read` (or `domain:write` when `write`;
    /// write implies read).
    pub fn has_scope(&self, domain: &str, write: bool) -> bool {
        self.api_key_id.is_some()
            && self.scopes.iter().any(|s| match s.split_once(':') {
                Some((d, "write")) => d == domain,
                Some((d, "read")) => d == domain && !write,
                _ => false,
            })
    }

    /// Whether the caller is a user with a role in its organization (any role).
    pub fn is_member(&self) -> bool {
        self.user_id.is_some() && self.role.is_some()
    }

    /// Whether a user caller is an owner or admin of its organization.
    pub fn is_admin(&self) -> bool {
        self.user_id.is_some() && matches!(self.role.as_deref(), Some("owner" | "admin"))
    }

    /// `org_id` when it is the caller's organization; otherwise 404, exactly like an
    /// organization that does not exist (no probing of other tenants).
    pub fn in_org(&self, org_id: Uuid) -> Result<Uuid, ApiError> {
        match self.org_id {
            Some(own) if own == org_id => Ok(own),
            _ => Err(ApiError::not_found("not found")),
        }
    }
}

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

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

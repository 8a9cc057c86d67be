//! The signed-in operator, as an extractor: pages and forms take an [`Operator`] and get
//! the sign-in redirect without one. Forms also prove they came from a console page:
//! their CSRF token must be the session's, and a browser's `Origin`, when sent, must be
//! this host.

use crate::Console;
use crate::audit::Actor;
use crate::error::OpsError;
use crate::session::{COOKIE, Session};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::{Ready, ready};

#[derive(Debug, Clone)]
pub struct Operator {
    pub session: Session,
    /// The token every form of the page carries.
    pub csrf: String,
    pub actor: Actor,
}

impl Operator {
    /// Checks a submitted form's CSRF token.
    pub fn check(&self, console: &Console, given: &str) -> Result<(), OpsError> {
        if console.inner.sessions.csrf_matches(&self.session, given) {
            Ok(())
        } else {
            Err(OpsError::Forbidden(
                "this form is stale or did not come from the console: reload the page and try again",
            ))
        }
    }
}

/// The session cookie's value in `req`, if any.
pub fn cookie(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("cookie")?.to_str().ok()?;
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then(|| value.to_owned())
    })
}

/// Where the request comes from, as the audit log records it.
pub fn actor_of(req: &HttpRequest, session_id: &str) -> Actor {
    Actor {
        session_id: session_id.to_owned(),
        ip: keel_http::client_address::of(req).map(|ip| ip.to_string()),
    }
}

/// A cross-site form post: its `Origin` names neither the host it was sent to nor the
/// deployment's public origin (`mail.public_url`, for a proxy that rewrites `Host`).
pub(crate) fn foreign_origin(req: &HttpRequest, console: &Console) -> bool {
    let Some(origin) = req.headers().get("origin").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let same_host = origin.split_once("://").map(|(_, h)| h) == Some(host);
    !same_host && console.inner.public_origin.as_deref() != Some(origin)
}

impl FromRequest for Operator {
    type Error = OpsError;
    type Future = Ready<Result<Self, OpsError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let console = req
                .app_data::<web::Data<Console>>()
                .ok_or(OpsError::NotFound("the console is not enabled"))?;
            if req.method() == actix_web::http::Method::POST && foreign_origin(req, console) {
                return Err(OpsError::Forbidden("a form from another site"));
            }
            let now = chrono::Utc::now().timestamp();
            let session = cookie(req)
                .and_then(|value| console.inner.sessions.open(&value, now))
                .ok_or(OpsError::SignIn)?;
            Ok(Operator {
                csrf: console.inner.sessions.csrf(&session),
                actor: actor_of(req, &session.id),
                session,
            })
        })())
    }
}

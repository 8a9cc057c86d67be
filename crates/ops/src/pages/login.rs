//! Signing in with the admin token, and out.

use super::{back, secured};
use crate::Console;
use crate::audit::{self, Action};
use crate::error::OpsError;
use crate::operator::{Operator, actor_of};
use crate::session::Sessions;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use std::time::Duration;

/// A wrong token costs this long: guessing stays slow even from many connections' worth
/// of patience (the token has at least 16 characters besides).
const REFUSAL_DELAY: Duration = Duration::from_millis(500);

fn page(
    console: &Console,
    error: Option<&str>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, OpsError> {
    let html = console
        .inner
        .templates
        .get_template("login.html")?
        .render(minijinja::context! { error })?;
    Ok(secured(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[get("/ops/login")]
pub async fn login_page(console: web::Data<Console>) -> Result<HttpResponse, OpsError> {
    page(&console, None, actix_web::http::StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
}

#[post("/ops/login")]
pub async fn sign_in(
    req: HttpRequest,
    console: web::Data<Console>,
    form: web::Form<SignIn>,
) -> Result<HttpResponse, OpsError> {
    if crate::operator::foreign_origin(&req, &console) {
        return Err(OpsError::Forbidden("a sign-in from another site"));
    }
    let sessions: &Sessions = &console.inner.sessions;
    if !sessions.token_matches(form.token.trim()) {
        let actor = actor_of(&req, "-");
        let minute = chrono::Utc::now().timestamp() / 60;
        if console.first_refusal(actor.ip.as_deref().unwrap_or("-"), minute) {
            audit::record(
                &console.inner.pool,
                &actor,
                Action::SignInRefused,
                None,
                serde_json::json!({"note": "the first refusal of this address this minute"}),
            )
            .await?;
        }
        tokio::time::sleep(REFUSAL_DELAY).await;
        return page(
            &console,
            Some("That is not the admin token."),
            actix_web::http::StatusCode::UNAUTHORIZED,
        );
    }
    let (session, signed) = sessions.issue(chrono::Utc::now().timestamp());
    audit::record(
        &console.inner.pool,
        &actor_of(&req, &session.id),
        Action::SignedIn,
        None,
        serde_json::json!({"expires": session.expires}),
    )
    .await?;
    let mut res = back("/ops");
    if let Ok(cookie) = actix_web::http::header::HeaderValue::from_str(&sessions.cookie(&signed)) {
        res.headers_mut()
            .insert(actix_web::http::header::SET_COOKIE, cookie);
    }
    Ok(res)
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    csrf: String,
}

#[post("/ops/logout")]
pub async fn sign_out(
    console: web::Data<Console>,
    operator: Operator,
    form: web::Form<SignOut>,
) -> Result<HttpResponse, OpsError> {
    operator.check(&console, &form.csrf)?;
    audit::record(
        &console.inner.pool,
        &operator.actor,
        Action::SignedOut,
        None,
        serde_json::json!({}),
    )
    .await?;
    let mut res = back("/ops/login");
    if let Ok(cookie) = actix_web::http::header::HeaderValue::from_str(&Sessions::cleared()) {
        res.headers_mut()
            .insert(actix_web::http::header::SET_COOKIE, cookie);
    }
    Ok(res)
}

//! The accounts routes under `/api/v1`. Handlers parse input, call one service method and
//! map the result; request bodies reject unknown fields, so no request can set `org_id`,
//! `role` or ownership implicitly (mass assignment).

use crate::repo::Profile;
use crate::service::Accounts;
use crate::sessions::SessionToken;
use crate::signup::NewSignup;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use keel_http::{Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

mod api_keys;
mod openapi;
mod orgs;

pub use openapi::AccountsApi;

/// Static paths first: actix tries routes in registration order, and the hot `/me` should
/// not be matched against every `/orgs/{org_id}/...` pattern first.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me)
        .service(signup)
        .service(verify_email)
        .service(login)
        .service(logout)
        .service(change_password)
        .service(request_reset)
        .service(confirm_reset)
        .service(update_me);
    cfg.configure(api_keys::configure)
        .configure(orgs::configure);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub organization_name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub message: &'static str,
}

/// `202 Accepted` with `message`: what signup and reset requests answer, whatever happened.
fn accepted(message: &'static str) -> Answer {
    Answer::json(
        StatusCode::ACCEPTED,
        &Accepted {
            status: "accepted",
            message,
        },
    )
}

/// Creates an account and its organization, or tells the owner of an existing address
/// by email. The answer is the same either way.
#[utoipa::path(tag = "accounts", request_body = SignupBody,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/signup")]
pub async fn signup(
    accounts: web::Data<Accounts>,
    body: Json<SignupBody>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let reply = key.reply(|_: &()| accepted("check your inbox to continue"));
    let signup = NewSignup {
        email: &b.email,
        password: &b.password,
        name: &b.name,
        organization_name: &b.organization_name,
    };
    accounts.signup(signup, &reply).await?;
    Ok(reply.respond(&()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifiedSession<'a> {
    pub token: &'a str,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub user: &'a Profile,
}

/// Confirms an email address with the token from the verification email and logs in.
#[utoipa::path(tag = "accounts", request_body = TokenBody,
    responses((status = 200, body = VerifiedSession), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/email-verifications")]
pub async fn verify_email(
    accounts: web::Data<Accounts>,
    body: Json<TokenBody>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let reply = key.reply(|(session, user): &(SessionToken, Profile)| {
        Answer::json(
            StatusCode::OK,
            &VerifiedSession {
                token: &session.token,
                expires_at: session.expires_at,
                user,
            },
        )
    });
    let verified = accounts.verify_email(&body.0.token, &reply).await?;
    Ok(reply.respond(&verified))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    pub password: String,
    /// Which of the user's organizations the session acts for (default: the first joined).
    pub organization_id: Option<uuid::Uuid>,
}

/// Logs in. Wrong email and wrong password give the same 401 in the same time.
#[utoipa::path(tag = "accounts", request_body = LoginBody,
    responses((status = 201, body = SessionToken), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "correct password, email not verified"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[post("/sessions")]
pub async fn login(
    req: HttpRequest,
    accounts: web::Data<Accounts>,
    body: Json<LoginBody>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let ip = keel_http::client_address::of(&req).map(|addr| addr.to_string());
    let b = body.into_inner();
    let reply = key.reply(|session: &SessionToken| Answer::json(StatusCode::CREATED, session));
    let session = accounts
        .login(
            &b.email,
            &b.password,
            b.organization_id,
            ip.as_deref(),
            &reply,
        )
        .await?;
    Ok(reply.respond(&session))
}

/// Logs out: the session token stops working at once, on every instance.
#[utoipa::path(tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[delete("/sessions/current")]
pub async fn logout(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let session = caller
        .0
        .user()
        .ok_or_else(|| ApiError::bad_request("not a session token"))?;
    accounts.logout(session.session_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn ids(caller: &Authenticated) -> Result<(uuid::Uuid, uuid::Uuid), ApiError> {
    match caller.0.user() {
        Some(user) => Ok((user.user_id, user.org_id)),
        None => Err(ApiError::forbidden(
            "this credential does not belong to a user",
        )),
    }
}

/// Who the credential is (a user or an API key) and which organization it acts for.
#[utoipa::path(tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = crate::service::Me), (status = 401, body = ErrorBody)))]
#[get("/me")]
pub async fn me(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(accounts.me(&caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
}

/// Changes the caller's name. Other fields cannot be set here.
#[utoipa::path(tag = "accounts", security(("bearer" = [])), request_body = UpdateMe,
    responses((status = 200, body = crate::service::Me), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "not a user's session"), (status = 422, body = ErrorBody)))]
#[patch("/me")]
pub async fn update_me(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    body: Json<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let (user, org) = ids(&caller)?;
    accounts.rename(user, org, &body.0.name).await?;
    Ok(HttpResponse::Ok().json(accounts.me(&caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Changes the password; every other session of the user ends at once.
#[utoipa::path(tag = "accounts", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/me/password")]
pub async fn change_password(
    accounts: web::Data<Accounts>,
    caller: Authenticated,
    body: Json<ChangePassword>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let reply = key.reply(|_: &()| Answer::empty(StatusCode::NO_CONTENT));
    accounts
        .change_password(&caller.0, &b.current_password, &b.new_password, &reply)
        .await?;
    Ok(reply.respond(&()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// Sends a reset link, in the background, when the address has an account: 202 either
/// way, in the same time (422 only for an address that is not one).
#[utoipa::path(tag = "accounts", request_body = ResetRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/password-resets")]
pub async fn request_reset(
    accounts: web::Data<Accounts>,
    body: Json<ResetRequest>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let reply = key.reply(|_: &()| accepted("if the address has an account, a link is on its way"));
    accounts
        .request_password_reset(&body.0.email, &reply)
        .await?;
    Ok(reply.respond(&()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Sets a new password with the emailed token; every session of the user ends.
#[utoipa::path(tag = "accounts", request_body = ResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/password-resets/confirm")]
pub async fn confirm_reset(
    accounts: web::Data<Accounts>,
    body: Json<ResetConfirm>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let reply = key.reply(|_: &()| Answer::empty(StatusCode::NO_CONTENT));
    accounts
        .confirm_password_reset(&b.token, &b.new_password, &reply)
        .await?;
    Ok(reply.respond(&()))
}

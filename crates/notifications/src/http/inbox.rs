//! `/notifications`, `/me/notification-preferences`, `/unsubscribe`.

use super::reader;
use crate::Notifications;
use crate::inbox::Notification;
use crate::preferences::Preferences;
use actix_web::{HttpResponse, get, post, put, web};
use keel_http::{ApiError, Authenticated, ErrorBody, Json, PageQuery, Paginated};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_notifications)
        .service(unread_count)
        .service(read_all)
        .service(read_notification)
        .service(get_preferences)
        .service(set_preferences)
        .service(unsubscribe_page)
        .service(unsubscribe);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only unread notifications.
    #[serde(default)]
    pub unread: bool,
    /// Items per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The caller's notifications in this organization, newest first.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Paginated<Notification>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[get("/notifications")]
pub async fn list_notifications(
    n: web::Data<Notifications>,
    caller: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let reader = reader(&caller)?;
    let q = query.into_inner();
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse()?;
    Ok(HttpResponse::Ok().json(n.list(reader, q.unread, &page).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    pub count: i64,
}

/// How many notifications are unread; cheap enough to poll (served from cache).
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = UnreadCount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[get("/notifications/unread-count")]
pub async fn unread_count(
    n: web::Data<Notifications>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let count = n.unread_count(reader(&caller)?).await?;
    Ok(HttpResponse::Ok().json(UnreadCount { count }))
}

/// Marks one notification read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/notifications/{id}/read")]
pub async fn read_notification(
    n: web::Data<Notifications>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    n.mark_read(reader(&caller)?, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadAll {
    /// How many were unread.
    pub marked: usize,
}

/// Marks every notification of the caller in this organization read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = ReadAll), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[post("/notifications/read-all")]
pub async fn read_all(
    n: web::Data<Notifications>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let marked = n.mark_all_read(reader(&caller)?).await?;
    Ok(HttpResponse::Ok().json(ReadAll { marked }))
}

/// The caller's choices of channel per event type; anything not listed is on.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Preferences), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[get("/me/notification-preferences")]
pub async fn get_preferences(
    n: web::Data<Notifications>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let reader = reader(&caller)?;
    Ok(HttpResponse::Ok().json(n.preferences(reader.user_id).await?))
}

/// Sets the listed choices (`{"preferences": [{"event_type", "channel", "enabled"}]}`);
/// others are kept. All or nothing: one bad entry changes nothing.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[put("/me/notification-preferences")]
pub async fn set_preferences(
    n: web::Data<Notifications>,
    caller: Authenticated,
    body: Json<Preferences>,
) -> Result<HttpResponse, ApiError> {
    let reader = reader(&caller)?;
    Ok(HttpResponse::Ok().json(
        n.set_preferences(reader.user_id, body.0.preferences)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeQuery {
    /// The token of the link in the email.
    pub token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unsubscribed {
    /// The event type whose emails stop.
    pub event_type: String,
    pub channel: &'static str,
    pub enabled: bool,
}

/// The link in notification emails: a small page whose button unsubscribes. A GET
/// changes nothing, because mail scanners and link previews follow links; the button
/// (and mail clients' one-click unsubscribe, RFC 8058) POST to the same URL.
#[utoipa::path(tag = "notifications", params(UnsubscribeQuery),
    responses((status = 200, description = "An HTML page with the unsubscribe button", content_type = "text/html"),
              (status = 400, body = ErrorBody)))]
#[get("/unsubscribe")]
pub async fn unsubscribe_page(
    n: web::Data<Notifications>,
    query: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, ApiError> {
    let event_type = n.check_unsubscribe(&query.token)?;
    // The token is base64url and the event type `[a-z0-9_.]`: nothing to escape.
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\">\
         <p>Stop emails about <strong>{event_type}</strong>? In-app notifications stay on; \
         you can change both in your notification settings.</p>\
         <form method=\"post\" action=\"?token={token}\"><button type=\"submit\">Unsubscribe</button></form>\
         </body></html>",
        token = query.token
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}

/// Turns emails of the link's event type off, without logging in (the token is signed).
#[utoipa::path(tag = "notifications", params(UnsubscribeQuery),
    responses((status = 200, body = Unsubscribed), (status = 400, body = ErrorBody)))]
#[post("/unsubscribe")]
pub async fn unsubscribe(
    n: web::Data<Notifications>,
    query: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, ApiError> {
    let event_type = n.unsubscribe(&query.token).await?;
    Ok(HttpResponse::Ok().json(Unsubscribed {
        event_type,
        channel: "email",
        enabled: false,
    }))
}

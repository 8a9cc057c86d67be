//! `/orgs/{org_id}/webhooks`: endpoints, their delivery log, redelivery and tests.

use super::org_access;
use crate::Notifications;
use crate::webhooks::deliveries::Delivery;
use crate::webhooks::endpoints::{Endpoint, EndpointChanges, EndpointWithSecret, NewEndpoint};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use keel_http::{
    Access, Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json, PageQuery, Paginated,
};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_webhook)
        .service(list_webhooks)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(rotate_webhook_secret)
        .service(test_webhook)
        .service(list_deliveries)
        .service(redeliver);
}

/// Adds an endpoint. The answer carries the signing secret, shown this once.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), request_body = NewEndpoint,
    responses((status = 201, body = EndpointWithSecret), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/orgs/{org_id}/webhooks")]
pub async fn create_webhook(
    n: web::Data<Notifications>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<NewEndpoint>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Write)?;
    let reply =
        key.reply(|created: &EndpointWithSecret| Answer::json(StatusCode::CREATED, created));
    let created = n.create_endpoint(org_id, body.0, &reply).await?;
    Ok(reply.respond(&created))
}

/// The organization's endpoints (without secrets), oldest first.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paginated<Endpoint>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/orgs/{org_id}/webhooks")]
pub async fn list_webhooks(
    n: web::Data<Notifications>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let org_id = org_access(&caller.0, *org_id, Access::Read)?;
    Ok(HttpResponse::Ok().json(n.endpoints(org_id, &query.parse()?).await?))
}

/// One endpoint (without its secret).
#[utoipa::path(tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[get("/orgs/{org_id}/webhooks/{id}")]
pub async fn get_webhook(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    Ok(HttpResponse::Ok().json(n.endpoint(org_id, id).await?))
}

/// Changes the URL, description or event types; `enabled` pauses or re-enables it.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])),
    request_body = EndpointChanges,
    responses((status = 200, body = Endpoint), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/orgs/{org_id}/webhooks/{id}")]
pub async fn update_webhook(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<EndpointChanges>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    Ok(HttpResponse::Ok().json(n.update_endpoint(org_id, id, body.0).await?))
}

/// Deletes the endpoint and its delivery log.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/orgs/{org_id}/webhooks/{id}")]
pub async fn delete_webhook(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    n.delete_endpoint(org_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once; the old one keeps signing too for
/// `webhooks.secret_overlap_hours` (see `previous_secret_expires_at`).
#[utoipa::path(tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = EndpointWithSecret), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[post("/orgs/{org_id}/webhooks/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    let reply = key.reply(|rotated: &EndpointWithSecret| Answer::json(StatusCode::OK, rotated));
    let rotated = n.rotate_secret(org_id, id, &reply).await?;
    Ok(reply.respond(&rotated))
}

/// Queues a `webhook.test` delivery to this endpoint; follow it in the delivery log.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])),
    responses((status = 202, body = Delivery), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/orgs/{org_id}/webhooks/{id}/test")]
pub async fn test_webhook(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    let reply = key.reply(queued);
    let delivery = n.test_delivery(org_id, id, &reply).await?;
    Ok(reply.respond(&delivery))
}

/// The endpoint's deliveries, newest first: status, attempts, last response code,
/// latency and error.
#[utoipa::path(tag = "webhooks", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Paginated<Delivery>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/orgs/{org_id}/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Read)?;
    Ok(HttpResponse::Ok().json(n.deliveries(org_id, id, &query.parse()?).await?))
}

/// Sends a delivered or failed delivery again (same delivery id, same body); 409 while it
/// is still being attempted.
#[utoipa::path(tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 202, body = Delivery), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/orgs/{org_id}/webhooks/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    n: web::Data<Notifications>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid, Uuid)>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let (org_id, id, delivery_id) = path.into_inner();
    let org_id = org_access(&caller.0, org_id, Access::Write)?;
    let reply = key.reply(queued);
    let delivery = n.redeliver(org_id, id, delivery_id, &reply).await?;
    Ok(reply.respond(&delivery))
}

/// `202 Accepted` with the delivery a job will attempt.
fn queued(delivery: &Delivery) -> Answer {
    Answer::json(StatusCode::ACCEPTED, delivery)
}

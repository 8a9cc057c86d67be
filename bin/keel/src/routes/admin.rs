//! Operator endpoints for the job queue, under `/admin`, behind the admin bearer token
//! (`KEEL__ADMIN__TOKEN`). Without a configured token they do not exist (404).

use crate::platform::Platform;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use keel_http::{ApiError, ErrorBody, PageQuery, Paginated};
use keel_queue::{JobStatus, KindCounts};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// What every admin route's path starts with.
pub const PREFIX: &str = "/admin/";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(counts)
        .service(dead)
        .service(status)
        .service(retry);
}

fn authorize(req: &HttpRequest, platform: &Platform) -> Result<(), ApiError> {
    let Some(expected) = platform.settings.admin.token() else {
        return Err(keel_http::ApiError::not_found("no route matches this path"));
    };
    if super::bearer_is(req, expected) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("admin token required"))
    }
}

/// Backlog by job kind: ready, scheduled, running and dead counts, and the age of the
/// oldest ready job.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = [KindCounts]), (status = 401, body = ErrorBody)))]
#[get("/admin/jobs/counts")]
async fn counts(req: HttpRequest, platform: web::Data<Platform>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &platform)?;
    Ok(HttpResponse::Ok().json(platform.queue.counts().await?))
}

/// Dead jobs, most recent first, keyset-paginated.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(PageQuery),
    responses((status = 200, body = Paginated<JobStatus>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/admin/jobs/dead")]
async fn dead(
    req: HttpRequest,
    platform: web::Data<Platform>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &platform)?;
    let page = query.parse::<(DateTime<Utc>, Uuid)>()?;
    let rows = platform
        .queue
        .dead_jobs(page.fetch_limit(), page.after)
        .await?;
    let body = Paginated::from_rows(rows, &page, |j| {
        (j.finished_at.unwrap_or(j.updated_at), j.id)
    });
    Ok(HttpResponse::Ok().json(body))
}

/// One job's state, attempts and last error.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = JobStatus), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/admin/jobs/{id}")]
async fn status(
    req: HttpRequest,
    platform: web::Data<Platform>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &platform)?;
    let job = platform
        .queue
        .status(*id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such job"))?;
    Ok(HttpResponse::Ok().json(job))
}

/// Gives a dead job a fresh set of attempts. 409 when the job is not dead.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    responses((status = 202, body = JobStatus), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/admin/jobs/{id}/retry")]
async fn retry(
    req: HttpRequest,
    platform: web::Data<Platform>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &platform)?;
    let id = id.into_inner();
    if !platform.queue.retry_dead(id).await? {
        return match platform.queue.status(id).await? {
            Some(job) => Err(ApiError::conflict(format!(
                "the job is {}, not dead",
                job.state
            ))),
            None => Err(ApiError::not_found("no such job")),
        };
    }
    let job = platform
        .queue
        .status(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such job"))?;
    Ok(HttpResponse::Accepted().json(job))
}

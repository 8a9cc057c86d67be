//! `/orgs/{org_id}`, its members, invitations and audit trail.

use crate::repo::{AuditEntry, Member, OrgInfo};
use crate::service::Accounts;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use keel_http::{
    Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json, PageQuery, Paginated, Role,
};
use serde::Deserialize;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/orgs/{org_id}", web::get().to(get_org))
        .route("/orgs/{org_id}", web::patch().to(update_org))
        .route("/orgs/{org_id}/members", web::get().to(members))
        .route(
            "/orgs/{org_id}/members/{user_id}",
            web::patch().to(update_member),
        )
        .route(
            "/orgs/{org_id}/members/{user_id}",
            web::delete().to(remove_member),
        )
        .route("/orgs/{org_id}/invitations", web::post().to(invite))
        .route("/invitations/accept", web::post().to(accept))
        .route("/orgs/{org_id}/audit-events", web::get().to(audit_events));
}

/// The organization.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", tag = "organizations", security(("bearer" = [])),
    responses((status = 200, body = OrgInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_org(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(a.organization(&caller.0, *org_id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: String,
}

/// Renames the organization (owners and admins).
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}", tag = "organizations", security(("bearer" = [])), request_body = UpdateOrg,
    responses((status = 200, body = OrgInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_org(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<UpdateOrg>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        a.rename_organization(&caller.0, *org_id, &body.0.name)
            .await?,
    ))
}

/// Members in join order, keyset-paginated.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", tag = "organizations", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paginated<Member>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn members(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(a.members(&caller.0, *org_id, query.parse()?).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    pub role: Role,
}

/// Changes a member's role. Only owners make or unmake owners; the last owner stays.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "organizations", security(("bearer" = [])),
    request_body = UpdateMember,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_member(
    a: web::Data<Accounts>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateMember>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = path.into_inner();
    a.change_role(&caller.0, org_id, user_id, body.0.role)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a member; their sessions in this organization end at once.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "organizations", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    a: web::Data<Accounts>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = path.into_inner();
    a.remove_member(&caller.0, org_id, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    pub email: String,
    /// `owner` only when the caller is an owner.
    pub role: Role,
}

/// Invites someone by email (owners and admins). The link works once, for 7 days.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/invitations", tag = "organizations", security(("bearer" = [])),
    request_body = Invite,
    responses((status = 202), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn invite(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<Invite>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let reply = key.reply(|_: &()| {
        Answer::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "status": "invited" }),
        )
    });
    a.invite(&caller.0, *org_id, &body.0.email, body.0.role, &reply)
        .await?;
    Ok(reply.respond(&()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    pub token: String,
}

/// Joins the inviting organization; the signed-in user's verified address must be the
/// invited one. Log in with `organization_id` to act for it.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "organizations", security(("bearer" = [])), request_body = Accept,
    responses((status = 200, body = OrgInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn accept(
    a: web::Data<Accounts>,
    caller: Authenticated,
    body: Json<Accept>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let reply = key.reply(|org: &OrgInfo| Answer::json(StatusCode::OK, org));
    let org = a
        .accept_invitation(&caller.0, &body.0.token, &reply)
        .await?;
    Ok(reply.respond(&org))
}

/// The organization's audit trail, newest first (owners and admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit-events", tag = "organizations", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paginated<AuditEntry>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn audit_events(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(a.audit_events(&caller.0, *org_id, query.parse()?).await?))
}

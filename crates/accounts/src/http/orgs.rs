//! `/orgs/{org_id}`, its members, invitations and audit trail.

use crate::repo::{AuditEntry, Member, OrgInfo};
use crate::service::Accounts;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use keel_http::{
    Answer, ApiError, Authenticated, ErrorBody, IdempotencyKey, Json, PageQuery, Paginated, Role,
};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_org)
        .service(update_org)
        .service(members)
        .service(update_member)
        .service(remove_member)
        .service(invite)
        .service(accept)
        .service(audit_events);
}

/// The organization.
#[utoipa::path(tag = "organizations", security(("bearer" = [])),
    responses((status = 200, body = OrgInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "an API key without the scope this needs"), (status = 404, body = ErrorBody)))]
#[get("/orgs/{org_id}")]
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
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
}

/// Renames the organization (owners and admins).
#[utoipa::path(tag = "organizations", security(("bearer" = [])), request_body = UpdateOrg,
    responses((status = 200, body = OrgInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/orgs/{org_id}")]
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
#[utoipa::path(tag = "organizations", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paginated<Member>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "an API key without the scope this needs"), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[get("/orgs/{org_id}/members")]
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
#[utoipa::path(tag = "organizations", security(("bearer" = [])),
    request_body = UpdateMember,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/orgs/{org_id}/members/{user_id}")]
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
#[utoipa::path(tag = "organizations", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
#[delete("/orgs/{org_id}/members/{user_id}")]
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
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// `owner` only when the caller is an owner.
    pub role: Role,
}

/// Invites someone by email (owners and admins). The link works once, for 7 days.
#[utoipa::path(tag = "organizations", security(("bearer" = [])),
    request_body = Invite,
    responses((status = 202, body = Invited), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[post("/orgs/{org_id}/invitations")]
pub async fn invite(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    body: Json<Invite>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    let reply =
        key.reply(|_: &()| Answer::json(StatusCode::ACCEPTED, &Invited { status: "invited" }));
    a.invite(&caller.0, *org_id, &body.0.email, body.0.role, &reply)
        .await?;
    Ok(reply.respond(&()))
}

/// What an invitation answers: the email is on its way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invited {
    /// Always `invited`.
    pub status: &'static str,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    pub token: String,
}

/// Joins the inviting organization; the signed-in user's verified address must be the
/// invited one. Log in with `organization_id` to act for it.
#[utoipa::path(tag = "organizations", security(("bearer" = [])), request_body = Accept,
    responses((status = 200, body = OrgInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "not a user's session"), (status = 409, body = ErrorBody)))]
#[post("/invitations/accept")]
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
#[utoipa::path(tag = "organizations", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paginated<AuditEntry>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[get("/orgs/{org_id}/audit-events")]
pub async fn audit_events(
    a: web::Data<Accounts>,
    caller: Authenticated,
    org_id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(a.audit_events(&caller.0, *org_id, query.parse()?).await?))
}

//! The exports routes under `/api/v1/orgs/{org_id}/exports`.

mod download;
mod exports;
pub mod openapi;

use crate::SCOPE_AREA;
use keel_events::Actor;
use keel_http::{Access, ApiError, Caller};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub use openapi::ExportsApi;

/// Mounts every exports route, in one scope (see `keel_uploads::http::configure` for
/// why). Handlers name the scope's `org_id` in their `params`: the document does not
/// take it from the scope.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/orgs/{org_id}/exports").configure(|cfg| {
            // Fixed paths before the `{id}` patterns.
            exports::configure(cfg);
            download::configure(cfg);
        }),
    );
}

/// Exports hold an organization's members and audit trail: owners and admins request
/// and read them; API keys need `exports:read` / `exports:write`. Another
/// organization's id is 404.
fn org_access(caller: &Caller, org_id: Uuid, access: Access) -> Result<Uuid, ApiError> {
    let org_id = caller.in_org(org_id)?;
    if caller.is_admin() || caller.has_scope(SCOPE_AREA, access) {
        Ok(org_id)
    } else {
        Err(ApiError::forbidden(if access == Access::Write {
            "requesting exports needs the owner or admin role, or the exports:write scope"
        } else {
            "reading exports needs the owner or admin role, or the exports:read scope"
        }))
    }
}

/// Where an export is read: the `Location` of a requested one.
fn location(org_id: Uuid, id: Uuid) -> String {
    format!("/api/v1/orgs/{org_id}/exports/{id}")
}

/// Who the caller is, for the audit trail and the export's requester.
fn actor(caller: &Caller) -> Actor {
    match caller {
        Caller::User(user) => Actor::User(user.user_id),
        Caller::ApiKey(key) => Actor::ApiKey(key.key_id),
    }
}

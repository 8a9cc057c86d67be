//! The notifications routes under `/api/v1`: the caller's in-app notifications and
//! preferences, unsubscribe links, and the organization's webhooks.

mod inbox;
pub mod openapi;
mod webhooks;

use crate::SCOPE_AREA;
use crate::inbox::Reader;
use keel_http::{Access, ApiError, Authenticated, Caller};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub use openapi::NotificationsApi;

/// Mounts every notifications route; static paths before patterned ones (actix tries
/// routes in registration order).
pub fn configure(cfg: &mut ServiceConfig) {
    inbox::configure(cfg);
    webhooks::configure(cfg);
}

/// In-app notifications belong to a person acting for an organization: a session. API
/// keys belong to the organization, not to a user, so they have no inbox (403).
fn reader(caller: &Authenticated) -> Result<Reader, ApiError> {
    match caller.0.user() {
        Some(user) => Ok(Reader {
            user_id: user.user_id,
            org_id: user.org_id,
        }),
        None => Err(ApiError::forbidden(
            "notifications belong to users: use a session token",
        )),
    }
}

/// Webhooks are the organization's: reading needs membership or `notifications:read`,
/// changing needs owner/admin or `notifications:write`. Another organization's id is 404.
fn org_access(caller: &Caller, org_id: Uuid, access: Access) -> Result<Uuid, ApiError> {
    let org_id = caller.in_org(org_id)?;
    let allowed = match access {
        Access::Write => caller.is_admin(),
        Access::Read => caller.is_member(),
    };
    if allowed || caller.has_scope(SCOPE_AREA, access) {
        Ok(org_id)
    } else {
        Err(ApiError::forbidden(if access == Access::Write {
            "managing webhooks needs the owner or admin role, or the notifications:write scope"
        } else {
            "reading webhooks needs membership or the notifications:read scope"
        }))
    }
}

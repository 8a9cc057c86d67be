//! The uploads routes under `/api/v1/orgs/{org_id}/uploads`.

mod content;
mod direct;
pub mod openapi;
pub(crate) mod resumable;
mod tus_headers;
mod uploads;

use crate::SCOPE_AREA;
use crate::service::Uploader;
use keel_http::{Access, ApiError, Caller};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub use openapi::UploadsApi;

/// The routes whose body is a file streamed to storage, never buffered: the binary
/// tells the `Idempotency-Key` middleware (under the API's `/api/v1` prefix).
pub const STREAMED_ROUTES: [&str; 1] = ["/orgs/{org_id}/uploads"];

/// Mounts every uploads route, in one scope: a request for another domain's route is
/// tested against the scope's prefix once instead of against every uploads pattern (actix
/// tries routes in order, a regex each), and an uploads request only against these.
/// Handlers name the scope's `org_id` in their `params`: the document does not take it
/// from the scope.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/orgs/{org_id}/uploads").configure(|cfg| {
            // Fixed paths before the `{id}` patterns.
            direct::configure(cfg);
            resumable::configure(cfg);
            uploads::configure(cfg);
        }),
    );
}

/// Members read and upload; API keys need `uploads:read` / `uploads:write`. Another
/// organization's id is 404.
fn org_access(caller: &Caller, org_id: Uuid, access: Access) -> Result<Uuid, ApiError> {
    let org_id = caller.in_org(org_id)?;
    if caller.is_member() || caller.has_scope(SCOPE_AREA, access) {
        Ok(org_id)
    } else {
        Err(ApiError::forbidden(if access == Access::Write {
            "uploading needs membership or the uploads:write scope"
        } else {
            "reading uploads needs membership or the uploads:read scope"
        }))
    }
}

/// Where an upload is read: the `Location` of a created one.
fn location(org_id: Uuid, id: Uuid) -> String {
    format!("/api/v1/orgs/{org_id}/uploads/{id}")
}

/// Members may delete only their own uploads; admins and keys with the scope, any.
fn only_by(caller: &Caller) -> Option<Uuid> {
    if caller.is_admin() || caller.api_key_id().is_some() {
        None
    } else {
        caller.user_id()
    }
}

/// The uploader a caller is: the person of a session, or the API key.
fn uploader(caller: &Caller) -> Uploader {
    match (caller.user_id(), caller.api_key_id()) {
        (Some(user), _) => Uploader::User(user),
        (None, Some(key)) => Uploader::ApiKey(key),
        (None, None) => Uploader::ApiKey(caller.credential_id()),
    }
}

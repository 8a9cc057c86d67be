//! The accounts part of the OpenAPI document; the binary merges it into the whole. Its
//! paths come from the routes themselves (`http::configure` registers each handler
//! once, with its `#[utoipa::path]`); this adds what a route cannot say: tag descriptions.

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    tags(
        (name = "accounts", description = "Signup, sessions, the caller's profile and password"),
        (name = "organizations", description = "Organizations, members, invitations, audit trail"),
        (name = "api keys", description = "Scoped API keys of an organization"),
    )
)]
pub struct AccountsApi;

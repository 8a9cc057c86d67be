//! The accounts part of the OpenAPI document; the binary merges it into the whole.

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        super::signup, super::verify_email, super::login, super::logout, super::me, super::update_me,
        super::change_password, super::request_reset, super::confirm_reset,
        super::api_keys::create, super::api_keys::list, super::api_keys::revoke,
        super::orgs::get_org, super::orgs::update_org, super::orgs::members, super::orgs::update_member,
        super::orgs::remove_member, super::orgs::invite, super::orgs::accept, super::orgs::audit_events,
    ),
    tags(
        (name = "accounts", description = "Signup, sessions, the caller's profile and password"),
        (name = "organizations", description = "Organizations, members, invitations, audit trail"),
        (name = "api keys", description = "Scoped API keys of an organization"),
    )
)]
pub struct AccountsApi;

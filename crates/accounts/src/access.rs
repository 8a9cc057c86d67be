//! Who may do what: tenancy (an organization id in a path must be the caller's, else 404
//! exactly like a missing one), roles for users, scopes for API keys.

use crate::error::AccountsError;
use keel_http::{Access, Caller};
use uuid::Uuid;

/// The area of the accounts domain's API-key scopes: `accounts:read`, `accounts:write`.
pub const SCOPE_AREA: &str = "accounts";

/// The caller's organization, if it is `org_id`; otherwise "not found" ([`Caller::in_org`]).
pub fn same_org(caller: &Caller, org_id: Uuid) -> Result<Uuid, AccountsError> {
    caller.in_org(org_id).map_err(|_| AccountsError::NotFound)
}

/// Reading within the organization: any member, or a key with `accounts:read`.
pub fn can_read(caller: &Caller) -> Result<(), AccountsError> {
    if caller.is_member() || caller.has_scope(SCOPE_AREA, Access::Read) {
        return Ok(());
    }
    Err(AccountsError::Forbidden)
}

/// Managing members, keys and the organization: owners and admins, or a key with
/// `accounts:write`.
pub fn can_manage(caller: &Caller) -> Result<(), AccountsError> {
    if caller.is_admin() || caller.has_scope(SCOPE_AREA, Access::Write) {
        return Ok(());
    }
    Err(AccountsError::Forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_http::Role;
    use keel_http::caller::testing::{api_key as key, user};

    #[test]
    fn scopes_and_roles() {
        assert!(can_read(&key(&["accounts:read"])).is_ok());
        assert!(can_manage(&key(&["accounts:read"])).is_err());
        assert!(can_manage(&key(&["accounts:write"])).is_ok());
        assert!(can_read(&key(&["exports:write"])).is_err());
        let member = user(Role::Member);
        assert!(can_read(&member).is_ok() && can_manage(&member).is_err());
        let admin = user(Role::Admin);
        assert!(can_manage(&admin).is_ok());
        assert!(same_org(&admin, Uuid::now_v7()).is_err());
        assert!(same_org(&admin, admin.org_id()).is_ok());
    }
}

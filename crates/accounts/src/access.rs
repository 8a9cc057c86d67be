//! Who may do what: tenancy (an organization id in a path must be the caller's, else 404
//! exactly like a missing one), roles for users, scopes for API keys.

use crate::error::AccountsError;
use keel_http::Caller;
use uuid::Uuid;

/// The domains whose API-key scopes exist; each has `:read` and `:write` (write implies read).
pub const SCOPE_DOMAINS: &[&str] = &["accounts", "exports", "uploads", "notifications"];

pub fn valid_scope(scope: &str) -> bool {
    matches!(scope.split_once(':'), Some((domain, access))
        if SCOPE_DOMAINS.contains(&domain) && matches!(access, "read" | "write"))
}

/// The caller's organization, if it is `org_id`; otherwise "not found" ([`Caller::in_org`]).
pub fn same_org(caller: &Caller, org_id: Uuid) -> Result<Uuid, AccountsError> {
    caller.in_org(org_id).map_err(|_| AccountsError::NotFound)
}

/// Reading within the organization: any member, or a key with `accounts:read`.
pub fn can_read(caller: &Caller) -> Result<(), AccountsError> {
    if caller.is_member() || caller.has_scope("accounts", false) {
        return Ok(());
    }
    Err(AccountsError::Forbidden)
}

/// Managing members, keys and the organization: owners and admins, or a key with
/// `accounts:write`.
pub fn can_manage(caller: &Caller) -> Result<(), AccountsError> {
    if caller.is_admin() || caller.has_scope("accounts", true) {
        return Ok(());
    }
    Err(AccountsError::Forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[&str]) -> Caller {
        Caller {
            user_id: None,
            api_key_id: Some(Uuid::now_v7()),
            session_id: None,
            org_id: Some(Uuid::now_v7()),
            role: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn scopes_and_roles() {
        assert!(
            valid_scope("exports:read")
                && !valid_scope("exports:admin")
                && !valid_scope("billing:read")
        );
        assert!(can_read(&key(&["accounts:read"])).is_ok());
        assert!(can_manage(&key(&["accounts:read"])).is_err());
        assert!(can_manage(&key(&["accounts:write"])).is_ok());
        assert!(can_read(&key(&["exports:write"])).is_err());
        let member = Caller {
            user_id: Some(Uuid::now_v7()),
            role: Some("member".into()),
            api_key_id: None,
            ..key(&[])
        };
        assert!(can_read(&member).is_ok() && can_manage(&member).is_err());
        let admin = Caller {
            role: Some("admin".into()),
            ..member.clone()
        };
        assert!(can_manage(&admin).is_ok());
        assert!(same_org(&admin, Uuid::now_v7()).is_err());
        assert!(same_org(&admin, admin.org_id.unwrap()).is_ok());
    }
}

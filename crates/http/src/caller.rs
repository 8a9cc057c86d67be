//! Who is calling: a signed-in user with a role in one organization, or an organization's
//! API key with scopes. A type per kind of caller, so a handler cannot read a role off a
//! key or a scope off a session by mistake.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Who is calling and for which organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A user signed in with a session token.
    User(UserCaller),
    /// An organization's API key.
    ApiKey(KeyCaller),
}

/// A session: the user, the session, and the organization it acts for with the user's
/// role there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCaller {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
}

/// An API key: it belongs to an organization and may do what its scopes allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCaller {
    pub key_id: Uuid,
    pub org_id: Uuid,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// The organization the credentials act for.
    pub fn org_id(&self) -> Uuid {
        match self {
            Caller::User(u) => u.org_id,
            Caller::ApiKey(k) => k.org_id,
        }
    }

    /// The credential itself (the session or the API key): what rate limits count.
    pub fn credential_id(&self) -> Uuid {
        match self {
            Caller::User(u) => u.session_id,
            Caller::ApiKey(k) => k.key_id,
        }
    }

    /// The signed-in user, when the caller is one.
    pub fn user(&self) -> Option<&UserCaller> {
        match self {
            Caller::User(u) => Some(u),
            Caller::ApiKey(_) => None,
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        self.user().map(|u| u.user_id)
    }

    pub fn api_key_id(&self) -> Option<Uuid> {
        match self {
            Caller::ApiKey(k) => Some(k.key_id),
            Caller::User(_) => None,
        }
    }

    /// The user's role; an API key has none (its scopes decide).
    pub fn role(&self) -> Option<Role> {
        self.user().map(|u| u.role)
    }

    /// Whether an API-key caller holds a scope of `area` that allows `access` (write
    /// implies read). Always false for users: their role decides.
    pub fn has_scope(&self, area: &str, access: Access) -> bool {
        match self {
            Caller::ApiKey(k) => k.scopes.iter().any(|s| s.allows(area, access)),
            Caller::User(_) => false,
        }
    }

    /// Whether the caller is a user with a role in its organization (any role).
    pub fn is_member(&self) -> bool {
        self.user().is_some()
    }

    /// Whether the caller is an owner or admin of its organization.
    pub fn is_admin(&self) -> bool {
        self.role().is_some_and(Role::manages)
    }

    /// Whether the caller is an owner of its organization.
    pub fn is_owner(&self) -> bool {
        self.role() == Some(Role::Owner)
    }

    /// `org_id` when it is the caller's organization; otherwise 404, exactly like an
    /// organization that does not exist (no probing of other tenants).
    pub fn in_org(&self, org_id: Uuid) -> Result<Uuid, ApiError> {
        if self.org_id() == org_id {
            Ok(org_id)
        } else {
            Err(ApiError::not_found("not found"))
        }
    }
}

keel_persistence::text_enum! {
    /// A member's role in an organization. Stored as its lowercase name (a checked text
    /// column), serialised the same way.
    pub enum Role {
        /// Everything, including making and unmaking owners.
        Owner = "owner",
        /// Manages members, keys, webhooks; cannot touch owners.
        Admin = "admin",
        /// Reads the organization and acts for itself.
        Member = "member",
    }
}

impl Role {
    /// Owners and admins manage the organization.
    pub fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// A text that is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// What a scope lets an API key do in its area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    /// Implies read.
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// An API-key scope, `<area>:read` or `<area>:write`. Each domain names its area
/// (`keel_accounts::SCOPE_AREA`, ...); which areas exist is the binary's to say. Stored
/// and serialised as its text.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Scope {
    area: String,
    access: Access,
}

impl Scope {
    pub fn new(area: &str, access: Access) -> Self {
        Self {
            area: area.to_owned(),
            access,
        }
    }

    /// Parses `text` as a scope of one of `areas`.
    pub fn parse(text: &str, areas: &[&str]) -> Result<Self, ParseError> {
        let unknown = || {
            ParseError(format!(
                "unknown scope {text:?}; scopes are <area>:read or <area>:write for areas {}",
                areas.join(", ")
            ))
        };
        let scope: Scope = text.parse().map_err(|_| unknown())?;
        if areas.contains(&scope.area.as_str()) {
            Ok(scope)
        } else {
            Err(unknown())
        }
    }

    pub fn area(&self) -> &str {
        &self.area
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether this scope lets its holder do `access` in `area`.
    pub fn allows(&self, area: &str, access: Access) -> bool {
        self.area == area && (self.access == Access::Write || access == Access::Read)
    }
}

impl FromStr for Scope {
    type Err = ParseError;

    /// The form only (`<area>:read|write`); [`Scope::parse`] also checks the area.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError(format!("{s:?} is not <area>:read or <area>:write"));
        let (area, access) = s.split_once(':').ok_or_else(bad)?;
        let access = match access {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => return Err(bad()),
        };
        let valid_area = !area.is_empty()
            && area
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_area {
            return Err(bad());
        }
        Ok(Scope::new(area, access))
    }
}

keel_persistence::text_mapping!(Scope);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.area, self.access.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Callers for tests of permission rules: fresh ids, no credentials behind them.
pub mod testing {
    use super::{Caller, KeyCaller, Role, UserCaller};
    use uuid::Uuid;

    /// An API key of a fresh organization holding `scopes` (malformed ones are skipped).
    pub fn api_key(scopes: &[&str]) -> Caller {
        Caller::ApiKey(KeyCaller {
            key_id: Uuid::now_v7(),
            org_id: Uuid::now_v7(),
            scopes: scopes.iter().filter_map(|s| s.parse().ok()).collect(),
        })
    }

    /// A signed-in user with `role` in a fresh organization.
    pub fn user(role: Role) -> Caller {
        Caller::User(UserCaller {
            user_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            org_id: Uuid::now_v7(),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{api_key as key, user};
    use super::*;

    #[test]
    fn scopes_parse_check_their_area_and_round_trip() {
        let areas = ["accounts", "notifications"];
        assert!(Scope::parse("accounts:read", &areas).is_ok());
        assert!(Scope::parse("notifications:write", &areas).is_ok());
        assert!(Scope::parse("billing:read", &areas).is_err());
        assert!(Scope::parse("accounts:admin", &areas).is_err());
        assert!(Scope::parse("accounts", &areas).is_err());
        let scope: Scope = "accounts:write".parse().unwrap();
        assert_eq!(scope.to_string(), "accounts:write");
        assert_eq!(
            serde_json::to_value(&scope).unwrap(),
            serde_json::json!("accounts:write")
        );
    }

    #[test]
    fn write_implies_read_and_only_keys_hold_scopes() {
        assert!(key(&["accounts:write"]).has_scope("accounts", Access::Read));
        assert!(key(&["accounts:write"]).has_scope("accounts", Access::Write));
        assert!(!key(&["accounts:read"]).has_scope("accounts", Access::Write));
        assert!(!key(&["exports:write"]).has_scope("accounts", Access::Read));
        assert!(!user(Role::Owner).has_scope("accounts", Access::Read));
    }

    #[test]
    fn roles_decide_for_users_and_nothing_for_keys() {
        assert!(user(Role::Owner).is_admin() && user(Role::Owner).is_owner());
        assert!(user(Role::Admin).is_admin() && !user(Role::Admin).is_owner());
        assert!(!user(Role::Member).is_admin() && user(Role::Member).is_member());
        assert!(!key(&["accounts:write"]).is_member());
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            serde_json::to_value(Role::Member).unwrap(),
            serde_json::json!("member")
        );
    }

    #[test]
    fn another_organization_is_not_found() {
        let caller = user(Role::Owner);
        assert!(caller.in_org(caller.org_id()).is_ok());
        assert!(caller.in_org(Uuid::now_v7()).is_err());
    }
}

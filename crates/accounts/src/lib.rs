//! Accounts and tenancy: users, organizations, memberships and roles, sessions, API keys,
//! and the authenticated caller every other domain's routes rely on.

pub mod password;

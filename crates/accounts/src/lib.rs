//! Accounts and tenancy: users, organizations, memberships and roles, sessions, API keys,
//! and the authenticated caller every other domain's routes rely on.

pub mod access;
pub mod api_keys;
pub mod auth;
pub mod error;
pub mod http;
pub mod input;
pub mod jobs;
pub mod mailer;
pub mod orgs;
pub mod password_changes;
pub mod password_hash;
pub mod repo;
pub mod service;
pub mod sessions;
pub mod signup;
pub mod throttle;
pub mod token;

pub use access::SCOPE_AREA;
pub use error::AccountsError;
pub use mailer::{AccountEmail, AccountMailer};
pub use service::Accounts;
pub use sessions::SessionToken;
pub use signup::NewSignup;

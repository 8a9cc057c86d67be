//! The binary's own routes: health, metrics, API documentation, admin.

pub mod admin;
pub mod docs;
pub mod health;
pub mod metrics;

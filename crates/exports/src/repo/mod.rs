//! The exports domain's tables.

pub mod exports;
pub mod requests;

//! The exports domain's tables.

pub mod exports;

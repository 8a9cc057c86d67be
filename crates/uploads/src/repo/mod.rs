//! The uploads domain's tables. Every query of an organization's uploads filters by
//! `org_id`; the jobs, which act for no caller, look rows up by id alone.

pub mod exported;
pub mod uploads;
pub mod usage;

//! Every query of the notifications domain, one module per table family, as in accounts'
//! `repo.rs`: services orchestrate, these functions talk to the database. Each takes a
//! connection (never the pool), so a service can run several of them, and enqueue jobs,
//! in one transaction.

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod inbox;
pub mod preferences;

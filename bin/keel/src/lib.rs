//! The composition root: builds the shared platform, mounts every domain's routes and job
//! handlers, and runs the API server, the workers, or both, until a signal stops them.

pub mod cli;
pub mod domains;
pub mod jobs;
pub mod platform;
pub mod routes;
pub mod run;
pub mod server;
pub mod sources;

pub use platform::Platform;

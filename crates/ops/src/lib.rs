//! The ops console, `/ops`: what an operator needs to see and do without installing
//! anything else — request rates, errors and latency per route, the queue's backlog and
//! dead jobs (retry, discard, pause a kind), third parties' failures and breakers, and
//! the database's pressure.
//!
//! Pages are rendered on the server (minijinja, templates compiled into the binary) with
//! their stylesheet and script served by Keel itself, so the console works offline and,
//! but for its auto-refresh, with JavaScript off. Its numbers are the deployment's, not
//! one replica's: every process publishes its metrics into one-minute windows in Redis
//! ([`windows`]), and the queue's state is read with SQL. Operators sign in with the
//! admin token ([`session`]); every action is written to `ops_audit` ([`audit`]).

pub mod audit;
mod database;
mod error;
mod operator;
mod pages;
mod redact;
pub mod samples;
pub mod session;
mod sparkline;
pub mod stats;
mod templates;
pub mod windows;

pub use error::OpsError;
pub use windows::{Publisher, Windows};

use actix_web::web;
use keel_config::Settings;
use keel_persistence::DbPool;
use keel_queue::Queue;
use std::sync::Arc;

/// Every path of the console starts with it.
pub const PREFIX: &str = "/ops";

/// What the console's pages read and act on. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DbPool,
    queue: Queue,
    windows: Windows,
    sessions: session::Sessions,
    templates: minijinja::Environment<'static>,
    refresh_secs: u64,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// The console, or `None` when no admin token is configured (then it does not exist).
    pub fn new(
        settings: &Settings,
        pool: DbPool,
        queue: Queue,
        redis: deadpool_redis::Pool,
    ) -> Option<Self> {
        let token = settings.admin.token()?;
        Some(Self {
            inner: Arc::new(Inner {
                pool,
                queue,
                windows: Windows::new(redis, &settings.redis.key_prefix),
                sessions: session::Sessions::new(token, settings.admin.console_session()),
                templates: templates::environment(),
                refresh_secs: settings.admin.console_refresh_secs,
            }),
        })
    }
}

/// Mounts the console's pages, forms and assets.
pub fn configure(cfg: &mut web::ServiceConfig, console: Console) {
    cfg.app_data(web::Data::new(console));
    pages::configure(cfg);
}

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
    /// Where a form may come from besides the `Host` it was sent to: the public origin of
    /// `mail.public_url`, for a proxy that rewrites `Host`.
    public_origin: Option<String>,
    /// The minute each address last had a refused sign-in audited: a guesser costs the
    /// audit log one row a minute, not one per try.
    refusals: std::sync::Mutex<std::collections::HashMap<String, i64>>,
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
                public_origin: origin_of(&settings.mail.public_url),
                refusals: Default::default(),
                queue,
                windows: Windows::new(redis, &settings.redis.key_prefix),
                sessions: session::Sessions::new(token, settings.admin.console_session()),
                templates: templates::environment(),
                refresh_secs: settings.admin.console_refresh_secs,
            }),
        })
    }
}

/// `scheme://host[:port]` of `url`, as a browser's `Origin` names it.
fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

impl Console {
    /// Whether a refused sign-in from `address` at `minute` (unix minutes) is the first
    /// of its minute, and so audited.
    fn first_refusal(&self, address: &str, minute: i64) -> bool {
        let Ok(mut seen) = self.inner.refusals.lock() else {
            return false;
        };
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(address.to_owned(), minute) != Some(minute)
    }
}

/// Mounts the console's pages, forms and assets.
pub fn configure(cfg: &mut web::ServiceConfig, console: Console) {
    cfg.app_data(web::Data::new(console));
    pages::configure(cfg);
}

//! Whether Redis answered the last operation, for readiness, metrics and log hygiene.

use crate::metrics;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};

/// Tracks Redis reachability from the outcome of real operations (no extra probing).
/// Logs a warning once per transition to down and an info line once on recovery; the
/// failures in between are debug lines, so a Redis outage does not flood the logs.
#[derive(Debug)]
pub(crate) struct RedisHealth {
    up: AtomicBool,
}

impl RedisHealth {
    /// Starts optimistic: the listener's first connection attempt, made right away,
    /// settles the real state within one timeout.
    pub(crate) fn new() -> Self {
        metrics::redis_up(true);
        Self {
            up: AtomicBool::new(true),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn success(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            metrics::redis_up(true);
            tracing::info!("redis reachable again; cache uses L2 again");
        }
    }

    pub(crate) fn failure(&self, op: &'static str, error: &dyn Display) {
        metrics::error(op);
        if self.up.swap(false, Ordering::Relaxed) {
            metrics::redis_up(false);
            tracing::warn!(op, %error, "redis unreachable; cache reads fall back to the loader");
        } else {
            tracing::debug!(op, %error, "redis still unreachable");
        }
    }
}

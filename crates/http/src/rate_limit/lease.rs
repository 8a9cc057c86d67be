//! Slices of a subject's budget, handed out by Redis to every process.
//!
//! One counter per subject and window (`{prefix}:ratelimit:{subject}:{window}`): a lease
//! adds its size with `INCRBY` and gets the total back, so concurrent leases from any
//! number of processes never hand out more than the limit between them. If Redis is out
//! of reach, the process counts on its own for a second before it tries again (it then
//! enforces the limit per process, as if it were alone) and counts the failure in
//! `keel_rate_limit_redis_errors_total`.

use super::budget::{Lease, Subject};
use redis::Script;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// KEYS[1] = the counter; ARGV = lease size, time to live (ms). Returns the new total.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local total = redis.call('INCRBY', KEYS[1], ARGV[1])
        if total == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return total
        ",
    )
});

/// How long a process counts alone after Redis failed it: a Redis outage costs one
/// timeout per second, not one per lease.
const PAUSE_AFTER_ERROR: Duration = Duration::from_secs(1);
/// Counters outlive their window by this much (clocks of processes differ a little).
const COUNTER_GRACE: Duration = Duration::from_secs(5);

pub struct Leases {
    redis: deadpool_redis::Pool,
    prefix: String,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Leases {
    pub fn new(redis: deadpool_redis::Pool, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            paused_until: Mutex::new(None),
        }
    }

    /// Up to `size` tokens of `subject`'s `limit` in `window` (of length `length`).
    pub async fn lease(
        &self,
        subject: Subject,
        window: u64,
        length: Duration,
        size: u32,
        limit: u32,
    ) -> Lease {
        if self.paused() {
            return Lease::Local { size };
        }
        let key = format!("{}:ratelimit:{}:{window}", self.prefix, subject.key());
        match self.incr(&key, size, length + COUNTER_GRACE).await {
            Ok(total) => {
                let before = total.saturating_sub(u64::from(size));
                let left = u64::from(limit).saturating_sub(before);
                Lease::Cluster {
                    granted: left.min(u64::from(size)) as u32,
                    leased_total: total.min(u64::from(limit)) as u32,
                }
            }
            Err(error) => {
                metrics::counter!("keel_rate_limit_redis_errors_total").increment(1);
                tracing::warn!(%error, "rate limits unavailable in Redis; counting per process");
                *self.lock() = Some(Instant::now() + PAUSE_AFTER_ERROR);
                Lease::Local { size }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn paused(&self) -> bool {
        self.lock().is_some_and(|until| Instant::now() < until)
    }

    async fn incr(&self, key: &str, size: u32, ttl: Duration) -> Result<u64, String> {
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        LEASE
            .key(key)
            .arg(size)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }
}

//! Login throttling in Redis, shared by every process.
//!
//! Each attempt is counted *before* the password is hashed, atomically, per account and
//! per client address (`keel_http::client_address`: forwarding headers count only from
//! trusted proxies). The first attempts in the window are free; after that each attempt sets
//! a lock whose length doubles (1 s, 2 s, 4 s, ... up to the maximum), and attempts while
//! it holds get 429 with `Retry-After` and cost no hash. A burst of concurrent guesses
//! therefore computes a handful of hashes, not one per request. A successful login
//! clears the account's counter.
//!
//! If Redis is unreachable the check lets attempts through (logins keep working; the
//! argon2 cost and the hashing semaphore still bound the damage) and counts the failure
//! in `keel_login_throttle_errors_total`.

use keel_config::AccountsSettings;
use redis::Script;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use std::time::Duration;

/// KEYS[1] = attempts counter, KEYS[2] = lock; ARGV = window ms, free attempts, max delay ms.
/// Returns 0 when the attempt may proceed, -1 when it may and is the first beyond the free
/// ones (a burst of failures begins), else the milliseconds to wait.
static ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local wait = redis.call('PTTL', KEYS[2])
        if wait > 0 then return wait end
        local n = redis.call('INCR', KEYS[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        local free = tonumber(ARGV[2])
        if n > free then
            local delay = math.min(1000 * 2 ^ math.min(n - free - 1, 30), tonumber(ARGV[3]))
            redis.call('SET', KEYS[2], '1', 'PX', math.floor(delay))
            if n == free + 1 then return -1 end
        end
        return 0
        ",
    )
});

#[derive(Clone)]
pub struct Throttle {
    redis: deadpool_redis::Pool,
    prefix: String,
    settings: AccountsSettings,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Throttle {
    pub fn new(redis: deadpool_redis::Pool, prefix: &str, settings: &AccountsSettings) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            settings: settings.clone(),
        }
    }

    fn keys(&self, kind: &str, subject: &str) -> (String, String) {
        // Hashed: keys must not carry email addresses.
        let id: String = Sha256::digest(subject.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        let base = format!("{}:throttle:login:{kind}:{id}", self.prefix);
        (format!("{base}:n"), format!("{base}:lock"))
    }

    /// Registers one attempt; `Err(wait)` when it must not proceed, `Ok(true)` when the
    /// account's free attempts just ran out (worth an audit event).
    pub async fn attempt(&self, email: &str, ip: Option<&str>) -> Result<bool, Duration> {
        let mut burst = false;
        let window_ms = self.settings.login_window_minutes * 60_000;
        let max_ms = self.settings.login_max_delay_secs * 1000;
        let mut checks = vec![(
            self.keys("account", email),
            self.settings.login_free_attempts_per_account,
        )];
        if let Some(ip) = ip {
            // Counted like the general rate limits count an address (an IPv6 client by
            // its /64), so rotating through one's own addresses buys nothing here either.
            let client = ip
                .parse()
                .map(|addr| keel_http::rate_limit::Subject::address(addr).key())
                .unwrap_or_else(|_| ip.to_owned());
            checks.push((
                self.keys("ip", &client),
                self.settings.login_free_attempts_per_ip,
            ));
        }
        for (i, ((counter, lock), free)) in checks.into_iter().enumerate() {
            match self.run(&counter, &lock, window_ms, free, max_ms).await {
                Ok(0) => {}
                Ok(-1) => burst |= i == 0,
                Ok(wait_ms) => {
                    metrics::counter!("keel_login_throttled_total").increment(1);
                    return Err(Duration::from_millis(wait_ms.max(1) as u64));
                }
                Err(e) => {
                    metrics::counter!("keel_login_throttle_errors_total").increment(1);
                    tracing::warn!(error = %e, "login throttle unavailable; attempt allowed");
                }
            }
        }
        Ok(burst)
    }

    async fn run(
        &self,
        counter: &str,
        lock: &str,
        window_ms: u64,
        free: u32,
        max_ms: u64,
    ) -> Result<i64, String> {
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        ATTEMPT
            .key(counter)
            .key(lock)
            .arg(window_ms)
            .arg(free)
            .arg(max_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// Forgets the account's attempts after a successful login.
    pub async fn succeeded(&self, email: &str) {
        let (counter, lock) = self.keys("account", email);
        let result: Result<(), String> = async {
            let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
            redis::cmd("DEL")
                .arg(&counter)
                .arg(&lock)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "login throttle not cleared");
        }
    }
}

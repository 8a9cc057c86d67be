//! Tuning knobs that are not worth a configuration key: defaults suit every deployment
//! we know of, and tests shorten or lengthen them.

use std::time::Duration;

/// Timings of the stampede lock, the invalidation repeat and the listener.
/// Build with struct update syntax: `CacheOptions { lock_ttl: .., ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// [`crate::Namespace::invalidate`] repeats its DEL + publish after this delay, to
    /// catch a load that read the old row before the commit and wrote it to L2 after the
    /// first DEL. Zero disables the repeat. Default 500 ms.
    pub invalidation_repeat_delay: Duration,
    /// Expiry of the cross-process load lock; bounds how long a crashed holder blocks
    /// others. Default 2 s.
    pub lock_ttl: Duration,
    /// How often a process that lost the lock looks for the winner's value in L2.
    /// Default 50 ms.
    pub lock_poll_interval: Duration,
    /// How many times it looks before calling its own loader. Default 10 (≈ 500 ms).
    pub lock_poll_attempts: u32,
    /// First pause before the invalidation listener reconnects; doubles per failure.
    /// Default 100 ms.
    pub reconnect_backoff_min: Duration,
    /// Longest pause between reconnection attempts. Default 5 s.
    pub reconnect_backoff_max: Duration,
    /// How often the listener PINGs its subscription connection, so a connection that
    /// died without a FIN is noticed. Default 15 s.
    pub listener_ping_interval: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            invalidation_repeat_delay: Duration::from_millis(500),
            lock_ttl: Duration::from_secs(2),
            lock_poll_interval: Duration::from_millis(50),
            lock_poll_attempts: 10,
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
            listener_ping_interval: Duration::from_secs(15),
        }
    }
}

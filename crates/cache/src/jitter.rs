//! Randomised expiry times, so entries written together (a warm-up, a burst of traffic
//! after a deploy) do not all expire in the same instant and stampede the database.

use moka::Expiry;
use rand::Rng;
use std::time::{Duration, Instant};

/// `base` spread uniformly over ±`percent` % (capped at 100 %), never below 1 ms unless
/// `base` itself is zero.
pub(crate) fn jittered(base: Duration, percent: u8) -> Duration {
    let spread = f64::from(percent.min(100)) / 100.0;
    if spread == 0.0 || base.is_zero() {
        return base;
    }
    let factor = 1.0 + rand::rng().random_range(-spread..=spread);
    Duration::try_from_secs_f64(base.as_secs_f64() * factor)
        .unwrap_or(base)
        .max(Duration::from_millis(1))
}

/// L1 expiry: each entry gets its own jittered TTL when it is written, so the L1 entries
/// of different processes (and of keys loaded together) fall out at different times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JitteredTtl {
    pub(crate) base: Duration,
    pub(crate) percent: u8,
}

impl<K, V> Expiry<K, V> for JitteredTtl {
    fn expire_after_create(&self, _key: &K, _value: &V, _created_at: Instant) -> Option<Duration> {
        Some(jittered(self.base, self.percent))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        _value: &V,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(jittered(self.base, self.percent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_band() {
        let base = Duration::from_secs(100);
        for _ in 0..1000 {
            let ttl = jittered(base, 10);
            assert!(ttl >= Duration::from_secs(90) && ttl <= Duration::from_secs(110));
        }
    }

    #[test]
    fn zero_percent_is_exact() {
        assert_eq!(jittered(Duration::from_secs(7), 0), Duration::from_secs(7));
    }

    #[test]
    fn full_spread_never_reaches_zero() {
        for _ in 0..1000 {
            assert!(jittered(Duration::from_millis(10), 255) >= Duration::from_millis(1));
        }
    }
}

//! Exponential backoff with jitter between attempts.

use rand::Rng;
use std::time::Duration;

/// The delay before retrying after failed attempt number `attempt` (1-based):
/// `base · 2^(attempt-1)`, capped at `max`, then scaled by a random factor in
/// [0.75, 1.0]. The jitter spreads retries of jobs that failed together (a receiver came
/// back up) without letting a later gap be shorter than an earlier one.
pub fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    let factor = rand::rng().random_range(0.75..=1.0);
    raw.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..200 {
            let d1 = delay(1, base, max);
            let d2 = delay(2, base, max);
            let d3 = delay(3, base, max);
            assert!(d1 >= Duration::from_millis(75) && d1 <= base);
            assert!(d2 >= Duration::from_millis(150) && d2 <= Duration::from_millis(200));
            assert!(d3 > d1 && d3 <= Duration::from_millis(400));
            assert!(delay(40, base, max) <= max);
        }
    }
}

//! A circuit breaker per AI provider: after `threshold` failed calls in a row the
//! provider is left alone for `cooldown`; then calls go to it again, and one more failure
//! opens the breaker anew (the failure count is only reset by a success). While it is
//! open, tasks wait without using an attempt, instead of hammering a provider that is
//! down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::default(),
        }
    }

    /// How long calls must still wait, or `None` when one may go.
    pub fn wait(&self) -> Option<Duration> {
        let state = self.state.lock().ok()?;
        let until = state.open_until?;
        until.checked_duration_since(Instant::now())
    }

    pub fn succeeded(&self) {
        if let Ok(mut state) = self.state.lock() {
            *state = State::default();
        }
    }

    /// Counts a failure; true when it (re)opened the breaker.
    pub fn failed(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        state.failures += 1;
        if state.failures >= self.threshold {
            state.open_until = Some(Instant::now() + self.cooldown);
            true
        } else {
            false
        }
    }

    pub fn is_open(&self) -> bool {
        self.wait().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Breaker;
    use std::time::Duration;

    #[test]
    fn opens_after_the_threshold_and_closes_on_success() {
        let breaker = Breaker::new(2, Duration::from_secs(60));
        assert!(!breaker.failed());
        assert!(breaker.wait().is_none());
        assert!(breaker.failed());
        assert!(breaker.wait().is_some_and(|d| d > Duration::from_secs(59)));
        breaker.succeeded();
        assert!(breaker.wait().is_none());
    }
}

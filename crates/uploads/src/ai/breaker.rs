//! A circuit breaker per AI provider: after `threshold` failed calls in a row the
//! provider is left alone for `cooldown`; then one call (the probe) goes through while
//! the others keep waiting, and its outcome decides: a success closes the breaker, a
//! failure opens it for another `cooldown`. While it is open, tasks wait without using
//! an attempt, instead of hammering a provider that is down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a task waits while the probe is out (it is retried then, using no attempt).
const WHILE_PROBING: Duration = Duration::from_secs(1);
/// A probe that has not answered in this long was cut off (its job timed out, its
/// worker stopped): another call may probe. The AI task's own time limit is 5 minutes.
const PROBE_LIMIT: Duration = Duration::from_secs(330);

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
    /// When a probe was let through after the cool-down, while it has not answered.
    probing: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::default(),
        }
    }

    /// How long a call must still wait, or `None` when it may go (closed, or this call
    /// is the probe after the cool-down).
    pub fn wait(&self) -> Option<Duration> {
        let mut state = self.state.lock().ok()?;
        let until = state.open_until?;
        if let Some(left) = until.checked_duration_since(Instant::now()) {
            return Some(left);
        }
        if state
            .probing
            .is_some_and(|since| since.elapsed() < PROBE_LIMIT)
        {
            return Some(WHILE_PROBING);
        }
        state.probing = Some(Instant::now());
        None
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
        state.probing = None;
        if state.failures >= self.threshold {
            state.open_until = Some(Instant::now() + self.cooldown);
            true
        } else {
            false
        }
    }

    /// Open, or half-open with its probe out: calls are held back.
    pub fn is_open(&self) -> bool {
        self.state.lock().is_ok_and(|s| {
            s.probing.is_some() || s.open_until.is_some_and(|until| until > Instant::now())
        })
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

    #[test]
    fn after_the_cool_down_one_probe_decides() {
        let breaker = Breaker::new(1, Duration::ZERO);
        assert!(breaker.failed());
        assert!(breaker.wait().is_none(), "the probe goes");
        assert!(breaker.wait().is_some(), "the others wait for it");
        assert!(breaker.is_open());
        assert!(breaker.failed(), "a failed probe opens it again");
        assert!(
            breaker.wait().is_none(),
            "the next probe after the cool-down"
        );
        breaker.succeeded();
        assert!(breaker.wait().is_none());
        assert!(breaker.wait().is_none(), "closed: everyone goes");
        assert!(!breaker.is_open());
    }
}

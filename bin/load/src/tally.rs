//! What one connection saw, merged into the run's report.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies in microseconds (1 µs to 10 min, 3 significant digits) and answers by status.
#[derive(Debug)]
pub struct Tally {
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer: refused or reset connections, timeouts.
    pub transport_errors: u64,
}

impl Tally {
    pub fn new() -> Result<Self, hdrhistogram::CreationError> {
        Ok(Self::like(&Histogram::new_with_bounds(1, 600_000_000, 3)?))
    }

    /// An empty tally whose histogram has `latency`'s bounds.
    pub fn like(latency: &Histogram<u64>) -> Self {
        Self {
            latency: Histogram::new_from(latency),
            statuses: BTreeMap::new(),
            transport_errors: 0,
        }
    }

    pub fn answered(&mut self, status: u16, latency: Duration) {
        *self.statuses.entry(status).or_default() += 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(micros);
    }

    pub fn merge(&mut self, other: Tally) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }

    /// Requests answered with something other than 2xx or 3xx, plus those not answered.
    pub fn errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| !(200..400).contains(*status))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
    }

    pub fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors
    }

    /// The latency at `quantile`, in milliseconds.
    pub fn millis_at(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_non_2xx_3xx_answers_and_unanswered_requests() {
        let mut a = Tally::new().expect("histogram");
        a.answered(200, Duration::from_millis(1));
        a.answered(302, Duration::from_millis(2));
        let mut b = Tally::like(&a.latency);
        b.answered(503, Duration::from_millis(40));
        b.transport_errors = 2;
        a.merge(b);
        assert_eq!(a.requests(), 5);
        assert_eq!(a.errors(), 3);
        assert!(
            (39.0..=41.0).contains(&a.millis_at(1.0)),
            "{}",
            a.millis_at(1.0)
        );
    }
}

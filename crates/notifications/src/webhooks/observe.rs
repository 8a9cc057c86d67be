//! Webhook metrics per receiver host, with a bounded label set.
//!
//! Operators need to see which third party is failing, so the host is a label. Customers
//! choose the hosts, though: an unbounded label would let the series count grow with every
//! endpoint ever created. The first [`MAX_HOSTS`] hosts a process sees get their own
//! label; later ones are counted under `other`, and the delivery log still names them.

use crate::webhooks::send::{Attempt, Verdict};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

/// Distinct host labels per process. Each host costs about ten series (outcomes, failure
/// kinds, the histogram's buckets), so this bounds the webhook series to a few thousand.
pub const MAX_HOSTS: usize = 200;
/// The label of hosts beyond the bound.
pub const OTHER: &str = "other";

/// The hosts that have a label of their own, first come first served.
#[derive(Debug)]
pub struct HostLabels {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl HostLabels {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// The label for the host of `url`: the host itself while there is room, else `other`.
    pub fn label(&self, url: &str) -> String {
        let host = host_of(url);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&host) {
            return host;
        }
        if seen.len() < self.max {
            seen.insert(host.clone());
            return host;
        }
        OTHER.to_owned()
    }
}

static LABELS: LazyLock<HostLabels> = LazyLock::new(|| HostLabels::new(MAX_HOSTS));

/// The metric label for the receiver at `url` (see the module docs).
pub fn host_label(url: &str) -> String {
    LABELS.label(url)
}

/// The host of `url` (`invalid` when it has none): what events and logs name, never
/// the full URL, whose path or query may carry a customer's token.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "invalid".to_owned())
}

/// Per receiver host: `keel_webhook_attempts_total{host, outcome}`,
/// `keel_webhook_failures_total{host, kind}`, `keel_webhook_latency_seconds{host}`.
pub fn record_attempt(host: &str, attempt: &Attempt) {
    let host = host.to_owned();
    let outcome = match attempt.verdict {
        Verdict::Delivered => "delivered",
        Verdict::Retry { .. } => "retry",
        Verdict::Fail { .. } => "failed",
    };
    metrics::counter!("keel_webhook_attempts_total", "host" => host.clone(), "outcome" => outcome)
        .increment(1);
    if let Verdict::Retry { kind, .. } | Verdict::Fail { kind } = &attempt.verdict {
        metrics::counter!("keel_webhook_failures_total", "host" => host.clone(), "kind" => kind.as_str())
            .increment(1);
    }
    metrics::histogram!("keel_webhook_latency_seconds", "host" => host)
        .record(attempt.latency.as_secs_f64());
}

/// `keel_webhook_breaker_open{host}`: 1 while the last attempt left a breaker open. Not
/// kept for `other`: one gauge shared by many hosts would be reset by any of them
/// succeeding and hide the others' open breakers (their failures still count).
pub fn breaker_gauge(host: &str, open: bool) {
    if host == OTHER {
        return;
    }
    metrics::gauge!("keel_webhook_breaker_open", "host" => host.to_owned()).set(if open {
        1.0
    } else {
        0.0
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_beyond_the_bound_share_one_label() {
        let labels = HostLabels::new(2);
        assert_eq!(labels.label("https://a.example/hook?token=x"), "a.example");
        assert_eq!(labels.label("https://b.example/"), "b.example");
        assert_eq!(labels.label("https://c.example/"), OTHER);
        // Hosts already labelled keep their label.
        assert_eq!(labels.label("http://a.example:8080/other"), "a.example");
        assert_eq!(labels.label("not a url"), OTHER);
    }

    #[test]
    fn the_host_never_carries_the_path_or_credentials() {
        assert_eq!(
            host_of("https://user:pw@hooks.example/t/secret"),
            "hooks.example"
        );
        assert_eq!(host_of("::"), "invalid");
    }
}

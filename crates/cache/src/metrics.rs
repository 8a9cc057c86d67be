//! Metric names and the helpers that record them, kept in one place so dashboards have
//! one file to read. Recorded through the `metrics` facade; the binary installs the
//! exporter. Label values are `&'static str`, so recording allocates nothing.

use metrics::{Counter, counter, gauge};

/// `keel_cache_requests_total{namespace, tier="l1"|"l2", result="hit"|"miss"}`.
/// An L2 read that fails (Redis down) is counted in `keel_cache_errors_total` instead.
pub(crate) fn request(namespace: &'static str, tier: &'static str, hit: bool) {
    request_counter(namespace, tier, hit).increment(1);
}

/// The handle behind [`request`], for callers that keep it.
pub(crate) fn request_counter(namespace: &'static str, tier: &'static str, hit: bool) -> Counter {
    let result = if hit { "hit" } else { "miss" };
    counter!("keel_cache_requests_total", "namespace" => namespace, "tier" => tier, "result" => result)
}

/// `keel_cache_loads_total{namespace}`: calls of a loader (the database behind the cache).
pub(crate) fn load(namespace: &'static str) {
    counter!("keel_cache_loads_total", "namespace" => namespace).increment(1);
}

/// `keel_cache_lock_waits_total{namespace, result="hit"|"timeout"}`: reads that lost the
/// cross-process lock and waited for another process to fill L2.
pub(crate) fn lock_wait(namespace: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "timeout" };
    counter!("keel_cache_lock_waits_total", "namespace" => namespace, "result" => result)
        .increment(1);
}

/// `keel_cache_errors_total{op}`: failed Redis operations (and values that could not be
/// encoded, `op="encode"`).
pub(crate) fn error(op: &'static str) {
    counter!("keel_cache_errors_total", "op" => op).increment(1);
}

/// `keel_cache_invalidations_total{namespace, source="local"|"remote"}`.
pub(crate) fn invalidation(namespace: &'static str, source: &'static str) {
    counter!("keel_cache_invalidations_total", "namespace" => namespace, "source" => source)
        .increment(1);
}

/// `keel_cache_redis_up`: 1 while the last Redis operation succeeded, else 0.
pub(crate) fn redis_up(up: bool) {
    gauge!("keel_cache_redis_up").set(if up { 1.0 } else { 0.0 });
}

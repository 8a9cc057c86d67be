//! The Prometheus recorder behind every `metrics::counter!/gauge!/histogram!` in Keel.
//!
//! Domain crates only use the `metrics` facade; this module installs the one global
//! recorder and renders the text exposition format for `GET /metrics`. Gauges that
//! describe state (pool occupancy, queue backlog) are refreshed by the `/metrics` handler
//! just before rendering, so they are exact at scrape time and cost nothing in between.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets (seconds) shared by every histogram: sub-millisecond cache hits up to
/// minute-long jobs.
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Installs the global recorder once per process; later calls do nothing.
pub fn install() {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        drain_histograms(handle.clone());
        handle
    });
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample until an upkeep folds it into the buckets;
/// a render does one, but a process nobody scrapes (or scrapes rarely) would otherwise
/// hold every request's samples — tens of megabytes per million requests. A thread of its
/// own, since `install` may run before any async runtime exists.
fn drain_histograms(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histogram samples wait for a scrape");
    }
}

/// The current metrics in Prometheus text format (empty before [`install`]).
pub fn render() -> String {
    match HANDLE.get() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "keel_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        "keel_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request duration by method, route template and status."
    );
    describe_counter!(
        "keel_http_connection_errors_total",
        "HTTP connections closed on a client's protocol error, by kind (malformed, timeout, io); not logged."
    );
    describe_gauge!(
        "keel_db_pool_max_size",
        "Configured maximum of the PostgreSQL pool."
    );
    describe_gauge!(
        "keel_db_pool_size",
        "PostgreSQL connections currently open."
    );
    describe_gauge!("keel_db_pool_in_use", "PostgreSQL connections checked out.");
    describe_gauge!(
        "keel_db_pool_waiting",
        "Tasks waiting for a PostgreSQL connection."
    );
    describe_histogram!(
        "keel_db_pool_acquire_seconds",
        Unit::Seconds,
        "Time to get a PostgreSQL connection from the pool."
    );
    describe_counter!(
        "keel_db_pool_timeouts_total",
        "Acquire attempts that timed out (answered 503)."
    );
    describe_counter!(
        "keel_cache_requests_total",
        "Cache lookups by namespace, tier and result."
    );
    describe_counter!(
        "keel_cache_loads_total",
        "Loader calls after both cache tiers missed."
    );
    describe_counter!(
        "keel_cache_errors_total",
        "Failed Redis operations of the cache."
    );
    describe_counter!(
        "keel_cache_invalidations_total",
        "Cache invalidations by namespace and source."
    );
    describe_gauge!(
        "keel_cache_redis_up",
        "1 when the last cache Redis operation succeeded."
    );
    describe_counter!("keel_jobs_enqueued_total", "Jobs enqueued by kind.");
    describe_counter!("keel_jobs_started_total", "Job attempts started by kind.");
    describe_counter!("keel_jobs_succeeded_total", "Jobs that succeeded, by kind.");
    describe_counter!(
        "keel_jobs_failed_total",
        "Job attempts that failed (to be retried), by kind."
    );
    describe_counter!(
        "keel_jobs_dead_total",
        "Jobs that exhausted their attempts, by kind."
    );
    describe_histogram!(
        "keel_job_duration_seconds",
        Unit::Seconds,
        "Job attempt duration by kind and outcome."
    );
    describe_gauge!(
        "keel_queue_jobs",
        "Jobs by kind and state (ready, scheduled, running, dead)."
    );
    describe_gauge!(
        "keel_queue_oldest_ready_age_seconds",
        "Age of the oldest job ready to run, by kind."
    );
    describe_counter!(
        "keel_queue_redeliveries_total",
        "Doorbells re-sent by the reconciler, by reason."
    );
    describe_gauge!(
        "keel_queue_kind_paused",
        "1 while an operator has paused the job kind (workers do not claim it), by kind."
    );
    describe_gauge!(
        "keel_queue_reconciler_last_pass_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last reconciler pass this process ran (one process holds the pass lock at a time)."
    );
    describe_counter!(
        "keel_queue_doorbell_errors_total",
        "Doorbells that could not be pushed to Redis."
    );
}

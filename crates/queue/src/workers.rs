//! The consumer side: one apalis worker per job kind (doorbells → [`Runner`]), the
//! reconciler and the cron schedules, started together and stopped together.

use crate::cron::{self, CronContext};
use crate::doorbell::{Doorbell, queue_config};
use crate::queue::Queue;
use crate::reconciler::Reconciler;
use crate::registry::Registry;
use crate::runner::Runner;
use apalis::prelude::{
    BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt, WorkerError,
};
use apalis_redis::RedisStorage;
use keel_cache::Cache;
use keel_config::Settings;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Running worker machinery of one process.
#[derive(Debug)]
pub struct Workers {
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    grace: Duration,
    name: String,
}

async fn on_doorbell(bell: Doorbell, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    runner.run(bell.job_id).await;
    Ok(())
}

impl Workers {
    /// Starts a worker per registered kind, the reconciler and the periodic schedules.
    /// Returns at once; Redis being down only delays the apalis workers (they retry).
    pub fn start(settings: Arc<Settings>, queue: Queue, cache: Cache, registry: Registry) -> Self {
        let (shutdown, rx) = watch::channel(false);
        let name = worker_name();
        let registry = Arc::new(registry);
        let runner = Arc::new(Runner {
            pool: queue.pool().clone(),
            cache,
            settings: settings.clone(),
            registry: registry.clone(),
            doorbells: queue.doorbells(),
            worker_name: name.clone(),
            shutdown: rx.clone(),
        });
        let mut tasks = JoinSet::new();
        queue.track_kinds(&registry.kinds());
        for kind in registry.kinds() {
            zero_counters(kind);
            let concurrency = registry
                .concurrency_of(kind)
                .unwrap_or(settings.queue.concurrency);
            tasks.spawn(supervise_kind(
                Kind {
                    name: kind,
                    concurrency,
                },
                name.clone(),
                runner.clone(),
                queue.clone(),
                settings.clone(),
                rx.clone(),
            ));
        }
        let reconciler = Reconciler {
            pool: queue.pool().clone(),
            doorbells: queue.doorbells(),
            settings: settings.queue.clone(),
            kinds: registry.kinds(),
        };
        tasks.spawn(reconciler.run(rx.clone()));
        for periodic in &registry.periodic {
            let ctx = CronContext {
                periodic: periodic.clone(),
                queue: queue.clone(),
                settings: settings.queue.clone(),
            };
            tasks.spawn(cron::run(
                ctx,
                format!("cron:{}@{name}", periodic.name),
                rx.clone(),
            ));
        }
        tracing::info!(worker = %name, kinds = ?registry.kinds(), periodic = registry.periodic.len(), "workers started");
        Self {
            shutdown,
            tasks,
            grace: settings.queue.shutdown_grace(),
            name,
        }
    }

    /// This process's unique worker name (`host-pid-random`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops fetching doorbells, lets running jobs finish within the shutdown grace
    /// (then releases their leases), and waits for everything to stop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        // Grace for the jobs, plus time to write their release.
        let limit = self.grace + Duration::from_secs(5);
        let drained = tokio::time::timeout(limit, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("workers did not stop within {limit:?}; aborting");
            self.tasks.abort_all();
        }
        tracing::info!(worker = %self.name, "workers stopped");
    }
}

/// A job kind and how many of its jobs run at once in this process.
#[derive(Debug, Clone, Copy)]
struct Kind {
    name: &'static str,
    concurrency: usize,
}

/// Keeps one kind's apalis worker running: (re)connects to Redis with backoff and
/// restarts the worker, under a fresh name, if it stops with an error.
async fn supervise_kind(
    Kind {
        name: kind,
        concurrency,
    }: Kind,
    process_name: String,
    runner: Arc<Runner>,
    queue: Queue,
    settings: Arc<Settings>,
    mut shutdown: watch::Receiver<bool>,
) {
    let doorbells = queue.doorbells();
    let mut backoff = Duration::from_millis(200);
    let mut generation = 0u32;
    while !*shutdown.borrow() {
        let conn = match doorbells.connection().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(job.kind = kind, error = %e, "worker cannot reach Redis; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        generation += 1;
        let storage: RedisStorage<Doorbell> =
            RedisStorage::new(conn).with_config(queue_config(doorbells.prefix(), kind));
        let worker = WorkerBuilder::new(format!("{kind}@{process_name}.{generation}"))
            .backend(storage.poll_with_interval(settings.queue.poll_interval()))
            .concurrency(concurrency)
            .data(runner.clone())
            .build(on_doorbell);
        let mut stop_rx = shutdown.clone();
        let stop = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            Ok::<(), WorkerError>(())
        };
        match worker.run_until(stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(job.kind = kind, error = %e, "worker stopped; restarting");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        }
    }
}

/// `host-pid-random`: unique per process, so a restarted process never collides with
/// the registration its predecessor left in Redis.
fn worker_name() -> String {
    format!(
        "{}-{:06x}",
        keel_telemetry::instance(),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// Creates each job counter of `kind` at 0 when the worker starts: Prometheus's
/// `increase()` cannot see the first increment of a series that appears already at 1,
/// so an alert on the first dead job of a kind would never fire.
fn zero_counters(kind: &'static str) {
    for name in [
        "keel_jobs_started_total",
        "keel_jobs_succeeded_total",
        "keel_jobs_failed_total",
        "keel_jobs_dead_total",
    ] {
        metrics::counter!(name, "kind" => kind).increment(0);
    }
}

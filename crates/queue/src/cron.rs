//! Periodic jobs: every worker process runs the schedule (apalis-cron), and every tick
//! is enqueued with the tick's timestamp as unique key, so whichever process inserts the
//! row first wins and the job runs once per tick however many processes run.

use crate::doorbell::Ring;
use crate::queue::Queue;
use crate::registry::Periodic;
use crate::repo::{self, NewJob};
use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, Utc};
use keel_config::QueueSettings;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) struct CronContext {
    pub periodic: Periodic,
    pub queue: Queue,
    pub settings: QueueSettings,
}

async fn on_tick(tick: Tick, ctx: Data<Arc<CronContext>>) -> Result<(), BoxDynError> {
    let p = &ctx.periodic;
    let at =
        DateTime::<Utc>::from_timestamp(tick.get_timestamp() as i64, 0).unwrap_or_else(Utc::now);
    let payload = (p.make)()?;
    let unique_key = format!("cron:{}", at.to_rfc3339());
    let max_attempts = p.max_attempts.unwrap_or(ctx.settings.default_max_attempts);
    let timeout = p.timeout.unwrap_or(ctx.settings.default_timeout());
    let mut conn = ctx.queue.pool().get().await?;
    let inserted = repo::insert(
        &mut conn,
        NewJob {
            id: Uuid::now_v7(),
            kind: p.name,
            payload,
            max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            run_at: Utc::now(),
            trace_context: None,
            unique_key: Some(&unique_key),
        },
    )
    .await?;
    drop(conn);
    if let Some(job_id) = inserted {
        metrics::counter!("keel_jobs_enqueued_total", "kind" => p.name).increment(1);
        tracing::debug!(job.kind = p.name, job.id = %job_id, tick = %at, "periodic job enqueued");
        ctx.queue
            .doorbells()
            .ring(&[Ring {
                kind: p.name.to_owned(),
                job_id,
                run_at: Utc::now(),
            }])
            .await;
    }
    Ok(())
}

/// Runs the schedule of one periodic job until `shutdown` flips.
pub(crate) async fn run(
    ctx: CronContext,
    worker_name: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let schedule = ctx.periodic.schedule.clone();
    let name = ctx.periodic.name;
    let worker = WorkerBuilder::new(worker_name)
        .backend(CronScheduler::new(schedule))
        .data(Arc::new(ctx))
        .build(on_tick);
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        Ok::<(), apalis::prelude::WorkerError>(())
    };
    if let Err(e) = worker.run_until(stop).await {
        tracing::error!(job.kind = name, error = %e, "cron scheduler stopped");
    }
}

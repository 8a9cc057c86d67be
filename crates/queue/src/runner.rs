//! One attempt of one job: claim the row, run the handler inside the job's trace, record
//! the outcome.

use crate::backoff;
use crate::doorbell::{Doorbells, Ring};
use crate::job::{JobContext, JobError};
use crate::registry::Registry;
use crate::repo::{self, Claimed};
use chrono::Utc;
use futures::FutureExt;
use keel_cache::Cache;
use keel_config::Settings;
use keel_persistence::DbPool;
use keel_telemetry::propagation::{self, TraceContext};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

/// How far a lease outlasts the attempt's timeout: time to write the outcome after a
/// timed-out handler is dropped, before another worker may take the job over.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

pub(crate) struct Runner {
    pub pool: DbPool,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    pub registry: Arc<Registry>,
    pub doorbells: Arc<Doorbells>,
    pub worker_name: String,
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("worker", &self.worker_name)
            .finish()
    }
}

enum Outcome {
    Succeeded,
    Failed(JobError),
    TimedOut(Duration),
    Panicked(String),
    /// Shutdown grace ran out before the handler finished.
    Interrupted,
}

impl Runner {
    /// Handles one doorbell. Never fails: whatever goes wrong is recorded on the row, and
    /// a row this call could not update is recovered by lease expiry and the reconciler.
    pub async fn run(&self, job_id: Uuid) {
        let claimed = match self.claim(job_id).await {
            Ok(Some(claimed)) => claimed,
            // Taken by another worker, finished, not yet due, or gone: a stale doorbell.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job.id = %job_id, error = %e, "could not claim job; it will be redelivered");
                return;
            }
        };
        let kind = claimed.kind.clone();
        metrics::counter!("keel_jobs_started_total", "kind" => kind.clone()).increment(1);
        let span = tracing::info_span!(
            "job.run",
            otel.name = %format!("job {kind}"),
            otel.kind = "consumer",
            job.id = %claimed.id,
            job.kind = %kind,
            job.attempt = claimed.attempts,
            job.max_attempts = claimed.max_attempts,
            job.outcome = tracing::field::Empty,
            org.id = tracing::field::Empty,
        );
        if let Some(parent) = claimed
            .trace_context
            .clone()
            .and_then(|v| serde_json::from_value::<TraceContext>(v).ok())
        {
            propagation::set_parent(&span, &parent);
        }
        let started = Instant::now();
        let outcome = self
            .execute(&claimed, span.clone())
            .instrument(span.clone())
            .await;
        let label = self
            .record(&claimed, outcome)
            .instrument(span.clone())
            .await;
        span.record("job.outcome", label);
        metrics::histogram!("keel_job_duration_seconds", "kind" => kind, "outcome" => label)
            .record(started.elapsed().as_secs_f64());
    }

    async fn claim(&self, job_id: Uuid) -> keel_persistence::DbResult<Option<Claimed>> {
        let mut conn = self.pool.get().await?;
        repo::claim(
            &mut conn,
            job_id,
            &self.worker_name,
            LEASE_MARGIN.as_millis() as i64,
        )
        .await
    }

    async fn execute(&self, claimed: &Claimed, span: tracing::Span) -> Outcome {
        let Some(spec) = self.registry.jobs.get(claimed.kind.as_str()) else {
            return Outcome::Failed(JobError::permanent(anyhow::anyhow!(
                "no handler registered for job kind {:?} in this worker",
                claimed.kind
            )));
        };
        let ctx = JobContext {
            pool: self.pool.clone(),
            cache: self.cache.clone(),
            settings: self.settings.clone(),
            job_id: claimed.id,
            attempt: claimed.attempts as u32,
            max_attempts: claimed.max_attempts as u32,
            span,
        };
        let timeout = Duration::from_millis(claimed.timeout_ms as u64);
        let work = std::panic::AssertUnwindSafe((spec.handler)(ctx, claimed.payload.clone()))
            .catch_unwind();
        // On a task of its own: the worker's task, which also polls Redis for doorbells,
        // is then woken once when the job ends instead of at every await of the job (a
        // long job woke it, and so polled Redis, hundreds of times a second).
        let mut task = tokio::spawn(work.in_current_span());
        let outcome = tokio::select! {
            result = tokio::time::timeout(timeout, &mut task) => match result {
                Ok(Ok(Ok(Ok(())))) => Outcome::Succeeded,
                Ok(Ok(Ok(Err(e)))) => Outcome::Failed(e),
                Ok(Ok(Err(panic))) => Outcome::Panicked(panic_message(panic.as_ref())),
                Ok(Err(lost)) => Outcome::Panicked(lost.to_string()),
                Err(_) => Outcome::TimedOut(timeout),
            },
            () = self.shutdown_grace_over() => Outcome::Interrupted,
        };
        // A job cut off (time limit, shutdown) must not run on unseen.
        task.abort();
        outcome
    }

    /// Resolves once shutdown was requested and the grace period has passed.
    async fn shutdown_grace_over(&self) {
        let mut rx = self.shutdown.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            // The sender is gone without a shutdown: never interrupt.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.settings.queue.shutdown_grace()).await;
    }

    /// Writes the outcome; returns its metric label.
    async fn record(&self, claimed: &Claimed, outcome: Outcome) -> &'static str {
        let kind = claimed.kind.clone();
        let attempt = claimed.attempts;
        let exhausted = attempt >= claimed.max_attempts;
        let mut requested_delay = None;
        let (error, permanent) = match outcome {
            Outcome::Succeeded => {
                let result = self
                    .with_conn(|conn| Box::pin(repo::complete(conn, claimed.id, attempt)))
                    .await;
                if result == Some(true) {
                    metrics::counter!("keel_jobs_succeeded_total", "kind" => kind).increment(1);
                }
                return "succeeded";
            }
            Outcome::Interrupted => {
                self.with_conn(|conn| {
                    Box::pin(repo::give_back(
                        conn,
                        claimed.id,
                        attempt,
                        None,
                        "released at worker shutdown",
                    ))
                })
                .await;
                tracing::info!("job released at shutdown; it will run again");
                return "released";
            }
            Outcome::Failed(JobError::Defer(delay, reason)) => {
                return self.defer(claimed, delay, reason).await;
            }
            Outcome::Failed(JobError::Permanent(e)) => (format!("permanent: {e:#}"), true),
            Outcome::Failed(JobError::Retry(e)) => (format!("{e:#}"), false),
            Outcome::Failed(JobError::RetryAfter(delay, e)) => {
                requested_delay = Some(delay);
                (format!("{e:#}"), false)
            }
            Outcome::TimedOut(t) => (format!("timed out after {t:?}"), false),
            Outcome::Panicked(msg) => (format!("panicked: {msg}"), false),
        };
        let retry_at = (!permanent && !exhausted).then(|| {
            let q = &self.settings.queue;
            let delay = requested_delay.unwrap_or_else(|| {
                backoff::delay(attempt as u32, q.backoff_base(), q.backoff_max())
            });
            after(delay)
        });
        let (id, message) = (claimed.id, error.clone());
        let recorded = self
            .with_conn(move |conn| {
                Box::pin(async move { repo::fail(conn, id, attempt, &message, retry_at).await })
            })
            .await;
        if recorded != Some(true) {
            return "lost";
        }
        match retry_at {
            Some(run_at) => {
                tracing::warn!(error = %error, retry_at = %run_at, "job attempt failed; will retry");
                metrics::counter!("keel_jobs_failed_total", "kind" => kind.clone()).increment(1);
                self.doorbells
                    .ring(&[Ring {
                        kind,
                        job_id: claimed.id,
                        run_at,
                    }])
                    .await;
                "failed"
            }
            None => {
                tracing::error!(error = %error, "job is dead");
                metrics::counter!("keel_jobs_dead_total", "kind" => kind).increment(1);
                "dead"
            }
        }
    }

    /// Puts a job the handler did not attempt back, due after `delay`, with its attempt
    /// given back.
    async fn defer(&self, claimed: &Claimed, delay: Duration, reason: String) -> &'static str {
        let (id, attempt, run_at) = (claimed.id, claimed.attempts, after(delay));
        let recorded = self
            .with_conn(move |conn| {
                Box::pin(
                    async move { repo::give_back(conn, id, attempt, Some(run_at), &reason).await },
                )
            })
            .await;
        if recorded != Some(true) {
            return "lost";
        }
        self.doorbells
            .ring(&[Ring {
                kind: claimed.kind.clone(),
                job_id: id,
                run_at,
            }])
            .await;
        "deferred"
    }

    /// Runs one statement on a pooled connection; `None` (logged) when the database
    /// failed — the lease then expires and the job is redelivered.
    async fn with_conn<T, F>(&self, f: F) -> Option<T>
    where
        F: for<'c> FnOnce(
            &'c mut keel_persistence::AsyncPgConnection,
        ) -> futures::future::BoxFuture<'c, keel_persistence::DbResult<T>>,
    {
        let result = match self.pool.get().await {
            Ok(mut conn) => f(&mut conn).await,
            Err(e) => Err(e),
        };
        result
            .inspect_err(|e| tracing::error!(error = %e, "could not record job outcome; the lease will expire"))
            .ok()
    }
}

fn after(delay: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

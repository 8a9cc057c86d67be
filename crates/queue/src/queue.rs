//! The producer side: enqueue in the caller's transaction, ring after commit, inspect.

use crate::doorbell::{DoorbellError, Doorbells, Ring};
use crate::inspect::{self, JobStatus, KindCounts};
use crate::job::Job;
use crate::operate::{self, DeadFilter, JobDetail, PausedKind};
use crate::repo::{self, NewJob};
use chrono::{DateTime, Utc};
use keel_config::{QueueSettings, Settings};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbError, DbPool, DbResult};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long backlog numbers are reused between `/metrics` scrapes, so a burst of scrapes
/// costs one query.
const BACKLOG_MEMO: Duration = Duration::from_secs(5);

/// A committed-or-not job row whose doorbell still has to be rung: pass it to
/// [`Queue::ring`] after the transaction commits.
#[must_use = "ring the doorbell after the transaction commits (the reconciler would otherwise start it late)"]
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub id: Uuid,
    kind: &'static str,
    run_at: DateTime<Utc>,
}

/// Options of [`Queue::enqueue_with`].
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Run no earlier than this long from now.
    pub delay: Option<Duration>,
    /// At most one job of this kind with this key ever exists; enqueueing it again does
    /// nothing and returns `None`.
    pub unique_key: Option<String>,
}

/// The handle every crate enqueues through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: DbPool,
    doorbells: Arc<Doorbells>,
    settings: QueueSettings,
    backlog: Mutex<Backlog>,
}

#[derive(Debug, Default)]
struct Backlog {
    taken: Option<Instant>,
    kinds_seen: BTreeSet<String>,
    /// Kinds whose `keel_queue_kind_paused` was last set to 1.
    paused_seen: BTreeSet<String>,
}

impl Queue {
    pub fn new(settings: &Settings, pool: DbPool) -> Result<Self, DoorbellError> {
        // At 0 from the start, so `rate()` sees the first failed push.
        metrics::counter!("keel_queue_doorbell_errors_total").increment(0);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                doorbells: Arc::new(Doorbells::new(&settings.redis)?),
                settings: settings.queue.clone(),
                backlog: Mutex::new(Backlog::default()),
            }),
        })
    }

    /// Makes the backlog gauges of `kinds` read 0 at the next scrape when none of their
    /// jobs is waiting, rather than be absent: a worker knows its kinds before any job
    /// of them exists, and a dashboard or alert should see them from the start.
    pub(crate) fn track_kinds(&self, kinds: &[&'static str]) {
        if let Ok(mut memo) = self.inner.backlog.lock() {
            memo.kinds_seen
                .extend(kinds.iter().map(|k| (*k).to_owned()));
        }
    }

    pub(crate) fn doorbells(&self) -> Arc<Doorbells> {
        self.inner.doorbells.clone()
    }

    pub(crate) fn pool(&self) -> &DbPool {
        &self.inner.pool
    }

    /// Writes the job row on `conn` — inside the caller's transaction, so the job exists
    /// if and only if the caller's change commits. The W3C context of the current span is
    /// stored with it, so the worker's span continues this trace.
    pub async fn enqueue<J: Job>(
        &self,
        conn: &mut AsyncPgConnection,
        job: &J,
    ) -> DbResult<Enqueued> {
        self.enqueue_with(conn, job, EnqueueOptions::default())
            .await?
            .ok_or(DbError::Conflict { constraint: None })
    }

    /// [`Queue::enqueue`] with a delay and/or a unique key; `None` when the unique key
    /// already exists for this kind.
    pub async fn enqueue_with<J: Job>(
        &self,
        conn: &mut AsyncPgConnection,
        job: &J,
        options: EnqueueOptions,
    ) -> DbResult<Option<Enqueued>> {
        let payload = serde_json::to_value(job)
            .map_err(|e| DbError::internal("serialising a job payload", e))?;
        let run_at = Utc::now()
            + options
                .delay
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .unwrap_or_else(chrono::Duration::zero);
        let trace_context =
            keel_telemetry::propagation::current().and_then(|cx| serde_json::to_value(cx).ok());
        let max_attempts = J::MAX_ATTEMPTS.unwrap_or(self.inner.settings.default_max_attempts);
        let timeout = J::TIMEOUT.unwrap_or(self.inner.settings.default_timeout());
        let id = repo::insert(
            conn,
            NewJob {
                id: Uuid::now_v7(),
                kind: J::NAME,
                payload,
                max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
                timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
                run_at,
                trace_context,
                unique_key: options.unique_key.as_deref(),
            },
        )
        .await?;
        Ok(id.map(|id| Enqueued {
            id,
            kind: J::NAME,
            run_at,
        }))
    }

    /// Pushes the doorbells of committed jobs. Never fails: a doorbell that cannot be
    /// pushed (Redis down) is rung later by the reconciler.
    pub async fn ring(&self, jobs: impl IntoIterator<Item = Enqueued>) {
        let rings: Vec<Ring> = jobs
            .into_iter()
            .map(|e| {
                metrics::counter!("keel_jobs_enqueued_total", "kind" => e.kind).increment(1);
                Ring {
                    kind: e.kind.to_owned(),
                    job_id: e.id,
                    run_at: e.run_at,
                }
            })
            .collect();
        self.inner.doorbells.ring(&rings).await;
    }

    /// Enqueues in a transaction of its own and rings: for callers with no change of
    /// their own to commit alongside the job.
    pub async fn enqueue_now<J: Job>(&self, job: &J) -> DbResult<Uuid> {
        let enqueued = {
            let mut conn = self.inner.pool.get().await?;
            self.enqueue(&mut conn, job).await?
        };
        let id = enqueued.id;
        self.ring([enqueued]).await;
        Ok(id)
    }

    /// The job's current state, or `None` if no such job exists.
    pub async fn status(&self, id: Uuid) -> DbResult<Option<JobStatus>> {
        let mut conn = self.inner.pool.get().await?;
        inspect::status(&mut conn, id).await
    }

    /// Backlog by kind: ready, scheduled, running and dead counts, oldest ready age.
    pub async fn counts(&self) -> DbResult<Vec<KindCounts>> {
        let mut conn = self.inner.pool.get().await?;
        inspect::counts(&mut conn).await
    }

    /// Dead jobs, newest first; pass the last row's `(finished_at, id)` for the next page.
    pub async fn dead_jobs(
        &self,
        limit: i64,
        after: Option<(DateTime<Utc>, Uuid)>,
    ) -> DbResult<Vec<JobStatus>> {
        let mut conn = self.inner.pool.get().await?;
        operate::dead_matching(&mut conn, &DeadFilter::default(), limit, after).await
    }

    /// Gives a dead job a fresh set of attempts and rings for it. `false` when the job does
    /// not exist or is not dead.
    pub async fn retry_dead(&self, id: Uuid) -> DbResult<bool> {
        let revived = {
            let mut conn = self.inner.pool.get().await?;
            inspect::revive(&mut conn, id).await?
        };
        let Some(revived) = revived else {
            return Ok(false);
        };
        self.inner
            .doorbells
            .ring(&[Ring {
                kind: revived.kind,
                job_id: id,
                run_at: revived.run_at,
            }])
            .await;
        Ok(true)
    }

    /// One job whole (payload, trace context, lease holder), for an operator.
    pub async fn detail(&self, id: Uuid) -> DbResult<Option<JobDetail>> {
        let mut conn = self.inner.pool.get().await?;
        operate::detail(&mut conn, id).await
    }

    /// Dead jobs that match `filter`, newest first, keyset-paginated like [`Queue::dead_jobs`].
    pub async fn dead_matching(
        &self,
        filter: &DeadFilter,
        limit: i64,
        after: Option<(DateTime<Utc>, Uuid)>,
    ) -> DbResult<Vec<JobStatus>> {
        let mut conn = self.inner.pool.get().await?;
        operate::dead_matching(&mut conn, filter, limit, after).await
    }

    /// Gives every dead job matching `filter` (at most `limit`) a fresh set of attempts
    /// and rings for them; how many.
    pub async fn retry_matching(&self, filter: &DeadFilter, limit: i64) -> DbResult<usize> {
        let revived = {
            let mut conn = self.inner.pool.get().await?;
            operate::revive_matching(&mut conn, filter, limit).await?
        };
        let rings: Vec<Ring> = revived
            .into_iter()
            .map(|r| Ring {
                kind: r.kind,
                job_id: r.id,
                run_at: r.run_at,
            })
            .collect();
        self.inner.doorbells.ring(&rings).await;
        Ok(rings.len())
    }

    /// Deletes the dead jobs matching `filter` (only `only`, when given; at most
    /// `limit`); how many. A job that is not dead is never deleted.
    pub async fn discard_dead(
        &self,
        filter: &DeadFilter,
        only: Option<Uuid>,
        limit: i64,
    ) -> DbResult<usize> {
        let mut conn = self.inner.pool.get().await?;
        operate::discard(&mut conn, filter, only, limit).await
    }

    /// The job kinds operators paused.
    pub async fn paused_kinds(&self) -> DbResult<Vec<PausedKind>> {
        let mut conn = self.inner.pool.get().await?;
        operate::paused(&mut conn).await
    }

    /// Stops workers claiming jobs of `kind` (`by` names who asked); false when it was
    /// paused already.
    pub async fn pause(&self, kind: &str, by: &str) -> DbResult<bool> {
        let mut conn = self.inner.pool.get().await?;
        operate::pause(&mut conn, kind, by).await
    }

    /// Lets workers claim `kind` again: its waiting jobs are rung by the reconciler's next
    /// pass. False when it was not paused.
    pub async fn resume(&self, kind: &str) -> DbResult<bool> {
        let mut conn = self.inner.pool.get().await?;
        conn.transaction(async |conn| operate::resume(conn, kind).await)
            .await
    }

    /// Runs one reconciler pass now (as `keel jobs reconcile` does); `ran` is false when
    /// another process's reconciler holds the lock.
    pub async fn reconcile_now(&self) -> DbResult<crate::PassReport> {
        crate::reconciler::Reconciler {
            pool: self.inner.pool.clone(),
            doorbells: self.inner.doorbells.clone(),
            settings: self.inner.settings.clone(),
            kinds: Vec::new(),
        }
        .pass()
        .await
    }

    /// Removes what Redis still holds about handled doorbells of these job kinds (worker
    /// processes do this every minute); returns how many entries went.
    pub async fn vacuum_doorbells(&self, kinds: &[&'static str]) -> Result<usize, DoorbellError> {
        self.inner.doorbells.vacuum(kinds).await
    }

    /// Refreshes the backlog gauges (`keel_queue_jobs`, `keel_queue_oldest_ready_age_seconds`)
    /// from SQL, at most once per few seconds however often `/metrics` is scraped.
    pub async fn record_metrics(&self) {
        {
            let Ok(mut memo) = self.inner.backlog.lock() else {
                return;
            };
            if memo.taken.is_some_and(|t| t.elapsed() < BACKLOG_MEMO) {
                return;
            }
            memo.taken = Some(Instant::now());
        }
        let (counts, paused) = match tokio::try_join!(self.counts(), self.paused_kinds()) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "queue backlog not refreshed");
                return;
            }
        };
        let Ok(mut memo) = self.inner.backlog.lock() else {
            return;
        };
        // `keel_queue_kind_paused`: 1 while an operator holds a kind back, so that an alert
        // on its growing backlog can tell a pause from an outage.
        let paused: BTreeSet<String> = paused.into_iter().map(|p| p.kind).collect();
        for kind in memo
            .kinds_seen
            .iter()
            .chain(&memo.paused_seen)
            .chain(&paused)
        {
            let value = if paused.contains(kind) { 1.0 } else { 0.0 };
            metrics::gauge!("keel_queue_kind_paused", "kind" => kind.clone()).set(value);
        }
        memo.paused_seen = paused;
        // Kinds that drained since the last scrape must read 0, not their last value.
        let current: BTreeSet<String> = counts.iter().map(|c| c.kind.clone()).collect();
        for gone in memo.kinds_seen.difference(&current) {
            set_backlog(&KindCounts {
                kind: gone.clone(),
                ready: 0,
                scheduled: 0,
                running: 0,
                dead: 0,
                oldest_ready_age_seconds: 0.0,
            });
        }
        for c in &counts {
            set_backlog(c);
        }
        memo.kinds_seen = current;
    }
}

fn set_backlog(c: &KindCounts) {
    for (state, n) in [
        ("ready", c.ready),
        ("scheduled", c.scheduled),
        ("running", c.running),
        ("dead", c.dead),
    ] {
        metrics::gauge!("keel_queue_jobs", "kind" => c.kind.clone(), "state" => state)
            .set(n as f64);
    }
    metrics::gauge!("keel_queue_oldest_ready_age_seconds", "kind" => c.kind.clone())
        .set(c.oldest_ready_age_seconds);
}

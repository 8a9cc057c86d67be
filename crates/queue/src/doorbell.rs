//! Doorbells: job ids pushed to apalis queues in Redis after the job row commits.
//!
//! A doorbell carries no payload, only the id of a `queue_jobs` row, so a lost, duplicated
//! or stale doorbell can never lose or corrupt a job: the row is the record, the claim is
//! conditional, and the reconciler rings again for rows nobody claimed.

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_core::backend::Vacuum;
use apalis_redis::{ConnectionManager, RedisStorage};
use chrono::{DateTime, Utc};
use keel_config::RedisSettings;
use redis::aio::ConnectionManagerConfig;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The apalis task: "job `job_id` may be ready, go and claim it".
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Doorbell {
    pub job_id: Uuid,
}

/// A doorbell to push: which queue, which row, and from when it may be claimed.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    pub kind: String,
    pub job_id: Uuid,
    pub run_at: DateTime<Utc>,
}

/// Pushes doorbells over one lazily opened, self-reconnecting Redis connection. Opening
/// it lazily keeps `keel serve` starting (and answering) while Redis is down: enqueues
/// still commit, and the reconciler rings once Redis is back.
pub(crate) struct Doorbells {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for Doorbells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbells")
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DoorbellError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("apalis push failed: {0}")]
    Push(String),
}

impl Doorbells {
    pub fn new(settings: &RedisSettings) -> Result<Self, DoorbellError> {
        Ok(Self {
            client: redis::Client::open(settings.url.expose().as_str())?,
            conn: OnceCell::new(),
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout(),
        })
    }

    /// The connection, opened on first use (bounded by the Redis timeout).
    pub async fn connection(&self) -> Result<ConnectionManager, DoorbellError> {
        let conn = tokio::time::timeout(
            self.timeout * 2,
            self.conn.get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(config).await
            }),
        )
        .await
        .map_err(|_| DoorbellError::Timeout(self.timeout * 2))??;
        Ok(conn.clone())
    }

    /// The apalis storage of one job kind's queue.
    pub fn storage(&self, conn: ConnectionManager, kind: &str) -> RedisStorage<Doorbell> {
        RedisStorage::new(conn).with_config(queue_config(&self.prefix, kind))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Pushes each ring; failures are counted and logged, never returned: the reconciler
    /// re-rings any row that stays unclaimed.
    pub async fn ring(&self, rings: &[Ring]) {
        if rings.is_empty() {
            return;
        }
        let conn = match self.connection().await {
            Ok(conn) => conn,
            Err(e) => {
                metrics::counter!("keel_queue_doorbell_errors_total").increment(rings.len() as u64);
                tracing::debug!(error = %e, count = rings.len(), "doorbells not pushed; the reconciler will ring");
                return;
            }
        };
        for ring in rings {
            let storage = self.storage(conn.clone(), &ring.kind);
            let (job_id, timeout) = (ring.job_id, self.timeout);
            let wait = (ring.run_at - Utc::now()).to_std().unwrap_or_default();
            if wait.is_zero() || wait > NEAR {
                push(storage, job_id, &ring.kind, ring_time(ring.run_at), timeout).await;
            } else {
                // Near retries are timed here: apalis schedules in whole seconds, which
                // would flatten a backoff of 100, 200, 400 ms. Should this process stop
                // first, the reconciler rings the row.
                let kind = ring.kind.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    push(storage, job_id, &kind, SystemTime::now(), timeout).await;
                });
            }
        }
    }
}

/// Delays up to this long are timed in process rather than by apalis' scheduler.
const NEAR: Duration = Duration::from_secs(3);

async fn push(
    mut storage: RedisStorage<Doorbell>,
    job_id: Uuid,
    kind: &str,
    at: SystemTime,
    timeout: Duration,
) {
    let task = TaskBuilder::new(Doorbell { job_id })
        .run_at_time(at)
        .build();
    let error = match tokio::time::timeout(timeout, storage.push_task(task)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("timed out after {timeout:?}"),
    };
    metrics::counter!("keel_queue_doorbell_errors_total").increment(1);
    tracing::debug!(job.id = %job_id, job.kind = %kind, %error, "doorbell not pushed");
}

/// apalis schedules in whole seconds, truncating. A future `run_at` is rounded up, so the
/// doorbell rings at most a second late rather than early (when the claim would refuse it
/// and the job would wait for the reconciler); a due one rings now.
fn ring_time(run_at: DateTime<Utc>) -> SystemTime {
    let at = SystemTime::from(run_at);
    if run_at > Utc::now() {
        at + Duration::from_millis(999)
    } else {
        at
    }
}

impl Doorbells {
    /// Deletes what apalis keeps in Redis about doorbells already handled: their data and
    /// metadata entries and the "done" set. Postgres has the record, so none of it is
    /// needed, and without this Redis memory grows with every job ever run.
    pub async fn vacuum(&self, kinds: &[&'static str]) -> Result<usize, DoorbellError> {
        let mut conn = self.connection().await?;
        let mut removed = 0;
        for kind in kinds {
            let mut storage = self.storage(conn.clone(), kind);
            removed += storage
                .vacuum()
                .await
                .map_err(|e| DoorbellError::Push(e.to_string()))?;
            let done = storage.get_config().done_jobs_set();
            let _: () = redis::cmd("DEL").arg(done).query_async(&mut conn).await?;
        }
        Ok(removed)
    }
}

/// One apalis queue per job kind, named `{prefix}:jobs:{kind}`, so kinds do not block
/// each other and every key lives under the deployment's prefix. Results stay on (without
/// them apalis never acknowledges a doorbell, leaving it "running" in Redis); events are
/// off: nobody listens, Postgres has the record.
pub(crate) fn queue_config(prefix: &str, kind: &str) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(format!("{prefix}:jobs:{kind}"))
        .emit_events(false)
        // A worker sometimes misses the wake-up of its poll interval (seen under load:
        // a doorbell waited until the next heartbeat, 30 s by default); the heartbeat
        // also fetches, so a short one bounds that wait. Orphans still take a minute.
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(60)
}

/// Also the longest a pushed doorbell can wait for a fetch when a wake-up is lost.
const HEARTBEAT: Duration = Duration::from_secs(1);

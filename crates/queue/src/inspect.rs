//! Reading the queue's state — straight from SQL, since apalis-redis's own statistics
//! are not reliable — and retrying dead jobs.

use crate::operate::Revived;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use serde::Serialize;
use uuid::Uuid;

keel_persistence::text_enum! {
    /// Where a job is in its life (`queue_jobs.state`).
    pub enum JobState {
        /// Waiting for its run time or a worker.
        Pending = "pending",
        /// Claimed by a worker, under a lease.
        Running = "running",
        /// Done; deleted after `queue.retain_succeeded_hours`.
        Succeeded = "succeeded",
        /// Failed its last attempt (or permanently); waits for a retry from an operator.
        Dead = "dead",
    }
}

/// One job as operators and API consumers see it (the payload is left out: it may hold
/// personal data and can be large).
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct JobStatus {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub state: JobState,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
    /// When a pending job may next run.
    #[diesel(sql_type = Timestamptz)]
    pub run_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

pub(crate) const STATUS_COLUMNS: &str = "id, kind, state, attempts, max_attempts, run_at, last_error, created_at, updated_at, finished_at";

pub(crate) async fn status(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<JobStatus>> {
    let rows: Vec<JobStatus> = sql_query(format!(
        "SELECT {STATUS_COLUMNS} FROM queue_jobs WHERE id = $1"
    ))
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// Backlog of one job kind. Succeeded jobs are not backlog and are not counted.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct KindCounts {
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Pending and due now.
    #[diesel(sql_type = BigInt)]
    pub ready: i64,
    /// Pending, waiting for a later run time (retry backoff, delayed jobs).
    #[diesel(sql_type = BigInt)]
    pub scheduled: i64,
    #[diesel(sql_type = BigInt)]
    pub running: i64,
    #[diesel(sql_type = BigInt)]
    pub dead: i64,
    /// How long the oldest ready job has been waiting (0 when none is ready).
    #[diesel(sql_type = Double)]
    pub oldest_ready_age_seconds: f64,
}

pub(crate) async fn counts(conn: &mut AsyncPgConnection) -> DbResult<Vec<KindCounts>> {
    sql_query(
        "SELECT kind, \
             count(*) FILTER (WHERE state = 'pending' AND run_at <= now()) AS ready, \
             count(*) FILTER (WHERE state = 'pending' AND run_at > now()) AS scheduled, \
             count(*) FILTER (WHERE state = 'running') AS running, \
             count(*) FILTER (WHERE state = 'dead') AS dead, \
             COALESCE(EXTRACT(EPOCH FROM now() - min(run_at) FILTER (WHERE state = 'pending' AND run_at <= now())), 0)::float8 \
                 AS oldest_ready_age_seconds \
         FROM queue_jobs WHERE state <> 'succeeded' GROUP BY kind ORDER BY kind",
    )
    .load(conn)
    .await
    .map_err(Into::into)
}

/// Makes a dead job pending again with a fresh set of attempts (its last error is kept
/// for reference until the next attempt). `None` when the job is missing or not dead.
pub(crate) async fn revive(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<Revived>> {
    let rows: Vec<Revived> = sql_query(
        "UPDATE queue_jobs SET state = 'pending', attempts = 0, run_at = now(), doorbell_at = now(), \
             finished_at = NULL, locked_by = NULL, updated_at = now() \
         WHERE id = $1 AND state = 'dead' RETURNING id, kind, run_at",
    )
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

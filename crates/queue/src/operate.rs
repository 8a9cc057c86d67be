//! What an operator does to the queue beyond one job's retry: read a job whole, find dead
//! jobs by kind and error, retry or discard all that match, and pause a job kind.
//!
//! A paused kind's jobs stay where they are: workers do not claim them (a doorbell for
//! one is dropped), and the reconciler neither re-rings nor buries them. Resuming makes
//! its due jobs' doorbells look lost, so the next reconciler pass rings them.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use serde::Serialize;
use uuid::Uuid;

use crate::inspect::JobStatus;

/// One job as an operator inspects it: its status and what an operator may also see.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct JobDetail {
    #[diesel(embed)]
    #[serde(flatten)]
    pub status: JobStatus,
    /// As stored; show it through a redaction (it may hold personal data or secrets).
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker holding (or that last held) the job.
    #[diesel(sql_type = Nullable<Text>)]
    pub locked_by: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub trace_context: Option<serde_json::Value>,
}

impl JobDetail {
    /// The id of the trace that enqueued the job (32 hex digits), to look it up by.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_context
            .as_ref()?
            .get("traceparent")?
            .as_str()?
            .split('-')
            .nth(1)
    }
}

pub(crate) async fn detail(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<JobDetail>> {
    let rows: Vec<JobDetail> = sql_query(format!(
        "SELECT {}, payload, lease_until, locked_by, trace_context FROM queue_jobs WHERE id = $1",
        crate::inspect::STATUS_COLUMNS
    ))
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// Which dead jobs an operator means: of one kind, and/or whose last error contains a
/// text (case-insensitive). Empty: every dead job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadFilter {
    pub kind: Option<String>,
    pub error: Option<String>,
}

impl DeadFilter {
    /// `error` as an ILIKE pattern, its own wildcards escaped.
    fn pattern(&self) -> Option<String> {
        self.error.as_ref().map(|e| {
            let escaped = e
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

/// The `WHERE` of [`DeadFilter`]: `$1` the kind, `$2` the error pattern.
const DEAD_MATCHING: &str = "state = 'dead' AND ($1::text IS NULL OR kind = $1) \
     AND ($2::text IS NULL OR last_error ILIKE $2)";

/// Dead jobs that match, most recently dead first, after the previous page's last
/// `(finished_at, id)` (keyset pagination on the `queue_jobs_dead_finished` index).
pub(crate) async fn dead_matching(
    conn: &mut AsyncPgConnection,
    filter: &DeadFilter,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> DbResult<Vec<crate::JobStatus>> {
    let (at, id) = after.unzip();
    sql_query(format!(
        "SELECT {} FROM queue_jobs WHERE {DEAD_MATCHING} \
           AND ($3::timestamptz IS NULL OR (finished_at, id) < ($3, $4)) \
         ORDER BY finished_at DESC, id DESC LIMIT $5",
        crate::inspect::STATUS_COLUMNS
    ))
    .bind::<Nullable<Text>, _>(filter.kind.as_deref())
    .bind::<Nullable<Text>, _>(filter.pattern())
    .bind::<Nullable<Timestamptz>, _>(at)
    .bind::<Nullable<SqlUuid>, _>(id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
    .map_err(Into::into)
}

#[derive(QueryableByName)]
pub(crate) struct Revived {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Timestamptz)]
    pub run_at: DateTime<Utc>,
}

/// Gives every matching dead job (at most `limit`) a fresh set of attempts, as
/// [`crate::inspect::revive`] does for one.
pub(crate) async fn revive_matching(
    conn: &mut AsyncPgConnection,
    filter: &DeadFilter,
    limit: i64,
) -> DbResult<Vec<Revived>> {
    sql_query(format!(
        "UPDATE queue_jobs SET state = 'pending', attempts = 0, run_at = now(), doorbell_at = now(), \
             finished_at = NULL, locked_by = NULL, updated_at = now() \
         WHERE id IN (SELECT id FROM queue_jobs WHERE {DEAD_MATCHING} LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, run_at"
    ))
    .bind::<Nullable<Text>, _>(filter.kind.as_deref())
    .bind::<Nullable<Text>, _>(filter.pattern())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
    .map_err(Into::into)
}

/// Deletes matching dead jobs (at most `limit`); how many. `only`, when given, narrows
/// the match to that job (discarding one job is a filter of one id).
pub(crate) async fn discard(
    conn: &mut AsyncPgConnection,
    filter: &DeadFilter,
    only: Option<Uuid>,
    limit: i64,
) -> DbResult<usize> {
    sql_query(format!(
        "DELETE FROM queue_jobs WHERE id IN ( \
             SELECT id FROM queue_jobs WHERE {DEAD_MATCHING} AND ($3::uuid IS NULL OR id = $3) \
             LIMIT $4 FOR UPDATE SKIP LOCKED)"
    ))
    .bind::<Nullable<Text>, _>(filter.kind.as_deref())
    .bind::<Nullable<Text>, _>(filter.pattern())
    .bind::<Nullable<SqlUuid>, _>(only)
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await
    .map_err(Into::into)
}

/// A job kind an operator paused.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct PausedKind {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Timestamptz)]
    pub paused_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub paused_by: String,
}

pub(crate) async fn paused(conn: &mut AsyncPgConnection) -> DbResult<Vec<PausedKind>> {
    sql_query("SELECT kind, paused_at, paused_by FROM queue_paused_kinds ORDER BY kind")
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Pauses `kind`; false when it already was.
pub(crate) async fn pause(conn: &mut AsyncPgConnection, kind: &str, by: &str) -> DbResult<bool> {
    let n = sql_query(
        "INSERT INTO queue_paused_kinds (kind, paused_by) VALUES ($1, $2) ON CONFLICT (kind) DO NOTHING",
    )
    .bind::<Text, _>(kind)
    .bind::<Text, _>(by)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Resumes `kind` and marks its due pending jobs' doorbells lost, so the reconciler's
/// next pass rings them; false when it was not paused.
pub(crate) async fn resume(conn: &mut AsyncPgConnection, kind: &str) -> DbResult<bool> {
    let n = sql_query("DELETE FROM queue_paused_kinds WHERE kind = $1")
        .bind::<Text, _>(kind)
        .execute(conn)
        .await?;
    if n == 1 {
        sql_query(
            "UPDATE queue_jobs SET doorbell_at = NULL \
             WHERE kind = $1 AND state IN ('pending', 'running') AND doorbell_at IS NOT NULL",
        )
        .bind::<Text, _>(kind)
        .execute(conn)
        .await?;
    }
    Ok(n == 1)
}

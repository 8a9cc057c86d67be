//! Every SQL statement of the queue. Each state change is one conditional UPDATE, so two
//! workers (or a worker and the reconciler) racing on a row cannot both win, and a worker
//! whose lease was taken over cannot overwrite the newer attempt: `attempts` is the
//! fencing token of a claim.

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use uuid::Uuid;

/// Longest error text kept per job: enough for a cause chain, not a log file.
const MAX_ERROR_LEN: usize = 2000;

pub(crate) struct NewJob<'a> {
    pub id: Uuid,
    pub kind: &'static str,
    pub payload: serde_json::Value,
    pub max_attempts: i32,
    pub timeout_ms: i32,
    pub run_at: DateTime<Utc>,
    pub trace_context: Option<serde_json::Value>,
    pub unique_key: Option<&'a str>,
}

#[derive(QueryableByName)]
pub(crate) struct Inserted {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
}

/// Inserts the job row; `None` when `unique_key` is already taken for this kind.
pub(crate) async fn insert(
    conn: &mut AsyncPgConnection,
    job: NewJob<'_>,
) -> DbResult<Option<Uuid>> {
    // doorbell_at = run_at: the caller rings right after commit; if it never does, the
    // reconciler rings once redeliver_after has passed.
    let rows: Vec<Inserted> = sql_query(
        "INSERT INTO queue_jobs (id, kind, payload, max_attempts, timeout_ms, run_at, doorbell_at, trace_context, unique_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) \
         ON CONFLICT (kind, unique_key) WHERE unique_key IS NOT NULL DO NOTHING \
         RETURNING id",
    )
    .bind::<SqlUuid, _>(job.id)
    .bind::<Text, _>(job.kind)
    .bind::<Jsonb, _>(job.payload)
    .bind::<Integer, _>(job.max_attempts)
    .bind::<Integer, _>(job.timeout_ms)
    .bind::<Timestamptz, _>(job.run_at)
    .bind::<Nullable<Jsonb>, _>(job.trace_context)
    .bind::<Nullable<Text>, _>(job.unique_key)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(|r| r.id))
}

#[derive(QueryableByName, Debug)]
pub(crate) struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
    #[diesel(sql_type = Integer)]
    pub timeout_ms: i32,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub trace_context: Option<serde_json::Value>,
}

/// Claims the row for one attempt if it is due, or if its previous holder's lease
/// expired (that holder is presumed dead; its attempt still counts). The lease covers
/// the attempt's timeout plus `lease_margin_ms`.
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    worker: &str,
    lease_margin_ms: i64,
) -> DbResult<Option<Claimed>> {
    let rows: Vec<Claimed> = sql_query(
        "UPDATE queue_jobs SET state = 'running', attempts = attempts + 1, locked_by = $2, \
             lease_until = now() + make_interval(secs => (timeout_ms + $3) / 1000.0), updated_at = now() \
         WHERE id = $1 AND attempts < max_attempts \
           AND ((state = 'pending' AND run_at <= now()) OR (state = 'running' AND lease_until < now())) \
           AND NOT EXISTS (SELECT 1 FROM queue_paused_kinds p WHERE p.kind = queue_jobs.kind) \
         RETURNING id, kind, payload, attempts, max_attempts, timeout_ms, trace_context",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(worker)
    .bind::<BigInt, _>(lease_margin_ms)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// Marks the attempt succeeded; false if the claim was lost meanwhile.
pub(crate) async fn complete(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
) -> DbResult<bool> {
    let n = sql_query(
        "UPDATE queue_jobs SET state = 'succeeded', finished_at = now(), lease_until = NULL, updated_at = now() \
         WHERE id = $1 AND state = 'running' AND attempts = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Integer, _>(attempt)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Records a failed attempt: back to pending until `retry_at`, or dead when `retry_at`
/// is `None`. False if the claim was lost meanwhile.
pub(crate) async fn fail(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> DbResult<bool> {
    let n = sql_query(
        "UPDATE queue_jobs SET \
             state = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END, \
             run_at = COALESCE($4, run_at), doorbell_at = COALESCE($4, doorbell_at), \
             finished_at = CASE WHEN $4::timestamptz IS NULL THEN now() END, \
             lease_until = NULL, locked_by = NULL, last_error = $3, updated_at = now() \
         WHERE id = $1 AND state = 'running' AND attempts = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Integer, _>(attempt)
    .bind::<Text, _>(truncate(error))
    .bind::<Nullable<Timestamptz>, _>(retry_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Gives a claim back without counting the attempt, as pending again, with `reason` as its
/// last error: due at `run_at` with a doorbell at that time (a deferral: the handler did
/// not try), or, with `None`, due at once and left to the reconciler to ring (graceful
/// shutdown ran out of time).
pub(crate) async fn give_back(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    run_at: Option<DateTime<Utc>>,
    reason: &str,
) -> DbResult<bool> {
    let n = sql_query(
        "UPDATE queue_jobs SET state = 'pending', attempts = attempts - 1, run_at = COALESCE($3, now()), \
             doorbell_at = $3, lease_until = NULL, locked_by = NULL, last_error = $4, updated_at = now() \
         WHERE id = $1 AND state = 'running' AND attempts = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Integer, _>(attempt)
    .bind::<Nullable<Timestamptz>, _>(run_at)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(QueryableByName)]
pub(crate) struct Kind {
    #[diesel(sql_type = Text)]
    pub kind: String,
}

#[derive(QueryableByName)]
pub(crate) struct Due {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Bool)]
    pub lease_expired: bool,
}

/// Marks dead the running rows whose lease expired on their last attempt: the worker died
/// (or hung) every time, so running it again would loop forever.
pub(crate) async fn bury_exhausted_leases(conn: &mut AsyncPgConnection) -> DbResult<Vec<Kind>> {
    sql_query(
        "UPDATE queue_jobs SET state = 'dead', finished_at = now(), lease_until = NULL, updated_at = now(), \
             last_error = format('lease expired on attempt %s of %s (worker lost); last error: %s', attempts, max_attempts, coalesce(last_error, 'none')) \
         WHERE state = 'running' AND lease_until < now() AND attempts >= max_attempts \
           AND kind NOT IN (SELECT kind FROM queue_paused_kinds) \
         RETURNING kind",
    )
    .load(conn)
    .await
    .map_err(Into::into)
}

/// Rows that need a doorbell now, marked as rung: due pending rows whose last doorbell
/// is older than `redeliver_after_ms` (lost), and running rows whose lease expired and
/// that were not rung since. `SKIP LOCKED` keeps the pass from waiting on busy rows.
pub(crate) async fn take_due(
    conn: &mut AsyncPgConnection,
    redeliver_after_ms: i64,
    limit: i64,
) -> DbResult<Vec<Due>> {
    sql_query(
        "WITH due AS ( \
             SELECT id FROM queue_jobs \
             WHERE state = 'pending' AND run_at <= now() \
               AND (doorbell_at IS NULL OR doorbell_at < now() - make_interval(secs => $1 / 1000.0)) \
               AND kind NOT IN (SELECT kind FROM queue_paused_kinds) \
             UNION ALL \
             SELECT id FROM queue_jobs \
             WHERE state = 'running' AND lease_until < now() \
               AND (doorbell_at IS NULL OR doorbell_at < lease_until \
                    OR doorbell_at < now() - make_interval(secs => $1 / 1000.0)) \
               AND kind NOT IN (SELECT kind FROM queue_paused_kinds) \
             LIMIT $2 \
         ) \
         UPDATE queue_jobs j SET doorbell_at = now() \
         FROM (SELECT id FROM queue_jobs WHERE id IN (SELECT id FROM due) FOR UPDATE SKIP LOCKED) picked \
         WHERE j.id = picked.id \
         RETURNING j.id, j.kind, (j.state = 'running') AS lease_expired",
    )
    .bind::<BigInt, _>(redeliver_after_ms)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
    .map_err(Into::into)
}

/// Deletes succeeded rows finished more than `hours` ago, at most `limit` per call.
pub(crate) async fn purge_succeeded(
    conn: &mut AsyncPgConnection,
    hours: i64,
    limit: i64,
) -> DbResult<usize> {
    sql_query(
        "DELETE FROM queue_jobs WHERE id IN ( \
             SELECT id FROM queue_jobs WHERE state = 'succeeded' \
               AND finished_at < now() - make_interval(hours => $1::int) LIMIT $2)",
    )
    .bind::<BigInt, _>(hours)
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await
    .map_err(Into::into)
}

/// Takes the cluster-wide reconciler lock for the current transaction, if free.
pub(crate) async fn try_reconciler_lock(conn: &mut AsyncPgConnection) -> DbResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    // "keelrecn" as a number: one lock id for every Keel process on this database.
    let row: Locked = sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(0x6b65_656c_7265_636e_i64)
        .get_result(conn)
        .await?;
    Ok(row.locked)
}

fn truncate(error: &str) -> &str {
    if error.len() <= MAX_ERROR_LEN {
        return error;
    }
    let mut end = MAX_ERROR_LEN;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

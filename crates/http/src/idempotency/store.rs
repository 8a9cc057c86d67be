//! The SQL of idempotency keys (`http_idempotency_keys`).
//!
//! The claim, heartbeat and release are each one statement on an autocommitted pooled
//! connection, and no connection is held while the handler runs: the handler needs the
//! pool too, and twenty duplicates waiting on one key must not exhaust it. The answer is
//! stored by [`record`] on the handler's own connection, inside the transaction of its
//! effect, or by the middleware afterwards for answers that come with no effect.
//!
//! Every write after the claim is fenced by the claim's `created_at`: once a retry has
//! taken the key over, the first attempt can neither store an answer nor release the key.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Binary, Double, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::{DbPool, DbResult};

/// Rows deleted per statement by [`purge`].
const PURGE_BATCH: i64 = 5_000;

/// How many times a key that vanished between the claim and the read (released or
/// purged in that instant) is claimed again before giving up.
const CLAIM_ATTEMPTS: usize = 3;

/// The fence of one claim: the key, and when this attempt claimed it.
#[derive(Debug, Clone)]
pub(super) struct Fence {
    pub scope: String,
    pub key: String,
    pub claimed_at: DateTime<Utc>,
}

/// An answer as stored: status, kept headers as `[[name, value], ...]`, body.
pub(super) struct Stored<'a> {
    pub status: i16,
    pub headers: serde_json::Value,
    pub body: &'a [u8],
}

impl<'a> Stored<'a> {
    /// A response's stored form: only the headers worth replaying are kept.
    pub fn of(status: StatusCode, headers: &HeaderMap, body: &'a [u8]) -> Self {
        Self {
            status: i16::try_from(status.as_u16()).unwrap_or(i16::MAX),
            headers: super::answer::stored_headers(headers),
            body,
        }
    }
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// A row that another request claimed first.
#[derive(QueryableByName)]
pub(super) struct Existing {
    #[diesel(sql_type = Binary)]
    pub request_hash: Vec<u8>,
    /// `None` while that request is still running.
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub status: Option<i16>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub headers: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub body: Option<Vec<u8>>,
}

pub(super) enum Claim {
    /// This request owns the key; `created_at` fences its later writes.
    Owned(DateTime<Utc>),
    /// Another request owns the key (running or finished).
    Existing(Existing),
    /// The key kept disappearing under us; answer as if it were in flight.
    Contended,
}

/// Claims `(scope, key)` for this request, or returns the row that holds it.
///
/// A row older than `ttl_secs` counts as absent, and so does a row of the same request
/// with no answer whose attempt has shown no sign of life for `in_flight_timeout_secs`
/// (its process died): both are taken over in the statement that would have inserted the
/// claim. A row whose answer is being committed is locked by that transaction, so the
/// takeover waits for it and then finds the answer.
pub(super) async fn claim(
    pool: &DbPool,
    scope: &str,
    key: &str,
    request_hash: &[u8],
    ttl_secs: f64,
    in_flight_timeout_secs: f64,
) -> DbResult<Claim> {
    let mut conn = pool.get().await?;
    for _ in 0..CLAIM_ATTEMPTS {
        let claimed: Option<Claimed> = sql_query(
            "INSERT INTO http_idempotency_keys AS k (scope, key, request_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, \
                 status = NULL, headers = NULL, body = NULL, created_at = clock_timestamp(), \
                 alive_at = clock_timestamp(), completed_at = NULL \
             WHERE k.created_at < now() - make_interval(secs => $4) \
                OR (k.status IS NULL AND k.request_hash = EXCLUDED.request_hash \
                    AND k.alive_at < now() - make_interval(secs => $5)) \
             RETURNING created_at",
        )
        .bind::<Text, _>(scope)
        .bind::<Text, _>(key)
        .bind::<Binary, _>(request_hash)
        .bind::<Double, _>(ttl_secs)
        .bind::<Double, _>(in_flight_timeout_secs)
        .get_result(&mut conn)
        .await
        .optional()?;
        if let Some(claimed) = claimed {
            return Ok(Claim::Owned(claimed.created_at));
        }
        let existing: Option<Existing> = sql_query(
            "SELECT request_hash, status, headers, body FROM http_idempotency_keys \
             WHERE scope = $1 AND key = $2",
        )
        .bind::<Text, _>(scope)
        .bind::<Text, _>(key)
        .get_result(&mut conn)
        .await
        .optional()?;
        if let Some(existing) = existing {
            return Ok(Claim::Existing(existing));
        }
    }
    Ok(Claim::Contended)
}

/// Stores the answer of the attempt `fence` on `conn` (inside the transaction of its
/// effect, when there is one); false when the claim was taken over meanwhile or already
/// holds an answer (nothing is written then).
/// `fingerprint`, when given, replaces the one claimed with: a streamed request's, of
/// head and body, known only once the body was read.
pub(super) async fn record(
    conn: &mut AsyncPgConnection,
    fence: &Fence,
    answer: Stored<'_>,
    fingerprint: Option<&[u8]>,
) -> DbResult<bool> {
    let updated = sql_query(
        "UPDATE http_idempotency_keys SET status = $4, headers = $5, body = $6, completed_at = now(), \
         request_hash = COALESCE($7, request_hash) \
         WHERE scope = $1 AND key = $2 AND created_at = $3 AND status IS NULL",
    )
    .bind::<Text, _>(&fence.scope)
    .bind::<Text, _>(&fence.key)
    .bind::<Timestamptz, _>(fence.claimed_at)
    .bind::<SmallInt, _>(answer.status)
    .bind::<Jsonb, _>(answer.headers)
    .bind::<Binary, _>(answer.body)
    .bind::<diesel::sql_types::Nullable<Binary>, _>(fingerprint)
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// [`record`] on a connection of its own, for an answer that comes with no effect.
pub(super) async fn complete(
    pool: &DbPool,
    fence: &Fence,
    answer: Stored<'_>,
    fingerprint: Option<&[u8]>,
) -> DbResult<bool> {
    record(&mut *pool.get().await?, fence, answer, fingerprint).await
}

/// Says the attempt `fence` is still running, so no retry takes its key over.
pub(super) async fn heartbeat(pool: &DbPool, fence: &Fence) -> DbResult<()> {
    fenced(
        pool,
        fence,
        "UPDATE http_idempotency_keys SET alive_at = now()",
    )
    .await?;
    Ok(())
}

/// Deletes the unanswered claim `fence` so the client can retry; false when it was taken
/// over or answered meanwhile.
pub(super) async fn release(pool: &DbPool, fence: &Fence) -> DbResult<bool> {
    Ok(fenced(pool, fence, "DELETE FROM http_idempotency_keys").await? == 1)
}

/// Runs `statement` on the row of the unanswered claim `fence`; the rows it touched.
async fn fenced(pool: &DbPool, fence: &Fence, statement: &str) -> DbResult<usize> {
    Ok(sql_query(format!(
        "{statement} WHERE scope = $1 AND key = $2 AND created_at = $3 AND status IS NULL"
    ))
    .bind::<Text, _>(&fence.scope)
    .bind::<Text, _>(&fence.key)
    .bind::<Timestamptz, _>(fence.claimed_at)
    .execute(&mut *pool.get().await?)
    .await?)
}

/// Deletes rows older than `ttl_secs`, in batches (rows locked by a concurrent claim are
/// skipped; the next run gets them). Returns how many were deleted.
pub(super) async fn purge(pool: &DbPool, ttl_secs: f64) -> DbResult<usize> {
    let mut conn = pool.get().await?;
    let mut total = 0;
    loop {
        let deleted = sql_query(
            "DELETE FROM http_idempotency_keys WHERE (scope, key) IN ( \
                 SELECT scope, key FROM http_idempotency_keys \
                 WHERE created_at < now() - make_interval(secs => $1) \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind::<Double, _>(ttl_secs)
        .bind::<BigInt, _>(PURGE_BATCH)
        .execute(&mut conn)
        .await?;
        total += deleted;
        if i64::try_from(deleted).unwrap_or(i64::MAX) < PURGE_BATCH {
            return Ok(total);
        }
    }
}

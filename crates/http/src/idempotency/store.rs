//! The SQL of idempotency keys (`http_idempotency_keys`).
//!
//! Every state change is one statement on an autocommitted connection, and no connection
//! is held while the handler runs: the handler needs the pool too, and twenty duplicates
//! waiting on one key must not exhaust it.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Binary, Double, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use keel_persistence::{DbPool, DbResult};

/// Rows deleted per statement by [`purge_expired`].
const PURGE_BATCH: i64 = 5_000;

/// How many times a key that vanished between the claim and the read (released or
/// purged in that instant) is claimed again before giving up.
const CLAIM_ATTEMPTS: usize = 3;

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
    /// This request owns the key; `created_at` fences its later update or release.
    Owned(DateTime<Utc>),
    /// Another request owns the key (running or finished).
    Existing(Existing),
    /// The key kept disappearing under us; answer as if it were in flight.
    Contended,
}

/// Claims `(scope, key)` for this request, or returns the row that holds it.
///
/// A row older than `ttl_secs` counts as absent, and so does a row of the same request
/// still in flight after `in_flight_timeout_secs` (its process died before finishing):
/// both are taken over in the same statement that would have inserted the claim.
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
                 status = NULL, headers = NULL, body = NULL, created_at = now(), completed_at = NULL \
             WHERE k.created_at < now() - make_interval(secs => $4) \
                OR (k.status IS NULL AND k.request_hash = EXCLUDED.request_hash \
                    AND k.created_at < now() - make_interval(secs => $5)) \
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

/// Stores the answer of the request that claimed the key at `claimed_at`; false when
/// the claim was taken over meanwhile (nothing is written then).
pub(super) async fn complete(
    pool: &DbPool,
    scope: &str,
    key: &str,
    claimed_at: DateTime<Utc>,
    status: i16,
    headers: serde_json::Value,
    body: &[u8],
) -> DbResult<bool> {
    let mut conn = pool.get().await?;
    let updated = sql_query(
        "UPDATE http_idempotency_keys SET status = $4, headers = $5, body = $6, completed_at = now() \
         WHERE scope = $1 AND key = $2 AND created_at = $3 AND status IS NULL",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(key)
    .bind::<Timestamptz, _>(claimed_at)
    .bind::<SmallInt, _>(status)
    .bind::<Jsonb, _>(headers)
    .bind::<Binary, _>(body)
    .execute(&mut conn)
    .await?;
    Ok(updated == 1)
}

/// Deletes the claim made at `claimed_at` so the client can retry; false when it was
/// taken over meanwhile.
pub(super) async fn release(
    pool: &DbPool,
    scope: &str,
    key: &str,
    claimed_at: DateTime<Utc>,
) -> DbResult<bool> {
    let mut conn = pool.get().await?;
    let deleted = sql_query(
        "DELETE FROM http_idempotency_keys \
         WHERE scope = $1 AND key = $2 AND created_at = $3 AND status IS NULL",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(key)
    .bind::<Timestamptz, _>(claimed_at)
    .execute(&mut conn)
    .await?;
    Ok(deleted == 1)
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

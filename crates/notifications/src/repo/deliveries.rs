//! The webhook delivery log (`notifications_webhook_deliveries`): a row per delivery,
//! written by the fan-out and by test deliveries, updated by every attempt, read by the
//! delivery log API, and purged by retention.

use chrono::{DateTime, Utc};
use diesel::dsl::{AsExprOf, now};
use diesel::pg::data_types::PgInterval;
use diesel::pg::expression::extensions::IntervalDsl;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::notifications_webhook_deliveries as d;
use keel_persistence::schema::notifications_webhook_endpoints as e;
use serde::Serialize;
use uuid::Uuid;

keel_persistence::text_enum! {
    /// Where a webhook delivery is (`notifications_webhook_deliveries.status`).
    pub enum DeliveryStatus {
        /// Its job is still trying.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Out of attempts, refused for good, or the endpoint was disabled.
        Failed = "failed",
    }
}

/// One delivery and how its last attempt went.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = d)]
pub struct Delivery {
    /// Sent as the `keel-delivery-id` header on every attempt.
    pub id: Uuid,
    /// The event delivered; absent for test deliveries.
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// HTTP status of the last attempt, if the receiver answered.
    pub response_status: Option<i32>,
    /// Duration of the last attempt.
    pub latency_ms: Option<i32>,
    /// What went wrong in the last attempt.
    pub error: Option<String>,
    /// The first bytes of the last response body.
    pub response_excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery to create: of an event (`event_id`), or a test delivery (no event).
#[derive(Debug, Insertable)]
#[diesel(table_name = d)]
pub struct NewDelivery<'a> {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub org_id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: &'a str,
    /// The exact JSON body every attempt sends.
    pub body: &'a str,
}

/// Creates an event's delivery; false when this event already has one to this endpoint
/// (the fan-out ran before).
pub async fn insert_once(conn: &mut AsyncPgConnection, new: &NewDelivery<'_>) -> DbResult<bool> {
    let n = diesel::insert_into(d::table)
        .values(new)
        .on_conflict((d::endpoint_id, d::event_id))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n == 1)
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewDelivery<'_>) -> DbResult<Delivery> {
    diesel::insert_into(d::table)
        .values(new)
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// An endpoint's deliveries, newest first, after the `after` cursor.
pub async fn list(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    endpoint_id: Uuid,
    limit: i64,
    after: Option<Uuid>,
) -> DbResult<Vec<Delivery>> {
    let mut query = d::table
        .filter(d::endpoint_id.eq(endpoint_id))
        .filter(d::org_id.eq(org_id))
        .order(d::id.desc())
        .limit(limit)
        .select(Delivery::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(d::id.lt(after));
    }
    query.load(conn).await.map_err(Into::into)
}

/// A delivery of the endpoint, locked until the transaction ends.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    endpoint_id: Uuid,
    id: Uuid,
) -> DbResult<Option<Delivery>> {
    d::table
        .find(id)
        .filter(d::endpoint_id.eq(endpoint_id))
        .filter(d::org_id.eq(org_id))
        .select(Delivery::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// Makes a delivery pending again (for a redelivery).
pub async fn requeue(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Delivery> {
    diesel::update(d::table.find(id))
        .set((d::status.eq(DeliveryStatus::Pending), d::updated_at.eq(now)))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// What an attempt needs: the delivery and its endpoint.
#[derive(Debug, Queryable)]
pub struct Target {
    pub status: DeliveryStatus,
    pub body: String,
    pub event_type: String,
    pub endpoint_id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    pub enabled: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// `None` once the endpoint (and with it the delivery) is deleted.
pub async fn target(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<Target>> {
    d::table
        .inner_join(e::table)
        .filter(d::id.eq(id))
        .select((
            d::status,
            d::body,
            d::event_type,
            e::id,
            e::org_id,
            e::url,
            e::enabled,
            e::secret,
            e::previous_secret,
            e::previous_secret_expires_at,
        ))
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// How an attempt went, as the log keeps it.
#[derive(Debug)]
pub struct AttemptOutcome<'a> {
    pub status: DeliveryStatus,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
    pub response_excerpt: &'a str,
}

/// Counts an attempt and logs its outcome; `delivered_at` is set when it delivered.
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    outcome: AttemptOutcome<'_>,
) -> DbResult<()> {
    let delivered =
        (outcome.status == DeliveryStatus::Delivered).then_some(d::delivered_at.eq(now));
    diesel::update(d::table.find(id))
        .set((
            d::attempts.eq(d::attempts + 1),
            d::status.eq(outcome.status),
            d::response_status.eq(outcome.response_status),
            d::latency_ms.eq(outcome.latency_ms),
            d::error.eq(outcome.error),
            d::response_excerpt.eq(outcome.response_excerpt),
            delivered,
            d::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Closes a delivery without an attempt.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: DeliveryStatus,
    response_status: Option<i32>,
    error: &str,
) -> DbResult<()> {
    diesel::update(d::table.find(id))
        .set((
            d::status.eq(status),
            d::response_status.eq(response_status),
            d::error.eq(error),
            d::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A delivery that no longer keeps its event: finished, or pending without an attempt
/// for `stalled_after_days` (its job died).
#[diesel::dsl::auto_type]
pub(super) fn finished_or_stalled(stalled_after_days: i32) -> _ {
    let pending: DeliveryStatus = DeliveryStatus::Pending;
    let db_now: AsExprOf<now, Timestamptz> = now.into_sql::<Timestamptz>();
    let stalled: PgInterval = stalled_after_days.days();
    d::status.ne(pending).or(d::updated_at.lt(db_now - stalled))
}

/// Deletes the finished or stalled deliveries of the events `event_ids`.
pub async fn purge_of_events(
    conn: &mut AsyncPgConnection,
    event_ids: &[Uuid],
    stalled_after_days: i32,
) -> DbResult<usize> {
    diesel::delete(
        d::table
            .filter(d::event_id.eq_any(event_ids))
            .filter(finished_or_stalled(stalled_after_days)),
    )
    .execute(conn)
    .await
    .map_err(Into::into)
}

/// Deletes the finished or stalled test deliveries created before `cutoff`.
pub async fn purge_tests(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    stalled_after_days: i32,
) -> DbResult<usize> {
    diesel::delete(
        d::table
            .filter(d::event_id.is_null())
            .filter(d::created_at.lt(cutoff))
            .filter(finished_or_stalled(stalled_after_days)),
    )
    .execute(conn)
    .await
    .map_err(Into::into)
}

//! Webhook endpoints (`notifications_webhook_endpoints`): what the endpoints API reads
//! and writes, which endpoints an event goes to, and the failure streak and circuit
//! breaker every attempt updates.

use chrono::{DateTime, Utc};
use diesel::dsl::{case_when, now};
use diesel::pg::expression::extensions::IntervalDsl;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::notifications_webhook_endpoints as e;
use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

/// A webhook endpoint, without its secret.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = e)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// Event types delivered; `*` means every type.
    pub event_types: Vec<String>,
    /// False once disabled by hand or after too many failures in a row.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row (0 after any success).
    pub consecutive_failures: i32,
    /// While in the future the circuit breaker holds deliveries back.
    pub breaker_open_until: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Serialises the endpoint creations of one organization until the transaction ends, so
/// that the count [`insert_within_limit`] checks cannot change under it.
pub async fn lock_org(conn: &mut AsyncPgConnection, org_id: Uuid) -> DbResult<()> {
    // Raw SQL: pg_advisory_xact_lock returns void, a type diesel's DSL cannot select.
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('notifications_webhook_endpoints:' || $1::text, 0))",
    )
    .bind::<diesel::sql_types::Uuid, _>(org_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The columns of a new endpoint; the others take their defaults.
#[derive(Debug)]
pub struct NewEndpointRow<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub secret: &'a str,
}

/// Creates the endpoint unless its organization already has `max`; `None` then. One
/// statement (`INSERT ... SELECT ... WHERE (SELECT count(*) ...) < max`): the count and
/// the insert see the same snapshot.
pub async fn insert_within_limit(
    conn: &mut AsyncPgConnection,
    new: NewEndpointRow<'_>,
    max: i64,
) -> DbResult<Option<Endpoint>> {
    let in_org = e::table
        .filter(e::org_id.eq(new.org_id))
        .count()
        .single_value();
    let row = diesel::select((
        new.id.into_sql::<diesel::sql_types::Uuid>(),
        new.org_id.into_sql::<diesel::sql_types::Uuid>(),
        new.url.into_sql::<Text>(),
        new.description.into_sql::<Text>(),
        new.event_types.into_sql::<Array<Text>>(),
        new.secret.into_sql::<Text>(),
    ))
    .filter(in_org.lt(max));
    diesel::insert_into(e::table)
        .values(row)
        .into_columns((
            e::id,
            e::org_id,
            e::url,
            e::description,
            e::event_types,
            e::secret,
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// An organization's endpoints, oldest first, after the `after` cursor.
pub async fn list(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    limit: i64,
    after: Option<Uuid>,
) -> DbResult<Vec<Endpoint>> {
    let mut query = e::table
        .filter(e::org_id.eq(org_id))
        .order(e::id)
        .limit(limit)
        .select(Endpoint::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(e::id.gt(after));
    }
    query.load(conn).await.map_err(Into::into)
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> DbResult<Option<Endpoint>> {
    e::table
        .find(id)
        .filter(e::org_id.eq(org_id))
        .select(Endpoint::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// What a user changes of an endpoint; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct EndpointEdit<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub event_types: Option<&'a [String]>,
    pub enabled: Option<bool>,
}

/// Applies the edit. Enabling clears the disabled reason, disabling by hand records one;
/// enabling or a new URL also starts a clean failure streak with the breaker closed.
pub async fn update(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    edit: EndpointEdit<'_>,
) -> DbResult<Option<Endpoint>> {
    let reason = edit
        .enabled
        .map(|enabled| e::disabled_reason.eq((!enabled).then_some("disabled by a user")));
    let fresh_start = edit.enabled == Some(true) || edit.url.is_some();
    diesel::update(e::table.find(id).filter(e::org_id.eq(org_id)))
        .set((
            edit.url.map(|url| e::url.eq(url)),
            edit.description.map(|d| e::description.eq(d)),
            edit.event_types.map(|types| e::event_types.eq(types)),
            edit.enabled.map(|enabled| e::enabled.eq(enabled)),
            reason,
            fresh_start.then_some((
                e::consecutive_failures.eq(0),
                e::breaker_open_until.eq(None::<DateTime<Utc>>),
            )),
            e::updated_at.eq(now),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// Deletes the endpoint (its deliveries go with it); false when there was none.
pub async fn delete(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> DbResult<bool> {
    let n = diesel::delete(e::table.find(id).filter(e::org_id.eq(org_id)))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Makes `secret` the signing secret; the current one becomes the previous secret, which
/// keeps signing for `overlap_hours`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    secret: &str,
    overlap_hours: i32,
) -> DbResult<Option<Endpoint>> {
    let overlap_ends = now.into_sql::<Timestamptz>() + overlap_hours.hours();
    diesel::update(e::table.find(id).filter(e::org_id.eq(org_id)))
        .set((
            e::previous_secret.eq(e::secret.nullable()),
            e::previous_secret_expires_at.eq(overlap_ends.nullable()),
            e::secret.eq(secret),
            e::updated_at.eq(now),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// The enabled endpoints of the organization subscribed to `event_type` (or to `*`).
pub async fn subscribed(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    event_type: &str,
) -> DbResult<Vec<Uuid>> {
    e::table
        .filter(e::org_id.eq(org_id))
        .filter(e::enabled)
        .filter(e::event_types.overlaps_with(vec![event_type, "*"]))
        .select(e::id)
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Ends the endpoint's failure streak and closes its breaker; writes nothing when there
/// is no streak to end (judged by the row as it is now).
pub async fn end_streak(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::update(
        e::table.find(id).filter(
            e::consecutive_failures
                .gt(0)
                .or(e::breaker_open_until.is_not_null()),
        ),
    )
    .set((
        e::consecutive_failures.eq(0),
        e::breaker_open_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// The endpoint after a failure was counted.
#[derive(Debug, Queryable)]
pub struct Streak {
    pub consecutive_failures: i32,
    pub enabled: bool,
    pub url: String,
}

/// Counts one more failure; the streak reaching `threshold` opens the breaker for
/// `cooldown`.
pub async fn count_failure(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    threshold: i32,
    cooldown: Duration,
) -> DbResult<Streak> {
    let reopened = now.into_sql::<Timestamptz>() + cooldown.as_secs_f64().seconds();
    diesel::update(e::table.find(id))
        .set((
            e::consecutive_failures.eq(e::consecutive_failures + 1),
            e::breaker_open_until.eq(case_when::<_, _, Nullable<Timestamptz>>(
                (e::consecutive_failures + 1).ge(threshold),
                reopened.nullable(),
            )
            .otherwise(e::breaker_open_until)),
        ))
        .returning((e::consecutive_failures, e::enabled, e::url))
        .get_result(conn)
        .await
        .map_err(Into::into)
}

pub async fn disable(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> DbResult<()> {
    diesel::update(e::table.find(id))
        .set((
            e::enabled.eq(false),
            e::disabled_reason.eq(reason),
            e::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The breaker's answer to one delivery.
#[derive(Debug, QueryableByName)]
pub struct Breaker {
    /// The delivery may call the receiver.
    #[diesel(sql_type = Bool)]
    pub admitted: bool,
    /// Until when the breaker stays open, when it is.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub open_until: Option<DateTime<Utc>>,
}

/// Admits a delivery while the streak is under `threshold`. With the breaker open, admits
/// one delivery once its window has passed, as the probe, and moves the window on by
/// `cooldown` in the same statement, so the deliveries running beside it keep waiting.
pub async fn admit(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    threshold: i32,
    cooldown: Duration,
) -> DbResult<Breaker> {
    // Raw SQL: diesel's DSL has no WITH, and the probe is a data-modifying CTE read by the SELECT.
    diesel::sql_query(
        "WITH probe AS ( \
             UPDATE notifications_webhook_endpoints \
             SET breaker_open_until = now() + make_interval(secs => $3::double precision) \
             WHERE id = $1 AND consecutive_failures >= $2 \
               AND (breaker_open_until IS NULL OR breaker_open_until <= now()) \
             RETURNING id) \
         SELECT (e.consecutive_failures < $2 OR EXISTS (SELECT 1 FROM probe)) AS admitted, \
                e.breaker_open_until AS open_until \
         FROM notifications_webhook_endpoints e WHERE e.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<Integer, _>(threshold)
    .bind::<Double, _>(cooldown.as_secs_f64())
    .get_result(conn)
    .await
    .map_err(Into::into)
}

//! Published events (`notifications_events`): recorded in the publisher's transaction,
//! read back by the fan-out, and purged by retention once nothing still needs them.

use super::deliveries;
use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::notifications_events as events;
use keel_persistence::schema::notifications_webhook_deliveries as d;
use uuid::Uuid;

pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    org_id: Uuid,
    event_type: &str,
    event: &serde_json::Value,
) -> DbResult<()> {
    diesel::insert_into(events::table)
        .values((
            events::id.eq(id),
            events::org_id.eq(org_id),
            events::event_type.eq(event_type),
            events::event.eq(event),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The event as published (JSON) and when it was recorded.
pub async fn get(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> DbResult<(serde_json::Value, DateTime<Utc>)> {
    events::table
        .find(id)
        .select((events::event, events::created_at))
        .first(conn)
        .await
        .map_err(Into::into)
}

/// Up to `limit` events created before `cutoff`, oldest first, whose deliveries are all
/// finished or stalled (see `deliveries::finished_or_stalled`), locked; rows another
/// purge holds are skipped.
pub async fn lock_purgeable(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    stalled_after_days: i32,
    limit: i64,
) -> DbResult<Vec<Uuid>> {
    let still_needed =
        deliveries_of_the_event().filter(not(deliveries::finished_or_stalled(stalled_after_days)));
    events::table
        .filter(events::created_at.lt(cutoff))
        .filter(not(exists(still_needed)))
        .order(events::created_at)
        .limit(limit)
        .select(events::id)
        .for_update()
        .skip_locked()
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Those of `ids` that no delivery refers to.
pub async fn without_deliveries(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> DbResult<Vec<Uuid>> {
    events::table
        .filter(events::id.eq_any(ids))
        .filter(not(exists(deliveries_of_the_event())))
        .select(events::id)
        .load(conn)
        .await
        .map_err(Into::into)
}

/// The deliveries of the event of the enclosing query (a correlated subquery).
#[diesel::dsl::auto_type]
fn deliveries_of_the_event() -> _ {
    d::table
        .filter(d::event_id.eq(events::id.nullable()))
        .select(d::id)
}

/// Deletes the events `ids`; returns how many went.
pub async fn delete(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> DbResult<usize> {
    diesel::delete(events::table.filter(events::id.eq_any(ids)))
        .execute(conn)
        .await
        .map_err(Into::into)
}

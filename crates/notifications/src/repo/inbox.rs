//! In-app notifications (`notifications_inbox`): written by the fan-out, read and marked
//! read by their user in one organization, purged with their events.

use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, now};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::notifications_inbox as inbox;
use serde::Serialize;
use uuid::Uuid;

diesel::define_sql_function! {
    /// The first of its arguments that is not null.
    fn coalesce(x: Nullable<Timestamptz>, y: Timestamptz) -> Nullable<Timestamptz>;
}

/// An in-app notification.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = inbox)]
pub struct Notification {
    pub id: Uuid,
    /// The event type, e.g. `export.completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    /// The event's payload.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A notification to write for one recipient of an event.
#[derive(Debug, Insertable)]
#[diesel(table_name = inbox)]
pub struct NewNotification<'a> {
    pub id: Uuid,
    pub event_id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub event_type: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub link: Option<&'a str>,
    pub data: &'a serde_json::Value,
}

/// Writes the notification; false when this event already notified this user.
pub async fn insert_once(
    conn: &mut AsyncPgConnection,
    new: &NewNotification<'_>,
) -> DbResult<bool> {
    let n = diesel::insert_into(inbox::table)
        .values(new)
        .on_conflict((inbox::event_id, inbox::user_id))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// A user's notifications in an organization, newest first, after the `after` cursor;
/// only the unread ones when `unread_only`.
pub async fn list(
    conn: &AsyncPgConnection,
    user_id: Uuid,
    org_id: Uuid,
    unread_only: bool,
    limit: i64,
    after: Option<Uuid>,
) -> DbResult<Vec<Notification>> {
    let mut query = inbox::table
        .filter(inbox::user_id.eq(user_id))
        .filter(inbox::org_id.eq(org_id))
        .order(inbox::id.desc())
        .limit(limit)
        .select(Notification::as_select())
        .into_boxed();
    if unread_only {
        query = query.filter(inbox::read_at.is_null());
    }
    if let Some(after) = after {
        query = query.filter(inbox::id.lt(after));
    }
    query.load(&mut &*conn).await.map_err(Into::into)
}

pub async fn unread_count(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    org_id: Uuid,
) -> DbResult<i64> {
    inbox::table
        .filter(inbox::user_id.eq(user_id))
        .filter(inbox::org_id.eq(org_id))
        .filter(inbox::read_at.is_null())
        .select(count_star())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// Marks one notification read, keeping the first read time; false when the user has no
/// such notification in the organization.
pub async fn mark_read(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    org_id: Uuid,
    id: Uuid,
) -> DbResult<bool> {
    let n = diesel::update(
        inbox::table
            .find(id)
            .filter(inbox::user_id.eq(user_id))
            .filter(inbox::org_id.eq(org_id)),
    )
    .set(inbox::read_at.eq(coalesce(inbox::read_at, now)))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Marks every unread notification of the user in the organization read; returns how
/// many were.
pub async fn mark_all_read(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    org_id: Uuid,
) -> DbResult<usize> {
    diesel::update(
        inbox::table
            .filter(inbox::user_id.eq(user_id))
            .filter(inbox::org_id.eq(org_id))
            .filter(inbox::read_at.is_null()),
    )
    .set(inbox::read_at.eq(now))
    .execute(conn)
    .await
    .map_err(Into::into)
}

/// The `(user_id, org_id)` pairs with an unread notification of the events `event_ids`:
/// whose unread count deleting them changes.
pub async fn unread_readers(
    conn: &mut AsyncPgConnection,
    event_ids: &[Uuid],
) -> DbResult<Vec<(Uuid, Uuid)>> {
    inbox::table
        .filter(inbox::event_id.eq_any(event_ids))
        .filter(inbox::read_at.is_null())
        .select((inbox::user_id, inbox::org_id))
        .distinct()
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Deletes the notifications of the events `event_ids`; returns how many went.
pub async fn delete_of_events(conn: &mut AsyncPgConnection, event_ids: &[Uuid]) -> DbResult<usize> {
    diesel::delete(inbox::table.filter(inbox::event_id.eq_any(event_ids)))
        .execute(conn)
        .await
        .map_err(Into::into)
}

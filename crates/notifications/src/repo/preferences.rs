//! Per-user channel choices (`notifications_preferences`): only the stored exceptions to
//! "every channel on"; read by the preferences API and by the fan-out.

use diesel::dsl::{not, now};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::notifications_preferences as prefs;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One choice: `event_type` on `channel` is on or off.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, utoipa::ToSchema,
)]
#[diesel(table_name = prefs)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    /// An event type such as `export.completed`.
    #[schema(max_length = 100, pattern = "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$")]
    pub event_type: String,
    /// `in_app` or `email`.
    #[schema(pattern = "^(in_app|email)$")]
    pub channel: String,
    pub enabled: bool,
}

/// A user's choices, by event type then channel.
pub async fn list(conn: &mut AsyncPgConnection, user_id: Uuid) -> DbResult<Vec<Preference>> {
    prefs::table
        .filter(prefs::user_id.eq(user_id))
        .order((prefs::event_type, prefs::channel))
        .select(Preference::as_select())
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Stores one choice, replacing the user's earlier one for that type and channel.
pub async fn set(conn: &mut AsyncPgConnection, user_id: Uuid, p: &Preference) -> DbResult<()> {
    diesel::insert_into(prefs::table)
        .values((
            prefs::user_id.eq(user_id),
            prefs::event_type.eq(&p.event_type),
            prefs::channel.eq(&p.channel),
            prefs::enabled.eq(p.enabled),
        ))
        .on_conflict((prefs::user_id, prefs::event_type, prefs::channel))
        .do_update()
        .set((
            prefs::enabled.eq(excluded(prefs::enabled)),
            prefs::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The `(user_id, channel)` pairs of `user_ids` that turned `event_type` off.
pub async fn turned_off(
    conn: &mut AsyncPgConnection,
    user_ids: &[Uuid],
    event_type: &str,
) -> DbResult<Vec<(Uuid, String)>> {
    prefs::table
        .filter(prefs::user_id.eq_any(user_ids))
        .filter(prefs::event_type.eq(event_type))
        .filter(not(prefs::enabled))
        .select((prefs::user_id, prefs::channel))
        .load(conn)
        .await
        .map_err(Into::into)
}

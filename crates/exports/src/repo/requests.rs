//! `exports_requests`: every export requested, kept two days, for the daily limit. It
//! outlives a deleted export, so deleting exports does not give the allowance back.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::exports_requests as r;
use uuid::Uuid;

pub async fn record(conn: &mut AsyncPgConnection, export_id: Uuid, org_id: Uuid) -> DbResult<()> {
    diesel::insert_into(r::table)
        .values((r::export_id.eq(export_id), r::org_id.eq(org_id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// The organization's requests since `since`: how many, and when the oldest of them
/// was (index `exports_requests_recent`).
pub async fn since(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    since: DateTime<Utc>,
) -> DbResult<(i64, Option<DateTime<Utc>>)> {
    r::table
        .filter(r::org_id.eq(org_id))
        .filter(r::created_at.gt(since))
        .select((diesel::dsl::count_star(), diesel::dsl::min(r::created_at)))
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// Forgets requests older than `before`; how many.
pub async fn purge(conn: &mut AsyncPgConnection, before: DateTime<Utc>) -> DbResult<usize> {
    diesel::delete(r::table.filter(r::created_at.lt(before)))
        .execute(conn)
        .await
        .map_err(Into::into)
}

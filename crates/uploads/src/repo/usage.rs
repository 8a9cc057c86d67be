//! `uploads_usage`: the bytes each organization holds, for its quota.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::uploads_usage as us;
use uuid::Uuid;

/// Bytes the organization holds now.
pub async fn bytes(conn: &mut AsyncPgConnection, org_id: Uuid) -> DbResult<i64> {
    Ok(us::table
        .find(org_id)
        .select(us::bytes)
        .first(conn)
        .await
        .optional()?
        .unwrap_or(0))
}

/// Adds `bytes` to the organization's usage unless that would pass `quota` (`None`: no
/// quota); false when it would. One conditional statement, so two uploads finishing at
/// once cannot both slip under the quota.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    bytes: i64,
    quota: Option<i64>,
) -> DbResult<bool> {
    diesel::insert_into(us::table)
        .values((us::org_id.eq(org_id), us::bytes.eq(0)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let target = us::table.filter(us::org_id.eq(org_id));
    let updated = match quota {
        Some(quota) => {
            diesel::update(target.filter(us::bytes.le(quota - bytes)))
                .set(us::bytes.eq(us::bytes + bytes))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(target)
                .set(us::bytes.eq(us::bytes + bytes))
                .execute(conn)
                .await?
        }
    };
    Ok(updated == 1)
}

/// Gives back the bytes of a deleted (or rejected) upload.
pub async fn release(conn: &mut AsyncPgConnection, org_id: Uuid, bytes: i64) -> DbResult<()> {
    diesel::update(us::table.filter(us::org_id.eq(org_id)))
        .set(
            us::bytes.eq(
                diesel::dsl::sql::<diesel::sql_types::Int8>("GREATEST(bytes - ")
                    .bind::<diesel::sql_types::Int8, _>(bytes)
                    .sql(", 0)"),
            ),
        )
        .execute(conn)
        .await?;
    Ok(())
}

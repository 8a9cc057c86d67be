//! `uploads`: one row per file, whatever its state.

use crate::model::{Results, Upload, UploadMethod, UploadState};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::schema::uploads as u;
use keel_persistence::{DbError, DbResult};
use uuid::Uuid;

/// The columns the API shows, plus the storage key the service needs.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = u)]
pub struct Row {
    pub id: Uuid,
    pub org_id: Uuid,
    pub state: UploadState,
    pub method: UploadMethod,
    pub file_name: String,
    pub declared_type: String,
    pub detected_type: Option<String>,
    pub size_bytes: i64,
    pub received_bytes: i64,
    pub sha256: Option<String>,
    pub object_key: String,
    pub reason: Option<String>,
    pub results: serde_json::Value,
    pub uploaded_by_user: Option<Uuid>,
    pub uploaded_by_key: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl Row {
    /// The API resource. Results written by an older version that no longer parse show
    /// as empty rather than failing the read.
    pub fn into_upload(self) -> Upload {
        Upload {
            id: self.id,
            state: self.state,
            method: self.method,
            file_name: self.file_name,
            declared_type: self.declared_type,
            detected_type: self.detected_type,
            size_bytes: self.size_bytes,
            received_bytes: self.received_bytes,
            sha256: self.sha256,
            reason: self.reason,
            results: serde_json::from_value::<Results>(self.results).unwrap_or_default(),
            uploaded_by_user: self.uploaded_by_user,
            uploaded_by_key: self.uploaded_by_key,
            expires_at: self.expires_at,
            created_at: self.created_at,
            processed_at: self.processed_at,
        }
    }
}

/// A new row.
#[derive(Debug, Insertable)]
#[diesel(table_name = u)]
pub struct NewRow<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub uploaded_by_user: Option<Uuid>,
    pub uploaded_by_key: Option<Uuid>,
    pub method: UploadMethod,
    pub state: UploadState,
    pub file_name: &'a str,
    pub declared_type: &'a str,
    pub size_bytes: i64,
    pub received_bytes: i64,
    pub sha256: Option<&'a str>,
    pub object_key: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &NewRow<'_>) -> DbResult<Row> {
    diesel::insert_into(u::table)
        .values(row)
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// One of the organization's uploads.
pub async fn get(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> DbResult<Option<Row>> {
    u::table
        .filter(u::org_id.eq(org_id).and(u::id.eq(id)))
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// A row by id alone, for jobs; locked (`FOR UPDATE`) when `lock` so two runs of the
/// same job cannot both record an outcome.
pub async fn by_id(conn: &mut AsyncPgConnection, id: Uuid, lock: bool) -> DbResult<Option<Row>> {
    let query = u::table.filter(u::id.eq(id)).select(Row::as_select());
    let found = if lock {
        query.for_update().first(conn).await
    } else {
        query.first(conn).await
    };
    found.optional().map_err(Into::into)
}

/// Filters of the list.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub state: Option<UploadState>,
    pub detected_type: Option<String>,
}

/// The organization's uploads, newest first, before the `before` cursor. Each filter
/// has an index with the same leading columns and order.
pub async fn list(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    filter: &ListFilter,
    limit: i64,
    before: Option<Uuid>,
) -> DbResult<Vec<Row>> {
    let mut query = u::table
        .filter(u::org_id.eq(org_id))
        .order(u::id.desc())
        .limit(limit)
        .select(Row::as_select())
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(u::state.eq(state));
    }
    if let Some(detected) = &filter.detected_type {
        query = query.filter(u::detected_type.eq(detected.clone()));
    }
    if let Some(before) = before {
        query = query.filter(u::id.lt(before));
    }
    query.load(conn).await.map_err(Into::into)
}

/// What processing decided.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub state: UploadState,
    pub detected_type: Option<&'a str>,
    pub sha256: Option<&'a str>,
    pub size_bytes: i64,
    pub reason: Option<&'a str>,
    pub results: &'a Results,
}

/// Records the end state of a `processing` upload; `None` when it is not (any more) in
/// that state: deleted, or already decided by an earlier run of the job.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    outcome: &Outcome<'_>,
) -> DbResult<Option<Row>> {
    let results = serde_json::to_value(outcome.results)
        .map_err(|e| DbError::internal("serialising upload results", e))?;
    diesel::update(u::table.filter(u::id.eq(id).and(u::state.eq(UploadState::Processing))))
        .set((
            u::state.eq(outcome.state),
            u::detected_type.eq(outcome.detected_type),
            u::sha256.eq(outcome.sha256),
            u::size_bytes.eq(outcome.size_bytes),
            u::received_bytes.eq(outcome.size_bytes),
            u::reason.eq(outcome.reason),
            u::results.eq(results),
            u::processed_at.eq(diesel::dsl::now),
            u::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// `receiving` → `processing` once `received` bytes (all of them) are stored; `None`
/// when the upload is no longer receiving (completed by another request, or gone).
pub async fn received_all(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    received: i64,
) -> DbResult<Option<Row>> {
    diesel::update(
        u::table
            .filter(u::org_id.eq(org_id))
            .filter(u::id.eq(id))
            .filter(u::state.eq(UploadState::Receiving)),
    )
    .set((
        u::state.eq(UploadState::Processing),
        u::received_bytes.eq(received),
        u::expires_at.eq(None::<DateTime<Utc>>),
        u::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Row::as_returning())
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

/// Moves a receiving upload's offset from `from` to `to`; `None` when the offset is no
/// longer `from` (another chunk won) or the upload stopped receiving.
pub async fn advance(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    from: i64,
    to: i64,
) -> DbResult<Option<Row>> {
    diesel::update(
        u::table
            .filter(u::org_id.eq(org_id))
            .filter(u::id.eq(id))
            .filter(u::state.eq(UploadState::Receiving))
            .filter(u::received_bytes.eq(from)),
    )
    .set((u::received_bytes.eq(to), u::updated_at.eq(diesel::dsl::now)))
    .returning(Row::as_returning())
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

/// Sets `results.processors.<name>` of a ready upload to `value` (a deferred processor's
/// results, written after processing ended).
pub async fn set_processor_result(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    name: &str,
    value: &serde_json::Value,
) -> DbResult<()> {
    // Raw SQL: merging one key into a nested jsonb object has no diesel DSL.
    diesel::sql_query(
        "UPDATE uploads SET results = jsonb_set(results, '{processors}', \
         COALESCE(results->'processors', '{}'::jsonb) || jsonb_build_object($2::text, $3::jsonb)), \
         updated_at = now() WHERE id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Text, _>(name)
    .bind::<diesel::sql_types::Jsonb, _>(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes one of the organization's uploads; returns the row as it was.
pub async fn delete(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> DbResult<Option<Row>> {
    diesel::delete(u::table.filter(u::org_id.eq(org_id).and(u::id.eq(id))))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// The states of those of `ids` that have a row (the sweeper's question about the
/// objects it found).
pub async fn states(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> DbResult<std::collections::HashMap<Uuid, UploadState>> {
    let found: Vec<(Uuid, UploadState)> = u::table
        .filter(u::id.eq_any(ids))
        .select((u::id, u::state))
        .load(conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// Up to `limit` uploads `processing` since before `before`: their job gave up (dead
/// after its last attempt) without recording an outcome.
pub async fn stale_processing(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<Row>> {
    u::table
        .filter(u::state.eq(UploadState::Processing))
        .filter(u::updated_at.lt(before))
        .select(Row::as_select())
        .limit(limit)
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Deletes up to `limit` uploads still `receiving` past their `expires_at` (the partial
/// index `uploads_unfinished` serves it; rows another sweeper holds are skipped);
/// returns them. Call it inside a transaction: the rows stay locked until it ends.
pub async fn delete_expired(conn: &mut AsyncPgConnection, limit: i64) -> DbResult<Vec<Row>> {
    let expired: Vec<Uuid> = u::table
        .filter(u::state.eq(UploadState::Receiving))
        .filter(u::expires_at.lt(diesel::dsl::now))
        .select(u::id)
        .limit(limit)
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    diesel::delete(u::table.filter(u::id.eq_any(expired)))
        .returning(Row::as_returning())
        .load(conn)
        .await
        .map_err(Into::into)
}

//! `exports`: one row per requested export, whatever its state.

use crate::model::{Export, ExportFormat, ExportState, Progress};
use chrono::{DateTime, Utc};
use diesel::pg::data_types::PgLsn;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::exports as e;
use uuid::Uuid;

/// The columns the API shows, plus the storage key the service needs.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = e)]
pub struct Row {
    pub id: Uuid,
    pub org_id: Uuid,
    pub requested_by_user: Option<Uuid>,
    pub requested_by_key: Option<Uuid>,
    pub source: String,
    pub format: ExportFormat,
    pub compress: bool,
    pub filters: serde_json::Value,
    pub state: ExportState,
    pub rows_written: i64,
    pub estimated_rows: Option<i64>,
    pub row_count: Option<i64>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub object_key: Option<String>,
    pub file_name: String,
    pub replica_lsn: Option<PgLsn>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Row {
    /// The state as of `now`: a succeeded export past its expiry shows as `expired`
    /// even before the retention job has removed it.
    pub fn state_at(&self, now: DateTime<Utc>) -> ExportState {
        match (self.state, self.expires_at) {
            (ExportState::Succeeded, Some(expiry)) if expiry <= now => ExportState::Expired,
            (state, _) => state,
        }
    }

    /// The API resource.
    pub fn into_export(self) -> Export {
        let state = self.state_at(Utc::now());
        let percent = match (state, self.estimated_rows) {
            (ExportState::Succeeded, _) => Some(100.0),
            (_, Some(total)) if total > 0 => {
                Some((self.rows_written as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
            }
            (_, Some(_)) => Some(0.0),
            (_, None) => None,
        };
        Export {
            id: self.id,
            source: self.source,
            format: self.format,
            compress: self.compress,
            filters: self.filters,
            state,
            progress: Progress {
                rows_written: self.rows_written,
                estimated_rows: self.estimated_rows,
                percent: percent.map(|p| (p * 10.0).round() / 10.0),
            },
            row_count: self.row_count,
            size_bytes: self.size_bytes,
            sha256: self.sha256,
            file_name: self.file_name,
            error: self.error,
            requested_by_user: self.requested_by_user,
            requested_by_key: self.requested_by_key,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            expires_at: self.expires_at,
        }
    }
}

/// A new row (state `queued`).
#[derive(Debug, Insertable)]
#[diesel(table_name = e)]
pub struct NewRow<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub requested_by_user: Option<Uuid>,
    pub requested_by_key: Option<Uuid>,
    pub source: &'a str,
    pub format: ExportFormat,
    pub compress: bool,
    pub filters: &'a serde_json::Value,
    pub state: ExportState,
    pub file_name: &'a str,
    pub replica_lsn: Option<PgLsn>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &NewRow<'_>) -> DbResult<Row> {
    diesel::insert_into(e::table)
        .values(row)
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// One of the organization's exports.
pub async fn get(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> DbResult<Option<Row>> {
    e::table
        .filter(e::org_id.eq(org_id).and(e::id.eq(id)))
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// A row by id alone, for the job (which acts for no caller).
pub async fn by_id(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<Row>> {
    e::table
        .filter(e::id.eq(id))
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// The organization's exports, newest first, before the `before` cursor
/// (index `exports_list`).
pub async fn list(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    limit: i64,
    before: Option<Uuid>,
) -> DbResult<Vec<Row>> {
    let mut query = e::table
        .filter(e::org_id.eq(org_id))
        .order(e::id.desc())
        .limit(limit)
        .select(Row::as_select())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(e::id.lt(before));
    }
    query.load(conn).await.map_err(Into::into)
}

/// How many of the organization's exports are queued or running (`exports_active`).
pub async fn count_active(conn: &mut AsyncPgConnection, org_id: Uuid) -> DbResult<i64> {
    e::table
        .filter(e::org_id.eq(org_id))
        .filter(e::state.eq_any([ExportState::Queued, ExportState::Running]))
        .count()
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// Starts a job run: a queued export, or a running one whose earlier run died, becomes
/// `running` with its progress reset (the file starts again). `None` when the export is
/// no longer to be produced (canceled, finished, deleted).
pub async fn claim(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<Row>> {
    diesel::update(
        e::table
            .filter(e::id.eq(id))
            .filter(e::state.eq_any([ExportState::Queued, ExportState::Running])),
    )
    .set((
        e::state.eq(ExportState::Running),
        e::attempts.eq(e::attempts + 1),
        e::rows_written.eq(0),
        e::started_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("coalesce(started_at, now())")),
        e::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Row::as_returning())
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

/// Records the job's estimate of the row count.
pub async fn set_estimate(conn: &mut AsyncPgConnection, id: Uuid, rows: i64) -> DbResult<()> {
    diesel::update(e::table.filter(e::id.eq(id)))
        .set((
            e::estimated_rows.eq(rows),
            e::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// `id = $1 AND state = 'running' AND attempts = $2`.
type Held = diesel::dsl::And<
    diesel::dsl::And<diesel::dsl::Eq<e::id, Uuid>, diesel::dsl::Eq<e::state, ExportState>>,
    diesel::dsl::Eq<e::attempts, i32>,
>;

/// The run that holds the export: it is running under this attempt. Every write of a
/// run is conditioned on it, so a stale run (its lease taken over) changes nothing.
fn held(id: Uuid, attempt: i32) -> Held {
    e::id
        .eq(id)
        .and(e::state.eq(ExportState::Running))
        .and(e::attempts.eq(attempt))
}

/// Writes progress; `false` when the run no longer holds the export (it was canceled,
/// deleted, or taken over).
pub async fn progress(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    rows: i64,
) -> DbResult<bool> {
    let updated = diesel::update(e::table.filter(held(id, attempt)))
        .set((e::rows_written.eq(rows), e::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Whether the run still holds the export (the job's cancellation check between pages).
pub async fn holds(conn: &mut AsyncPgConnection, id: Uuid, attempt: i32) -> DbResult<bool> {
    let found: Option<Uuid> = e::table
        .filter(held(id, attempt))
        .select(e::id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// The finished file.
#[derive(Debug, Clone)]
pub struct File<'a> {
    pub key: &'a str,
    pub rows: i64,
    pub size_bytes: i64,
    pub sha256: String,
}

/// `running` → `succeeded`; `None` when the run no longer holds the export (canceled,
/// deleted or taken over meanwhile).
pub async fn succeed(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    file: &File<'_>,
    expires_at: DateTime<Utc>,
) -> DbResult<Option<Row>> {
    diesel::update(e::table.filter(held(id, attempt)))
        .set((
            e::object_key.eq(file.key),
            e::state.eq(ExportState::Succeeded),
            e::rows_written.eq(file.rows),
            e::row_count.eq(file.rows),
            e::size_bytes.eq(file.size_bytes),
            e::sha256.eq(&file.sha256),
            e::error.eq(None::<String>),
            e::finished_at.eq(diesel::dsl::now),
            e::updated_at.eq(diesel::dsl::now),
            e::expires_at.eq(expires_at),
        ))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// An active export ends without a file: `failed` (with `error`) or `canceled`; `None`
/// when it had already ended.
pub async fn end(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    org_id: Option<Uuid>,
    state: ExportState,
    error: Option<&str>,
    expires_at: DateTime<Utc>,
) -> DbResult<Option<Row>> {
    let mut query = diesel::update(e::table)
        .filter(e::id.eq(id))
        .filter(e::state.eq_any([ExportState::Queued, ExportState::Running]))
        .into_boxed();
    if let Some(org_id) = org_id {
        query = query.filter(e::org_id.eq(org_id));
    }
    query
        .set((
            e::state.eq(state),
            e::error.eq(error),
            e::finished_at.eq(diesel::dsl::now),
            e::updated_at.eq(diesel::dsl::now),
            e::expires_at.eq(expires_at),
        ))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// Deletes one of the organization's exports; returns the row as it was.
pub async fn delete(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> DbResult<Option<Row>> {
    diesel::delete(e::table.filter(e::org_id.eq(org_id).and(e::id.eq(id))))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// Up to `limit` exports past their expiry, for the retention to remove.
pub async fn expired(conn: &mut AsyncPgConnection, limit: i64) -> DbResult<Vec<Row>> {
    e::table
        .filter(e::expires_at.lt(diesel::dsl::now))
        .select(Row::as_select())
        .limit(limit)
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Deletes an export whose file is gone; `false` when it was already deleted.
pub async fn delete_expired(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<bool> {
    let deleted = diesel::delete(
        e::table
            .filter(e::id.eq(id))
            .filter(e::expires_at.lt(diesel::dsl::now)),
    )
    .execute(conn)
    .await?;
    Ok(deleted == 1)
}

/// Running exports untouched since `before`: their job died for good without recording
/// an end (its last attempt's worker was lost). Queued ones are left to the queue: a
/// backlog is not a death.
pub async fn stale(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<Uuid>> {
    e::table
        .filter(e::state.eq(ExportState::Running))
        .filter(e::updated_at.lt(before))
        .select(e::id)
        .limit(limit)
        .load(conn)
        .await
        .map_err(Into::into)
}

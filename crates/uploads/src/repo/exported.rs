//! What uploads offers to exports: an organization's uploads' metadata (never their
//! bytes), a page at a time in `(created_at, id)` order ([`keel_persistence::keyset`]),
//! reading only the columns exported. The binary turns it into an export source.

use crate::model::{UploadMethod, UploadState};
use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::keyset::{Window, after};
use keel_persistence::schema::uploads as u;
use uuid::Uuid;

/// An upload as exported.
#[derive(Debug, Clone, Queryable)]
pub struct UploadRecord {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub file_name: String,
    pub state: UploadState,
    pub method: UploadMethod,
    pub declared_type: String,
    pub detected_type: Option<String>,
    pub size_bytes: i64,
    pub sha256: Option<String>,
    pub uploaded_by_user: Option<Uuid>,
    pub uploaded_by_key: Option<Uuid>,
    pub processed_at: Option<DateTime<Utc>>,
}

fn uploads_in(w: &Window, state: Option<UploadState>) -> u::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = u::table
        .filter(u::org_id.eq(w.org_id))
        .filter(u::created_at.lt(w.before))
        .into_boxed();
    if let Some(from) = w.from {
        query = query.filter(u::created_at.ge(from));
    }
    if let Some(state) = state {
        query = query.filter(u::state.eq(state));
    }
    query
}

/// How many uploads the window holds (all pages).
pub async fn count_uploads(
    conn: &mut AsyncPgConnection,
    w: &Window,
    state: Option<UploadState>,
) -> DbResult<i64> {
    uploads_in(w, state)
        .select(count_star())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// One page of uploads (index `uploads_created_order`).
pub async fn uploads_page(
    conn: &mut AsyncPgConnection,
    w: &Window,
    state: Option<UploadState>,
) -> DbResult<Vec<UploadRecord>> {
    let mut query = uploads_in(w, state)
        .select((
            u::created_at,
            u::id,
            u::file_name,
            u::state,
            u::method,
            u::declared_type,
            u::detected_type,
            u::size_bytes,
            u::sha256,
            u::uploaded_by_user,
            u::uploaded_by_key,
            u::processed_at,
        ))
        .order((u::created_at, u::id))
        .limit(w.limit);
    if let Some((at, id)) = w.after {
        query = query.filter(after("created_at, id", at, id));
    }
    query.load(conn).await.map_err(Into::into)
}

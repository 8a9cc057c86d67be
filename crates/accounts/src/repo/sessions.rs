//! Sessions: what a session token authenticates, activity, revocation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::DbResult;
use keel_persistence::schema::{
    accounts_memberships as memberships, accounts_sessions as sessions,
};
use uuid::Uuid;

pub async fn insert_session(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &[u8],
    user_id: Uuid,
    org_id: Uuid,
    expires_at: DateTime<Utc>,
) -> DbResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::token_hash.eq(hash),
            sessions::user_id.eq(user_id),
            sessions::org_id.eq(org_id),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// What the authenticator caches per session token.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, serde::Serialize, serde::Deserialize)]
pub struct SessionAuth {
    pub session_id: Uuid,
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live session by token hash, with the role its user holds in its organization (no
/// row once revoked, expired, or the membership is gone).
pub async fn session_auth(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> DbResult<Option<SessionAuth>> {
    sessions::table
        .inner_join(
            memberships::table.on(memberships::org_id
                .eq(sessions::org_id)
                .and(memberships::user_id.eq(sessions::user_id))),
        )
        .filter(sessions::token_hash.eq(hash))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .select((
            sessions::id,
            sessions::token_hash,
            sessions::user_id,
            sessions::org_id,
            memberships::role,
            sessions::last_seen_at,
            sessions::expires_at,
        ))
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

/// Records activity (at most about once a minute per session, see `auth`); `None` when
/// the session is revoked or already idle-expired.
pub async fn touch_session(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    idle_since: DateTime<Utc>,
) -> DbResult<Option<DateTime<Utc>>> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::last_seen_at.gt(idle_since)),
    )
    .set(sessions::last_seen_at.eq(diesel::dsl::now))
    .returning(sessions::last_seen_at)
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

/// Revokes one session; returns its token hash (to invalidate its cache entry).
pub async fn revoke_session(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<Vec<u8>>> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(diesel::dsl::now))
    .returning(sessions::token_hash)
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

/// Revokes every live session of a user except `keep`; returns their token hashes.
pub async fn revoke_user_sessions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> DbResult<Vec<Vec<u8>>> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne(keep.unwrap_or_else(Uuid::nil))),
    )
    .set(sessions::revoked_at.eq(diesel::dsl::now))
    .returning(sessions::token_hash)
    .get_results(conn)
    .await
    .map_err(Into::into)
}

/// Token hashes of a user's live sessions in one organization (to refresh or revoke them).
pub async fn session_hashes_in_org(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> DbResult<Vec<Vec<u8>>> {
    sessions::table
        .filter(sessions::org_id.eq(org_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::token_hash)
        .load(conn)
        .await
        .map_err(Into::into)
}

/// Revokes a user's sessions in one organization (they were removed from it).
pub async fn revoke_sessions_in_org(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> DbResult<Vec<Vec<u8>>> {
    diesel::update(
        sessions::table
            .filter(sessions::org_id.eq(org_id))
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(diesel::dsl::now))
    .returning(sessions::token_hash)
    .get_results(conn)
    .await
    .map_err(Into::into)
}

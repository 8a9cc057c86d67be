//! API keys: created, listed without secrets, authenticated, revoked.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Scope;
use keel_persistence::schema::accounts_api_keys as api_keys;
use keel_persistence::{DbResult, keyset};
use uuid::Uuid;

/// An API key as lists show it: never its secret.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct NewApiKeyRow<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub created_by: Option<Uuid>,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a [u8],
    pub scopes: &'a [Scope],
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert_api_key(
    conn: &mut AsyncPgConnection,
    k: NewApiKeyRow<'_>,
) -> DbResult<ApiKeyRow> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(k.id),
            api_keys::org_id.eq(k.org_id),
            api_keys::created_by.eq(k.created_by),
            api_keys::name.eq(k.name),
            api_keys::prefix.eq(k.prefix),
            api_keys::secret_hash.eq(k.hash),
            api_keys::scopes.eq(k.scopes),
            api_keys::expires_at.eq(k.expires_at),
        ))
        .returning(ApiKeyRow::as_returning())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// Live keys of an organization, newest first, after the `(created_at, id)` cursor.
pub async fn list_api_keys(
    conn: &AsyncPgConnection,
    org_id: Uuid,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> DbResult<Vec<ApiKeyRow>> {
    let mut query = api_keys::table
        .filter(api_keys::org_id.eq(org_id))
        .filter(api_keys::revoked_at.is_null())
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(ApiKeyRow::as_select())
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(keyset::before("created_at, id", at, id));
    }
    query.load(&mut &*conn).await.map_err(Into::into)
}

/// Revokes a key of `org_id`; returns its secret hash (for the cache), `None` if there
/// is no such live key in that organization.
pub async fn revoke_api_key(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> DbResult<Option<Vec<u8>>> {
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::org_id.eq(org_id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(diesel::dsl::now))
    .returning(api_keys::secret_hash)
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

/// What the authenticator caches per API key.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, serde::Serialize, serde::Deserialize)]
pub struct KeyAuth {
    pub key_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub org_id: Uuid,
    pub name: String,
    pub prefix: String,
    /// Parsed once, when the key is loaded into the cache, not on every request.
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn key_auth(conn: &mut AsyncPgConnection, hash: &[u8]) -> DbResult<Option<KeyAuth>> {
    api_keys::table
        .filter(api_keys::secret_hash.eq(hash))
        .filter(api_keys::revoked_at.is_null())
        .select((
            api_keys::id,
            api_keys::secret_hash,
            api_keys::org_id,
            api_keys::name,
            api_keys::prefix,
            api_keys::scopes,
            api_keys::expires_at,
            api_keys::last_used_at,
        ))
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

pub async fn touch_api_key(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

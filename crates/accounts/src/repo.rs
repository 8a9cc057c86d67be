//! Every query of the accounts domain. Functions take a connection so a service can run
//! several of them in one transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::DbResult;
use keel_persistence::schema::{
    accounts_audit_events as audit, accounts_memberships as memberships,
    accounts_organizations as orgs, accounts_sessions as sessions, accounts_tokens as tokens,
    accounts_users as users,
};
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
}

pub async fn user_by_email(conn: &mut AsyncPgConnection, email: &str) -> DbResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

pub async fn user_by_id(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<UserRow> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .map_err(Into::into)
}

pub async fn insert_user(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    email: &str,
    name: &str,
    password_hash: &str,
) -> DbResult<()> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::email.eq(email),
            users::name.eq(name),
            users::password_hash.eq(password_hash),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    hash: &str,
) -> DbResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_email_verified(conn: &mut AsyncPgConnection, user_id: Uuid) -> DbResult<()> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::email_verified_at.is_null()),
    )
    .set((
        users::email_verified_at.eq(diesel::dsl::now),
        users::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_org(conn: &mut AsyncPgConnection, id: Uuid, name: &str) -> DbResult<()> {
    diesel::insert_into(orgs::table)
        .values((orgs::id.eq(id), orgs::name.eq(name)))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_membership(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> DbResult<()> {
    diesel::insert_into(memberships::table)
        .values((
            memberships::org_id.eq(org_id),
            memberships::user_id.eq(user_id),
            memberships::role.eq(role),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn user_org_ids(conn: &mut AsyncPgConnection, user_id: Uuid) -> DbResult<Vec<Uuid>> {
    memberships::table
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::org_id)
        .load(conn)
        .await
        .map_err(Into::into)
}

/// The organization a login acts for: the user's oldest membership.
pub async fn primary_membership(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> DbResult<Option<(Uuid, Role)>> {
    memberships::table
        .filter(memberships::user_id.eq(user_id))
        .order((memberships::created_at.asc(), memberships::org_id.asc()))
        .select((memberships::org_id, memberships::role))
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

#[derive(Debug)]
pub struct NewToken<'a> {
    pub kind: &'static str,
    pub hash: &'a [u8],
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub email: Option<&'a str>,
    pub role: Option<Role>,
    pub invited_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_token(conn: &mut AsyncPgConnection, t: NewToken<'_>) -> DbResult<()> {
    diesel::insert_into(tokens::table)
        .values((
            tokens::id.eq(Uuid::now_v7()),
            tokens::kind.eq(t.kind),
            tokens::token_hash.eq(t.hash),
            tokens::user_id.eq(t.user_id),
            tokens::org_id.eq(t.org_id),
            tokens::email.eq(t.email),
            tokens::role.eq(t.role),
            tokens::invited_by.eq(t.invited_by),
            tokens::expires_at.eq(t.expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tokens)]
pub struct TokenRow {
    pub token_hash: Vec<u8>,
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub invited_by: Option<Uuid>,
}

/// Uses a one-time token: marks it used if it is of `kind`, unused and unexpired, in one
/// conditional UPDATE, so two concurrent uses cannot both succeed.
pub async fn take_token(
    conn: &mut AsyncPgConnection,
    kind: &str,
    hash: &[u8],
) -> DbResult<Option<TokenRow>> {
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(hash))
            .filter(tokens::kind.eq(kind))
            .filter(tokens::used_at.is_null())
            .filter(tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(tokens::used_at.eq(diesel::dsl::now))
    .returning(TokenRow::as_returning())
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}

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

/// The profile `GET /me` shows.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub role: Role,
}

pub async fn profile(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    org_id: Uuid,
) -> DbResult<Option<Profile>> {
    users::table
        .inner_join(memberships::table.on(memberships::user_id.eq(users::id)))
        .inner_join(orgs::table.on(orgs::id.eq(memberships::org_id)))
        .filter(users::id.eq(user_id))
        .filter(orgs::id.eq(org_id))
        .select((
            users::id,
            users::email,
            users::name,
            users::email_verified_at.is_not_null(),
            orgs::id,
            orgs::name,
            memberships::role,
        ))
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

pub async fn rename_user(conn: &mut AsyncPgConnection, user_id: Uuid, name: &str) -> DbResult<()> {
    diesel::update(users::table.find(user_id))
        .set((users::name.eq(name), users::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(())
}

/// One entry of the audit trail, written in the transaction of the change it records.
#[derive(Debug)]
pub struct AuditEvent<'a> {
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub action: &'static str,
    pub target_id: Option<Uuid>,
    pub ip: Option<&'a str>,
    pub details: serde_json::Value,
}

pub async fn audit(conn: &mut AsyncPgConnection, e: AuditEvent<'_>) -> DbResult<()> {
    diesel::insert_into(audit::table)
        .values((
            audit::id.eq(Uuid::now_v7()),
            audit::org_id.eq(e.org_id),
            audit::actor_user_id.eq(e.actor_user_id),
            audit::actor_api_key_id.eq(e.actor_api_key_id),
            audit::action.eq(e.action),
            audit::target_id.eq(e.target_id),
            audit::ip.eq(e.ip),
            audit::details.eq(e.details),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

use keel_persistence::schema::accounts_api_keys as api_keys;

/// An API key as lists show it: never its secret.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<String>,
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
    pub scopes: &'a [String],
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
    conn: &mut AsyncPgConnection,
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
        query = query.filter(
            api_keys::created_at
                .lt(at)
                .or(api_keys::created_at.eq(at).and(api_keys::id.lt(id))),
        );
    }
    query.load(conn).await.map_err(Into::into)
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
    pub scopes: Vec<String>,
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

/// An organization's id and name.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct OrgInfo {
    pub id: Uuid,
    pub name: String,
}

pub async fn org_info(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<OrgInfo>> {
    orgs::table
        .find(id)
        .select((orgs::id, orgs::name))
        .first(conn)
        .await
        .optional()
        .map_err(Into::into)
}

pub async fn rename_org(conn: &mut AsyncPgConnection, id: Uuid, name: &str) -> DbResult<OrgInfo> {
    diesel::update(orgs::table.find(id))
        .set((orgs::name.eq(name), orgs::updated_at.eq(diesel::dsl::now)))
        .returning((orgs::id, orgs::name))
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// A member as the members list shows them.
#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// Members in join order, after the `(joined_at, user_id)` cursor.
pub async fn list_members(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> DbResult<Vec<Member>> {
    let mut query = memberships::table
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .filter(memberships::org_id.eq(org_id))
        .order((memberships::created_at.asc(), memberships::user_id.asc()))
        .select((
            memberships::user_id,
            users::email,
            users::name,
            memberships::role,
            memberships::created_at,
        ))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            memberships::created_at.gt(at).or(memberships::created_at
                .eq(at)
                .and(memberships::user_id.gt(id))),
        );
    }
    query.load(conn).await.map_err(Into::into)
}

/// Members of `org_id` with a role in `roles` (all when empty), limited to `only` when
/// given, as `(user_id, email, name)`: whom an event tells.
pub async fn people(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    roles: &[Role],
    only: Option<&[Uuid]>,
) -> DbResult<Vec<(Uuid, String, String)>> {
    let mut query = memberships::table
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .filter(memberships::org_id.eq(org_id))
        .select((users::id, users::email, users::name))
        .into_boxed();
    if !roles.is_empty() {
        query = query.filter(memberships::role.eq_any(roles.to_vec()));
    }
    if let Some(ids) = only {
        query = query.filter(users::id.eq_any(ids.to_vec()));
    }
    query.load(conn).await.map_err(Into::into)
}

/// The roles of an organization's owners and of `user_id`, with those rows locked, so
/// two concurrent demotions cannot both pass the last-owner check.
pub async fn lock_roles(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> DbResult<(i64, Option<Role>)> {
    let rows: Vec<(Uuid, Role)> = memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(
            memberships::role
                .eq(Role::Owner)
                .or(memberships::user_id.eq(user_id)),
        )
        .select((memberships::user_id, memberships::role))
        .for_update()
        .load(conn)
        .await?;
    let owners = rows.iter().filter(|(_, r)| *r == Role::Owner).count() as i64;
    let role = rows
        .into_iter()
        .find(|(u, _)| *u == user_id)
        .map(|(_, r)| r);
    Ok((owners, role))
}

pub async fn set_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> DbResult<()> {
    diesel::update(memberships::table.find((org_id, user_id)))
        .set(memberships::role.eq(role))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_membership(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> DbResult<()> {
    diesel::delete(memberships::table.find((org_id, user_id)))
        .execute(conn)
        .await?;
    Ok(())
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

/// An entry of the audit trail as the API shows it.
#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An organization's trail, newest first, after the `(created_at, id)` cursor.
pub async fn list_audit(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> DbResult<Vec<AuditEntry>> {
    let mut query = audit::table
        .filter(audit::org_id.eq(org_id))
        .order((audit::created_at.desc(), audit::id.desc()))
        .select((
            audit::id,
            audit::action,
            audit::actor_user_id,
            audit::actor_api_key_id,
            audit::target_id,
            audit::ip,
            audit::details,
            audit::created_at,
        ))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            audit::created_at
                .lt(at)
                .or(audit::created_at.eq(at).and(audit::id.lt(id))),
        );
    }
    query.load(conn).await.map_err(Into::into)
}

/// Deletes sessions and one-time tokens that ended more than a day ago (a day of grace
/// keeps them visible while someone investigates), at most `limit` of each.
pub async fn purge_expired(conn: &mut AsyncPgConnection, limit: i64) -> DbResult<usize> {
    let sessions = diesel::sql_query(
        "DELETE FROM accounts_sessions WHERE id IN (SELECT id FROM accounts_sessions \
         WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day' LIMIT $1)",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .execute(conn)
    .await?;
    let tokens = diesel::sql_query(
        "DELETE FROM accounts_tokens WHERE id IN (SELECT id FROM accounts_tokens \
         WHERE expires_at < now() - interval '1 day' LIMIT $1)",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .execute(conn)
    .await?;
    Ok(sessions + tokens)
}

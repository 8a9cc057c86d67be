//! Users: accounts, password hashes, verification, the profile `GET /me` shows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::DbResult;
use keel_persistence::schema::{
    accounts_memberships as memberships, accounts_organizations as orgs, accounts_users as users,
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

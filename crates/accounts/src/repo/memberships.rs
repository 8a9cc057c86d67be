//! Memberships: who belongs to which organization with which role.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::schema::{accounts_memberships as memberships, accounts_users as users};
use keel_persistence::{DbResult, keyset};
use uuid::Uuid;

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

/// A member as the members list shows them.
#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// Members in join order, after the `(joined_at, user_id)` cursor: one range scan of
/// `accounts_memberships_org_order`, then each member's user by primary key.
pub async fn list_members(
    conn: &AsyncPgConnection,
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
        query = query.filter(keyset::after(
            "accounts_memberships.created_at, accounts_memberships.user_id",
            at,
            id,
        ));
    }
    query.load(&mut &*conn).await.map_err(Into::into)
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

//! What accounts offers to exports: an organization's members and its audit trail (as
//! the [`AuditEntry`] the trail's API shows), a page at a time in `(created_at, id)` order ([`keel_persistence::keyset`]), reading
//! only the columns exported. The binary turns them into export sources.

use super::audit::AuditEntry;
use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::DbResult;
use keel_persistence::keyset::{Window, after};
use keel_persistence::schema::{
    accounts_audit_events as audit, accounts_memberships as memberships, accounts_users as users,
};
use uuid::Uuid;

/// A member as exported.
#[derive(Debug, Clone, Queryable)]
pub struct MemberRecord {
    pub joined_at: DateTime<Utc>,
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

type MembersQuery = diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::InnerJoinOn<
        memberships::table,
        users::table,
        diesel::dsl::Eq<users::id, memberships::user_id>,
    >,
    diesel::pg::Pg,
>;

fn members_in(w: &Window, role: Option<Role>) -> MembersQuery {
    let mut query = memberships::table
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .filter(memberships::org_id.eq(w.org_id))
        .filter(memberships::created_at.lt(w.before))
        .into_boxed();
    if let Some(from) = w.from {
        query = query.filter(memberships::created_at.ge(from));
    }
    if let Some(role) = role {
        query = query.filter(memberships::role.eq(role));
    }
    query
}

/// How many members the window holds (all pages).
pub async fn count_members(
    conn: &mut AsyncPgConnection,
    w: &Window,
    role: Option<Role>,
) -> DbResult<i64> {
    members_in(w, role)
        .select(count_star())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// One page of members, by `(joined_at, user_id)` (index `accounts_memberships_org_order`).
pub async fn members_page(
    conn: &mut AsyncPgConnection,
    w: &Window,
    role: Option<Role>,
) -> DbResult<Vec<MemberRecord>> {
    let mut query = members_in(w, role)
        .select((
            memberships::created_at,
            memberships::user_id,
            users::email,
            users::name,
            memberships::role,
        ))
        .order((memberships::created_at, memberships::user_id))
        .limit(w.limit);
    if let Some((at, id)) = w.after {
        query = query.filter(after(
            "accounts_memberships.created_at, accounts_memberships.user_id",
            at,
            id,
        ));
    }
    query.load(conn).await.map_err(Into::into)
}

type AuditQuery<'a> = audit::BoxedQuery<'a, diesel::pg::Pg>;

fn audit_in(w: &Window, action: Option<&str>) -> AuditQuery<'static> {
    let mut query = audit::table
        .filter(audit::org_id.eq(w.org_id))
        .filter(audit::created_at.lt(w.before))
        .into_boxed();
    if let Some(from) = w.from {
        query = query.filter(audit::created_at.ge(from));
    }
    if let Some(action) = action {
        query = query.filter(audit::action.eq(action.to_owned()));
    }
    query
}

/// How many audit entries the window holds (all pages).
pub async fn count_audit(
    conn: &mut AsyncPgConnection,
    w: &Window,
    action: Option<&str>,
) -> DbResult<i64> {
    audit_in(w, action)
        .select(count_star())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// One page of the audit trail, oldest first (index `accounts_audit_events_org_order`,
/// read backwards).
pub async fn audit_page(
    conn: &mut AsyncPgConnection,
    w: &Window,
    action: Option<&str>,
) -> DbResult<Vec<AuditEntry>> {
    let mut query = audit_in(w, action)
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
        .order((audit::created_at, audit::id))
        .limit(w.limit);
    if let Some((at, id)) = w.after {
        query = query.filter(after("created_at, id", at, id));
    }
    query.load(conn).await.map_err(Into::into)
}

//! Organizations (tenants): creation, name.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::accounts_organizations as orgs;
use uuid::Uuid;

pub async fn insert_org(conn: &mut AsyncPgConnection, id: Uuid, name: &str) -> DbResult<()> {
    diesel::insert_into(orgs::table)
        .values((orgs::id.eq(id), orgs::name.eq(name)))
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

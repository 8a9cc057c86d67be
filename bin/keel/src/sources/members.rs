//! `members`: the organization's members and their roles (accounts).

use super::{counted, key, paged, parsed};
use futures::future::BoxFuture;
use keel_accounts::repo::MemberRecord;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope, SourceInfo};
use keel_http::Role;
use keel_persistence::{AsyncPgConnection, DbResult};

#[derive(Debug)]
pub struct Members;

const INFO: SourceInfo = SourceInfo {
    name: "members",
    description: "The organization's members: who they are and their role",
    columns: &[
        Column::new("user_id", ColumnKind::Uuid, "The member's user id"),
        Column::new("email", ColumnKind::Text, "Their email address"),
        Column::new("name", ColumnKind::Text, "Their name"),
        Column::new("role", ColumnKind::Text, "owner, admin or member"),
        Column::new(
            "joined_at",
            ColumnKind::Timestamp,
            "When they joined (the time filters apply to it)",
        ),
    ],
    filters: &[FilterSpec {
        name: "role",
        description: "Only members with this role",
        values: Some(Role::WORDS),
    }],
};

impl DataSource for Members {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>> {
        counted(conn, scope, |conn, w| async move {
            keel_accounts::repo::count_members(conn, &w, parsed(scope, "role")?).await
        })
    }

    fn page<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
        after: Option<Key>,
        limit: i64,
    ) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        paged(
            conn,
            scope,
            after,
            limit,
            |conn, w| async move {
                keel_accounts::repo::members_page(conn, &w, parsed(scope, "role")?).await
            },
            row,
        )
    }
}

fn row(m: MemberRecord) -> Row {
    let cells = vec![
        m.user_id.into(),
        m.email.into(),
        m.name.into(),
        m.role.as_str().into(),
        m.joined_at.into(),
    ];
    (key(m.joined_at, m.user_id), cells)
}

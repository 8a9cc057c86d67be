//! `members`: the organization's members and their roles (accounts).

use super::{key, parsed, window};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope};
use keel_http::Role;
use keel_persistence::{AsyncPgConnection, DbResult};

#[derive(Debug)]
pub struct Members;

const COLUMNS: &[Column] = &[
    Column::new("user_id", ColumnKind::Uuid, "The member's user id"),
    Column::new("email", ColumnKind::Text, "Their email address"),
    Column::new("name", ColumnKind::Text, "Their name"),
    Column::new("role", ColumnKind::Text, "owner, admin or member"),
    Column::new(
        "joined_at",
        ColumnKind::Timestamp,
        "When they joined (the time filters apply to it)",
    ),
];

const FILTERS: &[FilterSpec] = &[FilterSpec {
    name: "role",
    description: "Only members with this role",
    values: Some(Role::WORDS),
}];

impl DataSource for Members {
    fn name(&self) -> &'static str {
        "members"
    }

    fn description(&self) -> &'static str {
        "The organization's members: who they are and their role"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn filters(&self) -> &'static [FilterSpec] {
        FILTERS
    }

    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>> {
        async move {
            let w = window(scope, None, 0);
            keel_accounts::repo::count_members(conn, &w, parsed(scope, "role")?).await
        }
        .boxed()
    }

    fn page<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
        after: Option<Key>,
        limit: i64,
    ) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        async move {
            let w = window(scope, after, limit);
            let members =
                keel_accounts::repo::members_page(conn, &w, parsed(scope, "role")?).await?;
            Ok(members
                .into_iter()
                .map(|m| {
                    let cells = vec![
                        m.user_id.into(),
                        m.email.into(),
                        m.name.into(),
                        m.role.as_str().into(),
                        m.joined_at.into(),
                    ];
                    (key(m.joined_at, m.user_id), cells)
                })
                .collect())
        }
        .boxed()
    }
}

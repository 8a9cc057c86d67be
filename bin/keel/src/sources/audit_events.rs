//! `audit_events`: the organization's audit trail (accounts).

use super::{key, window};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope};
use keel_persistence::{AsyncPgConnection, DbResult};

#[derive(Debug)]
pub struct AuditEvents;

const COLUMNS: &[Column] = &[
    Column::new("id", ColumnKind::Uuid, "The entry's id"),
    Column::new("created_at", ColumnKind::Timestamp, "When it happened"),
    Column::new(
        "action",
        ColumnKind::Text,
        "What was done, e.g. member.invited",
    ),
    Column::new(
        "actor_user_id",
        ColumnKind::Uuid,
        "The person who did it, if a person did",
    ),
    Column::new(
        "actor_api_key_id",
        ColumnKind::Uuid,
        "The API key that did it, if a key did",
    ),
    Column::new("target_id", ColumnKind::Uuid, "What it was done to"),
    Column::new(
        "ip",
        ColumnKind::Text,
        "The client's address, where recorded",
    ),
    Column::new("details", ColumnKind::Json, "Further details"),
];

const FILTERS: &[FilterSpec] = &[FilterSpec {
    name: "action",
    description: "Only entries of this action, e.g. export.downloaded",
    values: None,
}];

impl DataSource for AuditEvents {
    fn name(&self) -> &'static str {
        "audit_events"
    }

    fn description(&self) -> &'static str {
        "The organization's audit trail: who did what, when"
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
            keel_accounts::repo::count_audit(conn, &w, scope.filter("action")).await
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
            let entries = keel_accounts::repo::audit_page(conn, &w, scope.filter("action")).await?;
            Ok(entries
                .into_iter()
                .map(|a| {
                    let cells = vec![
                        a.id.into(),
                        a.created_at.into(),
                        a.action.into(),
                        a.actor_user_id.into(),
                        a.actor_api_key_id.into(),
                        a.target_id.into(),
                        a.ip.into(),
                        a.details.into(),
                    ];
                    (key(a.created_at, a.id), cells)
                })
                .collect())
        }
        .boxed()
    }
}

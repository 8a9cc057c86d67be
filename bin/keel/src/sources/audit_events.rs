//! `audit_events`: the organization's audit trail (accounts).

use super::{counted, key, paged};
use futures::future::BoxFuture;
use keel_accounts::repo::AuditEntry;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope, SourceInfo};
use keel_persistence::{AsyncPgConnection, DbResult};

#[derive(Debug)]
pub struct AuditEvents;

const INFO: SourceInfo = SourceInfo {
    name: "audit_events",
    description: "The organization's audit trail: who did what, when",
    columns: &[
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
    ],
    filters: &[FilterSpec {
        name: "action",
        description: "Only entries of this action, e.g. export.downloaded",
        values: None,
    }],
};

impl DataSource for AuditEvents {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>> {
        counted(conn, scope, |conn, w| async move {
            keel_accounts::repo::count_audit(conn, &w, scope.filter("action")).await
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
                keel_accounts::repo::audit_page(conn, &w, scope.filter("action")).await
            },
            row,
        )
    }
}

fn row(a: AuditEntry) -> Row {
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
}

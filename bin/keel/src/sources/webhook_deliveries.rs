//! `webhook_deliveries`: the organization's webhook delivery log (notifications).

use super::{counted, key, paged, parsed};
use futures::future::BoxFuture;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope, SourceInfo};
use keel_notifications::exported::{DeliveryFilter, DeliveryRecord, DeliveryStatus};
use keel_persistence::{AsyncPgConnection, DbResult};

#[derive(Debug)]
pub struct WebhookDeliveries;

const INFO: SourceInfo = SourceInfo {
    name: "webhook_deliveries",
    description: "The organization's webhook deliveries: what was sent where, and how it went",
    columns: &[
        Column::new("id", ColumnKind::Uuid, "The delivery's id"),
        Column::new("created_at", ColumnKind::Timestamp, "When it was created"),
        Column::new("endpoint_id", ColumnKind::Uuid, "The webhook endpoint"),
        Column::new(
            "event_id",
            ColumnKind::Uuid,
            "The event delivered (none for a test delivery)",
        ),
        Column::new("event_type", ColumnKind::Text, "The event's type"),
        Column::new("status", ColumnKind::Text, "pending, delivered or failed"),
        Column::new("attempts", ColumnKind::Integer, "Attempts made"),
        Column::new(
            "response_status",
            ColumnKind::Integer,
            "The receiver's last HTTP status",
        ),
        Column::new(
            "latency_ms",
            ColumnKind::Integer,
            "The last attempt's duration",
        ),
        Column::new("error", ColumnKind::Text, "Why the last attempt failed"),
        Column::new(
            "delivered_at",
            ColumnKind::Timestamp,
            "When the receiver accepted it",
        ),
    ],
    filters: &[
        FilterSpec {
            name: "status",
            description: "Only deliveries in this status",
            values: Some(DeliveryStatus::WORDS),
        },
        FilterSpec {
            name: "event_type",
            description: "Only deliveries of this event type, e.g. export.completed",
            values: None,
        },
    ],
};

fn filter(scope: &Scope) -> DbResult<DeliveryFilter<'_>> {
    Ok(DeliveryFilter {
        status: parsed(scope, "status")?,
        event_type: scope.filter("event_type"),
    })
}

impl DataSource for WebhookDeliveries {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>> {
        counted(conn, scope, |conn, w| async move {
            keel_notifications::exported::count_deliveries(conn, &w, filter(scope)?).await
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
                keel_notifications::exported::deliveries_page(conn, &w, filter(scope)?).await
            },
            row,
        )
    }
}

fn row(d: DeliveryRecord) -> Row {
    let cells = vec![
        d.id.into(),
        d.created_at.into(),
        d.endpoint_id.into(),
        d.event_id.into(),
        d.event_type.into(),
        d.status.as_str().into(),
        d.attempts.into(),
        d.response_status.into(),
        d.latency_ms.into(),
        d.error.into(),
        d.delivered_at.into(),
    ];
    (key(d.created_at, d.id), cells)
}

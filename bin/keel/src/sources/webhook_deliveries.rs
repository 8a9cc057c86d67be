//! `webhook_deliveries`: the organization's webhook delivery log (notifications).

use super::{key, parsed, window};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope};
use keel_notifications::exported::{DeliveryFilter, DeliveryStatus};
use keel_persistence::{AsyncPgConnection, DbResult};

#[derive(Debug)]
pub struct WebhookDeliveries;

const COLUMNS: &[Column] = &[
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
];

const FILTERS: &[FilterSpec] = &[
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
];

fn filter(scope: &Scope) -> DbResult<DeliveryFilter<'_>> {
    Ok(DeliveryFilter {
        status: parsed(scope, "status")?,
        event_type: scope.filter("event_type"),
    })
}

impl DataSource for WebhookDeliveries {
    fn name(&self) -> &'static str {
        "webhook_deliveries"
    }

    fn description(&self) -> &'static str {
        "The organization's webhook deliveries: what was sent where, and how it went"
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
            keel_notifications::exported::count_deliveries(conn, &w, filter(scope)?).await
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
            let deliveries =
                keel_notifications::exported::deliveries_page(conn, &w, filter(scope)?).await?;
            Ok(deliveries
                .into_iter()
                .map(|d| {
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
                })
                .collect())
        }
        .boxed()
    }
}

//! What notifications offers to exports: an organization's webhook deliveries (the
//! delivery log), a page at a time in `(created_at, id)` order
//! ([`keel_persistence::keyset`]), reading only the columns exported. The binary turns
//! them into an export source.

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::keyset::{Window, after};
use keel_persistence::schema::notifications_webhook_deliveries as d;
use uuid::Uuid;

pub use crate::repo::deliveries::DeliveryStatus;

/// A delivery as exported (its body is left out: it is the event, already exported).
#[derive(Debug, Clone, Queryable)]
pub struct DeliveryRecord {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub response_status: Option<i32>,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The filters deliveries take.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryFilter<'a> {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<&'a str>,
}

fn deliveries_in(w: &Window, filter: DeliveryFilter<'_>) -> d::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = d::table
        .filter(d::org_id.eq(w.org_id))
        .filter(d::created_at.lt(w.before))
        .into_boxed();
    if let Some(from) = w.from {
        query = query.filter(d::created_at.ge(from));
    }
    if let Some(status) = filter.status {
        query = query.filter(d::status.eq(status));
    }
    if let Some(event_type) = filter.event_type {
        query = query.filter(d::event_type.eq(event_type.to_owned()));
    }
    query
}

/// How many deliveries the window holds (all pages).
pub async fn count_deliveries(
    conn: &mut AsyncPgConnection,
    w: &Window,
    filter: DeliveryFilter<'_>,
) -> DbResult<i64> {
    deliveries_in(w, filter)
        .select(count_star())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// One page of deliveries (index `notifications_webhook_deliveries_org_order`).
pub async fn deliveries_page(
    conn: &mut AsyncPgConnection,
    w: &Window,
    filter: DeliveryFilter<'_>,
) -> DbResult<Vec<DeliveryRecord>> {
    let mut query = deliveries_in(w, filter)
        .select((
            d::created_at,
            d::id,
            d::endpoint_id,
            d::event_id,
            d::event_type,
            d::status,
            d::attempts,
            d::response_status,
            d::latency_ms,
            d::error,
            d::delivered_at,
        ))
        .order((d::created_at, d::id))
        .limit(w.limit);
    if let Some((at, id)) = w.after {
        query = query.filter(after("created_at, id", at, id));
    }
    query.load(conn).await.map_err(Into::into)
}

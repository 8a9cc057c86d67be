//! Outgoing webhooks: endpoints per organization, signed deliveries, retries, a circuit
//! breaker per endpoint, and the SSRF guard every request goes through.
//!
//! A delivery is a row (`notifications_webhook_deliveries`, the delivery log) plus a
//! durable job (`notifications.deliver_webhook`). The row's id is sent as the delivery id
//! header on every attempt, so a receiver that sees it twice (a retry after a lost
//! response, a worker killed mid-request) can drop the duplicate.

pub mod deliver;
pub mod deliveries;
pub mod endpoints;
pub mod guard;
pub mod observe;
pub mod send;
pub mod signing;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// The JSON body of a delivery: `{"id", "type", "created_at", "data"}`. Built once when
/// the delivery is created and stored, so every attempt sends the same bytes.
pub(crate) fn envelope(
    delivery_id: Uuid,
    event_type: &str,
    at: DateTime<Utc>,
    data: &serde_json::Value,
) -> String {
    serde_json::json!({
        "id": delivery_id,
        "type": event_type,
        "created_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

//! The delivery log of an endpoint, redelivery by hand, and test deliveries.

use crate::error::NotificationsError;
use crate::repo::deliveries::{self, NewDelivery};
use crate::service::Notifications;
use crate::webhooks::deliver::Deliver;
use crate::webhooks::envelope;
use chrono::Utc;
use keel_http::Reply;
use keel_http::pagination::{Page, Paginated};
use keel_persistence::AsyncConnection as _;
use keel_persistence::AsyncPgConnection;
use keel_queue::Enqueued;
use uuid::Uuid;

pub use crate::repo::deliveries::{Delivery, DeliveryStatus};

/// The event type of test deliveries.
const TEST_EVENT_TYPE: &str = "webhook.test";

impl Notifications {
    /// Newest first.
    pub async fn deliveries(
        &self,
        org_id: Uuid,
        endpoint_id: Uuid,
        page: &Page<Uuid>,
    ) -> Result<Paginated<Delivery>, NotificationsError> {
        self.endpoint(org_id, endpoint_id).await?;
        let mut conn = self.inner.pool.get().await?;
        let rows = deliveries::list(
            &mut conn,
            org_id,
            endpoint_id,
            page.fetch_limit(),
            page.after,
        )
        .await?;
        Ok(Paginated::from_rows(rows, page, |d| d.id))
    }

    /// Sends a delivered or failed delivery again, with the same id and body (receivers
    /// that already have it can tell); 409 while it is still being attempted. The
    /// endpoint must be enabled.
    pub async fn redeliver(
        &self,
        org_id: Uuid,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        reply: &Reply<Delivery>,
    ) -> Result<Delivery, NotificationsError> {
        self.require_enabled(org_id, endpoint_id).await?;
        let mut conn = self.inner.pool.get().await?;
        let (delivery, ring) = conn
            .transaction(async |conn| {
                match deliveries::lock(conn, org_id, endpoint_id, delivery_id).await? {
                    None => return Err(NotificationsError::NotFound),
                    // Its job is still trying: a second one would send it twice at once.
                    Some(d) if d.status == DeliveryStatus::Pending => {
                        return Err(NotificationsError::Conflict(
                            "this delivery is still being attempted; redeliver it once it has delivered or failed",
                        ));
                    }
                    Some(_) => {}
                }
                let delivery = deliveries::requeue(conn, delivery_id).await?;
                self.enqueue_delivery(conn, delivery, reply).await
            })
            .await?;
        self.inner.queue.ring([ring]).await;
        Ok(delivery)
    }

    /// A `webhook.test` delivery to this endpoint only, whatever types it subscribes to.
    pub async fn test_delivery(
        &self,
        org_id: Uuid,
        endpoint_id: Uuid,
        reply: &Reply<Delivery>,
    ) -> Result<Delivery, NotificationsError> {
        self.require_enabled(org_id, endpoint_id).await?;
        let delivery_id = Uuid::now_v7();
        let body = envelope(
            delivery_id,
            TEST_EVENT_TYPE,
            Utc::now(),
            &serde_json::json!({ "message": "This is a test delivery from Keel." }),
        );
        let mut conn = self.inner.pool.get().await?;
        let (delivery, ring) = conn
            .transaction(async |conn| {
                let test = NewDelivery {
                    id: delivery_id,
                    endpoint_id,
                    org_id,
                    event_id: None,
                    event_type: TEST_EVENT_TYPE,
                    body: &body,
                };
                let delivery = deliveries::insert(conn, &test).await?;
                self.enqueue_delivery(conn, delivery, reply).await
            })
            .await?;
        self.inner.queue.ring([ring]).await;
        Ok(delivery)
    }

    /// In the transaction that wrote `delivery`: its job and the request's answer. Ring
    /// the job after the commit.
    async fn enqueue_delivery(
        &self,
        conn: &mut AsyncPgConnection,
        delivery: Delivery,
        reply: &Reply<Delivery>,
    ) -> Result<(Delivery, Enqueued), NotificationsError> {
        let job = Deliver {
            delivery_id: delivery.id,
        };
        let ring = self.inner.queue.enqueue(conn, &job).await?;
        reply.record(conn, &delivery).await?;
        Ok((delivery, ring))
    }

    async fn require_enabled(
        &self,
        org_id: Uuid,
        endpoint_id: Uuid,
    ) -> Result<(), NotificationsError> {
        if self.endpoint(org_id, endpoint_id).await?.enabled {
            Ok(())
        } else {
            Err(NotificationsError::invalid(
                "endpoint",
                "the endpoint is disabled; enable it first (PATCH {\"enabled\": true})",
            ))
        }
    }
}

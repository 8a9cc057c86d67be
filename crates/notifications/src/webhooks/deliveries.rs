//! The delivery log of an endpoint, redelivery by hand, and test deliveries.

use crate::error::NotificationsError;
use crate::repo::deliveries::{self, NewDelivery};
use crate::service::Notifications;
use crate::webhooks::deliver::Deliver;
use crate::webhooks::envelope;
use chrono::Utc;
use futures::future::BoxFuture;
use keel_http::Reply;
use keel_http::pagination::{Page, Paginated};
use keel_persistence::AsyncConnection as _;
use keel_persistence::AsyncPgConnection;
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
        self.queue_delivery(reply, move |conn| {
            Box::pin(async move {
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
                Ok(deliveries::requeue(conn, delivery_id).await?)
            })
        })
        .await
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
        self.queue_delivery(reply, move |conn| {
            Box::pin(async move {
                let test = NewDelivery {
                    id: delivery_id,
                    endpoint_id,
                    org_id,
                    event_id: None,
                    event_type: TEST_EVENT_TYPE,
                    body: &body,
                };
                Ok(deliveries::insert(conn, &test).await?)
            })
        })
        .await
    }

    /// Writes a delivery row with `write`, its job and the request's answer in one
    /// transaction, then rings.
    async fn queue_delivery<F>(
        &self,
        reply: &Reply<Delivery>,
        write: F,
    ) -> Result<Delivery, NotificationsError>
    where
        F: for<'c> FnOnce(
                &'c mut AsyncPgConnection,
            ) -> BoxFuture<'c, Result<Delivery, NotificationsError>>
            + Send
            + 'static,
    {
        let queue = &self.inner.queue;
        let (delivery, ring) = self
            .inner
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let delivery = write(conn).await?;
                let ring = queue
                    .enqueue(
                        conn,
                        &Deliver {
                            delivery_id: delivery.id,
                        },
                    )
                    .await?;
                reply.record(conn, &delivery).await?;
                Ok::<_, NotificationsError>((delivery, ring))
            })
            .await?;
        self.inner.queue.ring([ring]).await;
        Ok(delivery)
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

//! The delivery log of an endpoint, redelivery by hand, and test deliveries.

use crate::error::NotificationsError;
use crate::service::Notifications;
use crate::webhooks::deliver::Deliver;
use crate::webhooks::envelope;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use futures::future::BoxFuture;
use keel_http::Reply;
use keel_http::pagination::{Page, Paginated};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbError, OptionalExt};
use serde::Serialize;
use uuid::Uuid;

const COLUMNS: &str = "id, event_id, event_type, status, attempts, response_status, latency_ms, \
    error, response_excerpt, created_at, updated_at, delivered_at";

keel_persistence::text_enum! {
    /// Where a webhook delivery is (`notifications_webhook_deliveries.status`).
    #[derive(utoipa::ToSchema)]
    pub enum DeliveryStatus {
        /// Its job is still trying.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Out of attempts, refused for good, or the endpoint was disabled.
        Failed = "failed",
    }
}

/// One delivery and how its last attempt went.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct Delivery {
    /// Sent as the `keel-delivery-id` header on every attempt.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// The event delivered; absent for test deliveries.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub event_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub status: DeliveryStatus,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// HTTP status of the last attempt, if the receiver answered.
    #[diesel(sql_type = Nullable<Integer>)]
    pub response_status: Option<i32>,
    /// Duration of the last attempt.
    #[diesel(sql_type = Nullable<Integer>)]
    pub latency_ms: Option<i32>,
    /// What went wrong in the last attempt.
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    /// The first bytes of the last response body.
    #[diesel(sql_type = Nullable<Text>)]
    pub response_excerpt: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
}

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
        let rows: Vec<Delivery> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM notifications_webhook_deliveries \
             WHERE endpoint_id = $1 AND org_id = $2 AND ($3::uuid IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(endpoint_id)
        .bind::<SqlUuid, _>(org_id)
        .bind::<Nullable<SqlUuid>, _>(page.after)
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut conn)
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
                let delivery: Option<Delivery> = diesel::sql_query(format!(
                    "SELECT {COLUMNS} FROM notifications_webhook_deliveries \
                     WHERE id = $1 AND endpoint_id = $2 AND org_id = $3 FOR UPDATE"
                ))
                .bind::<SqlUuid, _>(delivery_id)
                .bind::<SqlUuid, _>(endpoint_id)
                .bind::<SqlUuid, _>(org_id)
                .get_result(conn)
                .await
                .map_err(DbError::from)
                .optional()?;
                match delivery {
                    None => return Err(NotificationsError::NotFound),
                    // Its job is still trying: a second one would send it twice at once.
                    Some(d) if d.status == DeliveryStatus::Pending => {
                        return Err(NotificationsError::Conflict(
                            "this delivery is still being attempted; redeliver it once it has delivered or failed",
                        ));
                    }
                    Some(_) => {}
                }
                Ok(diesel::sql_query(format!(
                    "UPDATE notifications_webhook_deliveries SET status = 'pending', updated_at = now() \
                     WHERE id = $1 RETURNING {COLUMNS}"
                ))
                .bind::<SqlUuid, _>(delivery_id)
                .get_result(conn)
                .await?)
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
            "webhook.test",
            Utc::now(),
            &serde_json::json!({ "message": "This is a test delivery from Keel." }),
        );
        self.queue_delivery(reply, move |conn| {
            Box::pin(async move {
                Ok(diesel::sql_query(format!(
                    "INSERT INTO notifications_webhook_deliveries (id, endpoint_id, org_id, event_type, body) \
                     VALUES ($1, $2, $3, 'webhook.test', $4) RETURNING {COLUMNS}"
                ))
                .bind::<SqlUuid, _>(delivery_id)
                .bind::<SqlUuid, _>(endpoint_id)
                .bind::<SqlUuid, _>(org_id)
                .bind::<Text, _>(body)
                .get_result(conn)
                .await?)
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

//! `notifications.fan_out`: one published event → in-app rows, emails and webhook
//! deliveries, as the recipients' preferences and the organization's endpoints say.
//!
//! Everything the job writes is keyed so that a second run writes nothing new: inbox rows
//! by `(event_id, user_id)`, emails by the unique job key `event:{event_id}:{user_id}`,
//! deliveries by `(endpoint_id, event_id)`. The webhook deliveries commit in one
//! transaction, then the recipients in chunks of [`CHUNK`], each its own transaction: a
//! large audience never holds one long transaction, and a run that crashes or times out
//! keeps what it committed; its retry goes through every chunk again, where what was
//! committed costs a no-op statement per write.

use crate::service::Notifications;
use crate::webhooks::deliver::Deliver;
use crate::webhooks::envelope;
use crate::{Recipient, Template};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use keel_events::Event;
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbError, DbResult};
use keel_queue::{Enqueued, Job, JobError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

/// Recipients written per transaction (two statements each: the in-app row and the
/// email job).
const CHUNK: usize = 250;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanOut {
    pub event_id: Uuid,
}

impl Job for FanOut {
    const NAME: &'static str = "notifications.fan_out";
    const MAX_ATTEMPTS: Option<u32> = Some(10);
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(60));
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Jsonb)]
    event: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Off {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    channel: String,
}

#[derive(QueryableByName)]
struct EndpointId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// What one run wrote: doorbells to ring and unread counts to drop after the commit.
#[derive(Default)]
struct Written {
    rings: Vec<Enqueued>,
    notified: Vec<Uuid>,
}

impl Notifications {
    pub(crate) async fn fan_out(&self, event_id: Uuid) -> Result<(), JobError> {
        let inner = &self.inner;
        let mut conn = inner.pool.get().await?;
        let row: EventRow =
            diesel::sql_query("SELECT event, created_at FROM notifications_events WHERE id = $1")
                .bind::<SqlUuid, _>(event_id)
                .get_result(&mut conn)
                .await
                .map_err(DbError::from)?;
        let event: Event = serde_json::from_value(row.event).map_err(JobError::permanent)?;
        let recipients = inner
            .directory
            .recipients(&mut conn, event.org_id, &event.audience)
            .await?;
        let user_ids: Vec<Uuid> = recipients.iter().map(|r| r.user_id).collect();
        let off: HashSet<(Uuid, String)> = diesel::sql_query(
            "SELECT user_id, channel FROM notifications_preferences \
             WHERE user_id = ANY($1) AND event_type = $2 AND NOT enabled",
        )
        .bind::<Array<SqlUuid>, _>(&user_ids)
        .bind::<Text, _>(&event.event_type)
        .load::<Off>(&mut conn)
        .await
        .map_err(DbError::from)?
        .into_iter()
        .map(|o| (o.user_id, o.channel))
        .collect();
        drop(conn);

        let created_at = row.created_at;
        let rings = inner
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                self.enqueue_deliveries(conn, event_id, &event, created_at)
                    .await
            })
            .await?;
        inner.queue.ring(rings).await;
        for chunk in recipients.chunks(CHUNK) {
            self.notify(event_id, &event, &off, chunk).await?;
        }
        Ok(())
    }

    /// In-app rows and email jobs for `recipients`, in one transaction; then their
    /// doorbells and the unread counts they change.
    async fn notify(
        &self,
        event_id: Uuid,
        event: &Event,
        off: &HashSet<(Uuid, String)>,
        recipients: &[Recipient],
    ) -> Result<(), DbError> {
        let org_id = event.org_id;
        let written = self
            .inner
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let mut written = Written::default();
                for r in recipients {
                    if !off.contains(&(r.user_id, "in_app".to_owned()))
                        && insert_inbox(conn, event_id, r, event).await?
                    {
                        written.notified.push(r.user_id);
                    }
                    if !off.contains(&(r.user_id, "email".to_owned())) {
                        written
                            .rings
                            .extend(self.enqueue_email(conn, event_id, r, event).await?);
                    }
                }
                Ok::<_, DbError>(written)
            })
            .await?;
        self.inner.queue.ring(written.rings).await;
        for user_id in written.notified {
            self.inner
                .unread
                .invalidate(&Self::unread_key(user_id, org_id))
                .await;
        }
        Ok(())
    }

    async fn enqueue_email(
        &self,
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        r: &Recipient,
        event: &Event,
    ) -> DbResult<Option<Enqueued>> {
        let unsubscribe_link = self.inner.links.link(r.user_id, &event.event_type);
        let vars = serde_json::json!({
            "name": r.name,
            "title": event.title,
            "body": event.body,
            "link": event.link.clone().unwrap_or_default(),
            "unsubscribe_link": unsubscribe_link,
        });
        self.inner
            .mailer
            .enqueue_once(
                conn,
                &format!("event:{event_id}:{}", r.user_id),
                &r.email,
                Template::Notification,
                vars,
            )
            .await
    }

    /// One delivery per enabled endpoint of the organization subscribed to the type.
    async fn enqueue_deliveries(
        &self,
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        event: &Event,
        at: DateTime<Utc>,
    ) -> DbResult<Vec<Enqueued>> {
        let endpoints: Vec<EndpointId> = diesel::sql_query(
            "SELECT id FROM notifications_webhook_endpoints \
             WHERE org_id = $1 AND enabled AND event_types && ARRAY[$2, '*']",
        )
        .bind::<SqlUuid, _>(event.org_id)
        .bind::<Text, _>(&event.event_type)
        .load(conn)
        .await?;
        let mut rings = Vec::new();
        for endpoint in endpoints {
            let delivery_id = Uuid::now_v7();
            let body = envelope(delivery_id, &event.event_type, at, &event.data);
            let created = diesel::sql_query(
                "INSERT INTO notifications_webhook_deliveries (id, endpoint_id, org_id, event_id, event_type, body) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            )
            .bind::<SqlUuid, _>(delivery_id)
            .bind::<SqlUuid, _>(endpoint.id)
            .bind::<SqlUuid, _>(event.org_id)
            .bind::<SqlUuid, _>(event_id)
            .bind::<Text, _>(&event.event_type)
            .bind::<Text, _>(&body)
            .execute(conn)
            .await?
                == 1;
            if created {
                rings.push(
                    self.inner
                        .queue
                        .enqueue(conn, &Deliver { delivery_id })
                        .await?,
                );
            }
        }
        Ok(rings)
    }
}

/// Inserts the in-app notification; false when this event already notified this user.
async fn insert_inbox(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    r: &Recipient,
    event: &Event,
) -> DbResult<bool> {
    let n = diesel::sql_query(
        "INSERT INTO notifications_inbox (id, event_id, org_id, user_id, event_type, title, body, link, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id, user_id) DO NOTHING",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(event.org_id)
    .bind::<SqlUuid, _>(r.user_id)
    .bind::<Text, _>(&event.event_type)
    .bind::<Text, _>(&event.title)
    .bind::<Text, _>(&event.body)
    .bind::<diesel::sql_types::Nullable<Text>, _>(event.link.as_deref())
    .bind::<Jsonb, _>(&event.data)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

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

use crate::repo::deliveries::NewDelivery;
use crate::repo::inbox::NewNotification;
use crate::repo::{deliveries, endpoints, events, inbox, preferences};
use crate::service::Notifications;
use crate::webhooks::deliver::Deliver;
use crate::webhooks::envelope;
use crate::{Recipient, Template};
use chrono::{DateTime, Utc};
use keel_events::Event;
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbError, DbResult};
use keel_queue::{Enqueued, Job, JobContext, JobError};
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

/// What one run wrote: doorbells to ring and unread counts to drop after the commit.
#[derive(Default)]
struct Written {
    rings: Vec<Enqueued>,
    notified: Vec<Uuid>,
}

impl Notifications {
    pub(crate) async fn fan_out(&self, ctx: &JobContext, event_id: Uuid) -> Result<(), JobError> {
        let inner = &self.inner;
        let mut conn = inner.pool.get().await?;
        let (event, created_at) = events::get(&mut conn, event_id).await?;
        let event: Event = serde_json::from_value(event).map_err(JobError::permanent)?;
        ctx.record_org(event.org_id);
        let recipients = inner
            .directory
            .recipients(&mut conn, event.org_id, &event.audience)
            .await?;
        let user_ids: Vec<Uuid> = recipients.iter().map(|r| r.user_id).collect();
        let off: HashSet<(Uuid, String)> =
            preferences::turned_off(&mut conn, &user_ids, &event.event_type)
                .await?
                .into_iter()
                .collect();
        drop(conn);

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

    /// An event's link as an email needs it: a path within Keel (`/api/v1/...`, what
    /// domains publish, and what the in-app notification keeps) joined to
    /// `mail.public_url`; a full URL as it is.
    fn absolute(&self, link: &str) -> String {
        if link.starts_with('/') {
            let base = self.inner.settings.mail.public_url.trim_end_matches('/');
            format!("{base}{link}")
        } else {
            link.to_owned()
        }
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
            "link": event.link.as_deref().map(|link| self.absolute(link)).unwrap_or_default(),
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
        let endpoint_ids = endpoints::subscribed(conn, event.org_id, &event.event_type).await?;
        let mut rings = Vec::new();
        for endpoint_id in endpoint_ids {
            let delivery_id = Uuid::now_v7();
            let body = envelope(delivery_id, &event.event_type, at, &event.data);
            let delivery = NewDelivery {
                id: delivery_id,
                endpoint_id,
                org_id: event.org_id,
                event_id: Some(event_id),
                event_type: &event.event_type,
                body: &body,
            };
            if deliveries::insert_once(conn, &delivery).await? {
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
    let notification = NewNotification {
        id: Uuid::now_v7(),
        event_id,
        org_id: event.org_id,
        user_id: r.user_id,
        event_type: &event.event_type,
        title: &event.title,
        body: &event.body,
        link: event.link.as_deref(),
        data: &event.data,
    };
    inbox::insert_once(conn, &notification).await
}

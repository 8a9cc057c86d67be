//! The notifications service: publishing events, and the handles the jobs and routes
//! share.

use crate::Mailer;
use crate::directory::Directory;
use crate::fanout::FanOut;
use crate::repo;
use crate::unsubscribe::UnsubscribeLinks;
use crate::webhooks::guard::UrlPolicy;
use crate::webhooks::send::Sender;
use anyhow::Context as _;
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_cache::{Cache, Namespace};
use keel_config::Settings;
use keel_events::{Event, Publisher};
use keel_persistence::{AsyncPgConnection, DbError, DbPool, DbResult};
use keel_queue::{Enqueued, Queue};
use std::sync::Arc;
use uuid::Uuid;

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Notifications {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    pub queue: Queue,
    pub mailer: Mailer,
    pub directory: Arc<dyn Directory>,
    /// Unread in-app notifications per `{user_id}:{org_id}`.
    pub unread: Namespace<i64>,
    pub links: UnsubscribeLinks,
    pub sender: Sender,
    pub policy: UrlPolicy,
}

impl Notifications {
    pub fn new(
        settings: Arc<Settings>,
        pool: DbPool,
        cache: &Cache,
        queue: Queue,
        mailer: Mailer,
        directory: Arc<dyn Directory>,
    ) -> anyhow::Result<Self> {
        let policy = UrlPolicy {
            allow_private_networks: settings.webhooks.allow_private_networks,
        };
        let sender = Sender::new(
            policy,
            settings.webhooks.timeout(),
            settings.webhooks.max_response_bytes,
        )
        .context("cannot build the webhook HTTP client")?;
        let links = UnsubscribeLinks::new(
            settings.notifications.unsubscribe_secret.expose(),
            &settings.mail.public_url,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                pool,
                queue,
                mailer,
                directory,
                unread: cache.namespace("notifications.unread", 1),
                links,
                sender,
                policy,
            }),
        })
    }

    pub(crate) fn unread_key(user_id: Uuid, org_id: Uuid) -> String {
        format!("{user_id}:{org_id}")
    }

    /// Records the event and its fan-out job on `conn` (the publisher's transaction).
    pub async fn publish_on(
        &self,
        conn: &mut AsyncPgConnection,
        event: &Event,
    ) -> DbResult<Enqueued> {
        let id = Uuid::now_v7();
        let json = serde_json::to_value(event)
            .map_err(|e| DbError::internal("serialising an event", e))?;
        repo::events::insert(conn, id, event.org_id, &event.event_type, &json).await?;
        metrics::counter!("keel_events_published_total").increment(1);
        self.inner
            .queue
            .enqueue(conn, &FanOut { event_id: id })
            .await
    }
}

impl Publisher for Notifications {
    fn publish<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: Event,
    ) -> BoxFuture<'a, DbResult<Enqueued>> {
        async move { self.publish_on(conn, &event).await }.boxed()
    }
}

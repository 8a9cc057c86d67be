//! Retention: what notifications keeps, and for how long.
//!
//! Events, in-app notifications and the webhook delivery log grow with every change any
//! domain makes. The `notifications.purge` job (daily, see [`Purge`]) deletes events older
//! than `notifications.retention_days` together with their in-app notifications and
//! finished deliveries, and finished test deliveries of the same age. A delivery still
//! being attempted keeps its event until it finishes, or until it has had no attempt for
//! a week (its job died). Deleted unread notifications drop
//! out of the cached unread counts at once.

use crate::error::NotificationsError;
use crate::inbox::Reader;
use crate::repo::{deliveries, events, inbox};
use crate::service::Notifications;
use chrono::{DateTime, Utc};
use keel_persistence::AsyncConnection as _;
use keel_queue::Job;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Events deleted per transaction: short transactions, and a job that stops in the middle
/// has kept what it deleted.
const BATCH: i64 = 500;

/// A pending delivery with no attempt for this long is abandoned (its job died for a
/// reason other than the receiver: retries span about two hours): it no longer keeps its
/// event, and goes with it.
const STALLED_AFTER_DAYS: i32 = 7;

/// The daily purge (scheduled in [`crate::jobs::register_events`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purge;

impl Job for Purge {
    const NAME: &'static str = "notifications.purge";
    /// Batches of 500 events; a first purge of a large backlog may take a while.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(600));
}

/// One batch: how many old events it looked at, what it deleted, whose unread count moved.
#[derive(Default)]
struct Batch {
    candidates: usize,
    purged: Purged,
    unread: Vec<Reader>,
}

/// What one purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub events: usize,
    pub notifications: usize,
    pub deliveries: usize,
}

impl Notifications {
    /// Runs the purge with `notifications.retention_days` (nothing when it is 0).
    pub async fn purge_expired(&self) -> Result<Purged, NotificationsError> {
        match self.inner.settings.notifications.retention_days {
            0 => Ok(Purged::default()),
            days => {
                self.purge_before(Utc::now() - chrono::Duration::days(i64::from(days)))
                    .await
            }
        }
    }

    /// Deletes events created before `cutoff` (with their notifications and finished
    /// deliveries) and finished test deliveries created before it.
    async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<Purged, NotificationsError> {
        let mut purged = Purged::default();
        loop {
            let batch = self.purge_batch(cutoff).await?;
            purged.events += batch.purged.events;
            purged.notifications += batch.purged.notifications;
            purged.deliveries += batch.purged.deliveries;
            for reader in batch.unread {
                self.forget_unread(reader).await;
            }
            if i64::try_from(batch.candidates).unwrap_or(i64::MAX) < BATCH {
                break;
            }
        }
        let mut conn = self.inner.pool.get().await?;
        purged.deliveries += deliveries::purge_tests(&mut conn, cutoff, STALLED_AFTER_DAYS).await?;
        Ok(purged)
    }

    /// One transaction over up to [`BATCH`] old events. Only the event rows are locked, so
    /// a redelivery may make a delivery pending meanwhile: deliveries are deleted by the
    /// same condition again, and only events left without deliveries go, with their
    /// notifications (noting whose unread count changes).
    async fn purge_batch(&self, cutoff: DateTime<Utc>) -> Result<Batch, NotificationsError> {
        self.inner
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let candidates =
                    events::lock_purgeable(conn, cutoff, STALLED_AFTER_DAYS, BATCH).await?;
                let mut batch = Batch {
                    candidates: candidates.len(),
                    ..Batch::default()
                };
                if candidates.is_empty() {
                    return Ok(batch);
                }
                batch.purged.deliveries =
                    deliveries::purge_of_events(conn, &candidates, STALLED_AFTER_DAYS).await?;
                let doomed = events::without_deliveries(conn, &candidates).await?;
                batch.unread = inbox::unread_readers(conn, &doomed)
                    .await?
                    .into_iter()
                    .map(|(user_id, org_id)| Reader { user_id, org_id })
                    .collect();
                batch.purged.notifications = inbox::delete_of_events(conn, &doomed).await?;
                batch.purged.events = events::delete(conn, &doomed).await?;
                Ok::<_, NotificationsError>(batch)
            })
            .await
    }
}

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
use crate::service::Notifications;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use keel_persistence::AsyncConnection as _;
use keel_persistence::DbError;
use keel_queue::Job;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

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

/// A delivery that no longer keeps its event: finished, or pending without an attempt
/// for [`STALLED_AFTER_DAYS`] (bound as `$2`).
const FINISHED_OR_STALLED: &str =
    "(status <> 'pending' OR updated_at < now() - make_interval(days => $2))";

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

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct Unread {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    org_id: Uuid,
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
        purged.deliveries += diesel::sql_query(format!(
            "DELETE FROM notifications_webhook_deliveries \
             WHERE event_id IS NULL AND created_at < $1 AND {FINISHED_OR_STALLED}"
        ))
        .bind::<Timestamptz, _>(cutoff)
        .bind::<Integer, _>(STALLED_AFTER_DAYS)
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
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
                let candidates: Vec<Uuid> = ids(diesel::sql_query(format!(
                    "SELECT id FROM notifications_events e WHERE created_at < $1 \
                         AND NOT EXISTS (SELECT 1 FROM notifications_webhook_deliveries d \
                                         WHERE d.event_id = e.id AND NOT {FINISHED_OR_STALLED}) \
                         ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED"
                ))
                .bind::<Timestamptz, _>(cutoff)
                .bind::<Integer, _>(STALLED_AFTER_DAYS)
                .bind::<BigInt, _>(BATCH)
                .load::<Id>(conn)
                .await?);
                let mut batch = Batch {
                    candidates: candidates.len(),
                    ..Batch::default()
                };
                if candidates.is_empty() {
                    return Ok(batch);
                }
                batch.purged.deliveries = diesel::sql_query(format!(
                    "DELETE FROM notifications_webhook_deliveries \
                         WHERE event_id = ANY($1) AND {FINISHED_OR_STALLED}"
                ))
                .bind::<Array<SqlUuid>, _>(&candidates)
                .bind::<Integer, _>(STALLED_AFTER_DAYS)
                .execute(conn)
                .await?;
                let doomed: Vec<Uuid> = ids(diesel::sql_query(
                    "SELECT id FROM notifications_events e WHERE id = ANY($1) \
                         AND NOT EXISTS (SELECT 1 FROM notifications_webhook_deliveries d \
                                         WHERE d.event_id = e.id)",
                )
                .bind::<Array<SqlUuid>, _>(&candidates)
                .load::<Id>(conn)
                .await?);
                batch.unread = diesel::sql_query(
                    "SELECT DISTINCT user_id, org_id FROM notifications_inbox \
                         WHERE event_id = ANY($1) AND read_at IS NULL",
                )
                .bind::<Array<SqlUuid>, _>(&doomed)
                .load::<Unread>(conn)
                .await?
                .into_iter()
                .map(|u| Reader {
                    user_id: u.user_id,
                    org_id: u.org_id,
                })
                .collect();
                batch.purged.notifications =
                    diesel::sql_query("DELETE FROM notifications_inbox WHERE event_id = ANY($1)")
                        .bind::<Array<SqlUuid>, _>(&doomed)
                        .execute(conn)
                        .await?;
                batch.purged.events =
                    diesel::sql_query("DELETE FROM notifications_events WHERE id = ANY($1)")
                        .bind::<Array<SqlUuid>, _>(&doomed)
                        .execute(conn)
                        .await?;
                Ok::<_, NotificationsError>(batch)
            })
            .await
    }
}

fn ids(rows: Vec<Id>) -> Vec<Uuid> {
    rows.into_iter().map(|row| row.id).collect()
}

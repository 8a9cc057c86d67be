//! The periodic sweeper (`uploads.sweep`): removes what no row accounts for — objects
//! left by a process that died between storing the bytes and committing the row, or by
//! a deletion job that ran before a late processor wrote a derived object — and
//! unfinished uploads past their expiry.

use crate::jobs::DeleteObjects;
use crate::{Uploads, UploadsError, keys, repo};
use chrono::{Duration as Age, Utc};
use diesel_async::AsyncConnection;
use futures::TryStreamExt;
use keel_queue::Job;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// Run the sweep once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sweep;

impl Job for Sweep {
    const NAME: &'static str = "uploads.sweep";
    /// Listing a large bucket takes a while; the next tick starts over anyway.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30 * 60));
    const MAX_ATTEMPTS: Option<u32> = Some(1);
}

/// An object younger than this is never an orphan: its row may be about to commit.
const GRACE: Age = Age::hours(1);
/// Ids asked about per query.
const BATCH: usize = 500;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Objects (originals and derived ones) whose upload has no row.
    pub orphan_objects: usize,
    /// Unfinished uploads past `expires_at`.
    pub expired_uploads: usize,
}

impl Uploads {
    /// One pass of the sweeper. Objects are grouped by upload so one query answers for
    /// a batch of uploads.
    pub async fn sweep(&self) -> Result<Swept, UploadsError> {
        let mut swept = Swept::default();
        let cutoff = Utc::now() - GRACE;
        let mut candidates: BTreeMap<Uuid, Vec<keel_storage::ObjectKey>> = BTreeMap::new();
        let mut listing = self.inner.storage.list(None);
        while let Some(object) = listing.try_next().await? {
            if object.last_modified > cutoff {
                continue;
            }
            if let Some(id) = keys::upload_of(&object.key) {
                candidates.entry(id).or_default().push(object.key);
            }
            if candidates.len() >= BATCH {
                swept.orphan_objects +=
                    self.remove_orphans(std::mem::take(&mut candidates)).await?;
            }
        }
        swept.orphan_objects += self.remove_orphans(candidates).await?;
        swept.expired_uploads = self.expire_unfinished().await?;
        metrics::counter!("keel_uploads_swept_total", "kind" => "orphan_object")
            .increment(swept.orphan_objects as u64);
        metrics::counter!("keel_uploads_swept_total", "kind" => "expired_upload")
            .increment(swept.expired_uploads as u64);
        Ok(swept)
    }

    async fn remove_orphans(
        &self,
        candidates: BTreeMap<Uuid, Vec<keel_storage::ObjectKey>>,
    ) -> Result<usize, UploadsError> {
        if candidates.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = candidates.keys().copied().collect();
        let known = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::existing(&mut conn, &ids).await?
        };
        let mut removed = 0;
        for (id, objects) in candidates {
            if known.contains(&id) {
                continue;
            }
            for key in objects {
                self.inner.storage.delete(&key).await?;
                tracing::info!(object.key = %key, "orphaned upload object removed");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes the rows of unfinished uploads past their expiry and queues the removal
    /// of whatever bytes they had received.
    async fn expire_unfinished(&self) -> Result<usize, UploadsError> {
        let mut conn = self.inner.pool.get().await?;
        let (count, jobs) = conn
            .transaction(async |conn| {
                let expired = repo::uploads::delete_expired(conn, BATCH as i64).await?;
                let mut jobs = Vec::with_capacity(expired.len());
                for row in &expired {
                    repo::usage::release(conn, row.org_id, row.size_bytes).await?;
                    jobs.push(
                        self.inner
                            .queue
                            .enqueue(
                                conn,
                                &DeleteObjects {
                                    org_id: row.org_id,
                                    upload_id: row.id,
                                },
                            )
                            .await?,
                    );
                }
                Ok::<_, UploadsError>((expired.len(), jobs))
            })
            .await?;
        self.inner.queue.ring(jobs).await;
        Ok(count)
    }
}

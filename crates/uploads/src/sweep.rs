//! The periodic sweeper (`uploads.sweep`): removes what no row accounts for — objects
//! left by a process that died between storing the bytes and committing the row, or by
//! a deletion job that ran before a late processor wrote a derived object — and
//! unfinished uploads past their expiry.

use crate::model::UploadState;
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

/// An upload still `processing` this long after its last change has outlived every
/// attempt of its job (5 × 15 minutes, and their backoff): it is marked failed.
const STALE_PROCESSING: Age = Age::hours(6);

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Objects (originals and derived ones) whose upload has no row, and direct uploads'
    /// unchecked objects once their upload stopped receiving.
    pub orphan_objects: usize,
    /// Unfinished uploads past `expires_at`.
    pub expired_uploads: usize,
    /// Uploads whose processing never recorded an outcome, now `failed`.
    pub stale_processing: usize,
}

impl Uploads {
    /// One pass of the sweeper: expired uploads first (a few queries), then stale
    /// processing, then the listing of the whole store. An object that cannot be
    /// removed is logged and left for the next pass; it stops nothing else.
    pub async fn sweep(&self) -> Result<Swept, UploadsError> {
        let mut swept = Swept {
            expired_uploads: self.expire_unfinished().await?,
            stale_processing: self.fail_stale_processing().await?,
            ..Swept::default()
        };
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
        for (kind, n) in [
            ("orphan_object", swept.orphan_objects),
            ("expired_upload", swept.expired_uploads),
            ("stale_processing", swept.stale_processing),
        ] {
            metrics::counter!("keel_uploads_swept_total", "kind" => kind).increment(n as u64);
        }
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
        let states = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::states(&mut conn, &ids).await?
        };
        let mut removed = 0;
        for (id, objects) in candidates {
            let state = states.get(&id).copied();
            for key in objects {
                let unchecked = key.segments().last() == Some(&keys::INCOMING);
                let orphan = match state {
                    None => true,
                    Some(state) => unchecked && state != UploadState::Receiving,
                };
                if !orphan {
                    continue;
                }
                match self.inner.storage.delete(&key).await {
                    Ok(()) => {
                        tracing::info!(object.key = %key, "orphaned upload object removed");
                        removed += 1;
                    }
                    Err(e) => {
                        tracing::warn!(object.key = %key, error = %e, "orphaned upload object not removed; next pass")
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Deletes the rows of unfinished uploads past their expiry and queues the removal
    /// of whatever bytes they had received, batch after batch.
    async fn expire_unfinished(&self) -> Result<usize, UploadsError> {
        let mut total = 0;
        loop {
            let mut conn = self.inner.pool.get().await?;
            let (expired, jobs) = conn
                .transaction(async |conn| {
                    let expired = repo::uploads::delete_expired(conn, BATCH as i64).await?;
                    let mut jobs = Vec::with_capacity(expired.len());
                    for row in &expired {
                        jobs.push(self.let_go(conn, row, true).await?);
                    }
                    Ok::<_, UploadsError>((expired, jobs))
                })
                .await?;
            drop(conn);
            self.inner.queue.ring(jobs).await;
            for row in &expired {
                self.inner
                    .by_id
                    .invalidate(&Self::cache_key(row.org_id, row.id))
                    .await;
            }
            total += expired.len();
            if expired.len() < BATCH {
                return Ok(total);
            }
        }
    }

    /// Marks failed the uploads whose processing never recorded an outcome.
    async fn fail_stale_processing(&self) -> Result<usize, UploadsError> {
        let stale = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::stale_processing(&mut conn, Utc::now() - STALE_PROCESSING, BATCH as i64)
                .await?
        };
        for row in &stale {
            tracing::warn!(upload.id = %row.id, "processing never finished; the upload is marked failed");
            self.give_up(row, "processing did not finish; upload the file again")
                .await?;
        }
        Ok(stale.len())
    }
}

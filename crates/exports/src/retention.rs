//! The daily `exports.retention` job: exports past their expiry lose their file and
//! their row (`exports.retention_days` after they finished), and exports whose job died
//! for good without recording an end are marked failed.

use crate::repo::exports as repo;
use crate::{Exports, ExportsError, keys};
use chrono::Utc;
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};

/// Rows handled per transaction.
const BATCH: i64 = 500;

/// An active export untouched this long has lost its job for good: progress is written
/// every few seconds while one runs, a run's time limit is half an hour, and its three
/// attempts (with their leases and backoff) are over well within this.
const STALE_AFTER_HOURS: i64 = 3;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Retention;

impl keel_queue::Job for Retention {
    const NAME: &'static str = "exports.retention";
}

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub expired: usize,
    pub stale: usize,
}

impl Exports {
    /// Runs the retention once. Files go first, then the row: a file whose removal
    /// fails keeps its row (and is tried again next run).
    pub async fn apply_retention(&self) -> Result<Removed, ExportsError> {
        let mut removed = Removed::default();
        let mut conn = self.inner.pool.get().await?;
        loop {
            let storage = &self.inner.storage;
            let batch = conn
                .transaction(async |conn| {
                    let rows = repo::delete_expired(conn, BATCH).await?;
                    for row in &rows {
                        // Rolls every delete of the batch back: they are retried.
                        storage
                            .delete_prefix(&keys::folder(row.org_id, row.id))
                            .await?;
                    }
                    Ok::<_, ExportsError>(rows.len())
                })
                .await?;
            removed.expired += batch;
            if batch < BATCH as usize {
                break;
            }
        }
        let before = Utc::now() - chrono::Duration::hours(STALE_AFTER_HOURS);
        let stale = repo::stale(&mut conn, before, BATCH).await?;
        drop(conn);
        for id in &stale {
            self.give_up(*id, "the export's job stopped without finishing it")
                .await?;
        }
        removed.stale = stale.len();
        Ok(removed)
    }
}

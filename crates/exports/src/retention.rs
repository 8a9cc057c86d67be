//! The hourly `exports.retention` job: exports past their expiry lose their files, then
//! their rows (`exports.retention_days` after they finished); exports whose job died for
//! good without recording an end are marked failed; the request log behind the daily
//! limit forgets what is older than two days.

use crate::repo::{exports as repo, requests};
use crate::{Exports, ExportsError, keys};
use chrono::Utc;
use serde::{Deserialize, Serialize};

/// Rows handled per run and kind; the next run takes the rest.
const BATCH: i64 = 500;

/// A running export untouched this long has lost its job: a run writes its progress
/// every few seconds and ends itself within its half-hour limit, and the queue takes a
/// dead worker's job over after that limit.
const STALE_AFTER_MINUTES: i64 = 60;

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
    pub requests: usize,
}

impl Exports {
    /// Runs the retention once. Each expired export is handled on its own, files first:
    /// one whose files cannot be removed keeps its row (and is tried again next run)
    /// without holding the others back, and no transaction stays open across the store.
    pub async fn apply_retention(&self) -> Result<Removed, ExportsError> {
        let mut removed = Removed::default();
        let mut conn = self.inner.services.pool.get().await?;
        for row in repo::expired(&mut conn, BATCH).await? {
            let folder = keys::folder(row.org_id, row.id);
            if let Err(e) = self.inner.services.storage.delete_prefix(&folder).await {
                tracing::warn!(export.id = %row.id, error = %e, "expired export's files not removed; retried next run");
                continue;
            }
            if repo::delete_expired(&mut conn, row.id).await? {
                removed.expired += 1;
            }
        }
        let now = Utc::now();
        removed.requests = requests::purge(&mut conn, now - chrono::Duration::days(2)).await?;
        let before = now - chrono::Duration::minutes(STALE_AFTER_MINUTES);
        let stale = repo::stale(&mut conn, before, BATCH).await?;
        drop(conn);
        for id in &stale {
            self.give_up(
                *id,
                "the export's job stopped without finishing it; request it again",
            )
            .await?;
        }
        removed.stale = stale.len();
        Ok(removed)
    }
}

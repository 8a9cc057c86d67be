//! The accounts domain's background jobs.

use keel_queue::{Job, JobContext, JobError, Registry, RegistryError};
use serde::{Deserialize, Serialize};

/// Deletes long-ended sessions and one-time tokens, hourly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeExpired;

impl Job for PurgeExpired {
    const NAME: &'static str = "accounts.purge_expired";
}

pub fn register(registry: &mut Registry) -> Result<(), RegistryError> {
    registry.register(|ctx: JobContext, _: PurgeExpired| async move {
        let mut conn = ctx.pool.get().await.map_err(JobError::from)?;
        let purged = crate::repo::purge_expired(&mut conn, 10_000)
            .await
            .map_err(JobError::from)?;
        tracing::info!(purged, "expired sessions and tokens deleted");
        Ok(())
    })?;
    registry.periodic::<PurgeExpired, _>("0 23 * * * *", || PurgeExpired)?;
    Ok(())
}

//! The exports domain's jobs and their registration.

use crate::Exports;
use crate::retention::Retention;
use keel_queue::{Job, JobContext, JobError, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Produce one export's file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generate {
    pub export_id: Uuid,
}

impl Job for Generate {
    const NAME: &'static str = "exports.generate";
    /// A run that dies starts the file again; three tries ride out a restart or a
    /// store's hiccup without looping on an export that cannot be produced.
    const MAX_ATTEMPTS: Option<u32> = Some(3);
    /// A million rows take seconds; tens of millions, minutes. Half an hour bounds a
    /// stuck run, and is how long a killed worker's export waits before another worker
    /// takes it over (the lease is this plus a margin).
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30 * 60));
}

/// Remove the file of a deleted export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteFiles {
    pub org_id: Uuid,
    pub export_id: Uuid,
}

impl Job for DeleteFiles {
    const NAME: &'static str = "exports.delete_files";
}

/// Attaches the exports jobs to the worker registry.
pub fn register(registry: &mut Registry, exports: Exports) -> Result<(), RegistryError> {
    let generator = exports.clone();
    registry.register(move |ctx: JobContext, job: Generate| {
        let e = generator.clone();
        async move { e.generate(&ctx, job.export_id).await }
    })?;
    // Each run holds a read connection and a core's worth of encoding: a few at a time
    // per process leave the pool and the CPU to everything else.
    registry.concurrency::<Generate>(exports.inner.settings.exports.concurrency)?;
    let deleter = exports.clone();
    registry.register(move |_ctx: JobContext, job: DeleteFiles| {
        let e = deleter.clone();
        async move {
            let folder = crate::keys::folder(job.org_id, job.export_id);
            let removed = e
                .storage()
                .delete_prefix(&folder)
                .await
                .map_err(JobError::retry)?;
            tracing::info!(export.id = %job.export_id, objects = removed, "export files deleted");
            Ok(())
        }
    })?;
    registry.register(move |_ctx: JobContext, _: Retention| {
        let e = exports.clone();
        async move {
            let removed = e.apply_retention().await.map_err(JobError::from)?;
            tracing::info!(
                expired = removed.expired,
                stale = removed.stale,
                requests = removed.requests,
                "exports retention applied"
            );
            Ok(())
        }
    })?;
    // Hourly, at a quiet minute; one tick runs once across all worker processes.
    registry.periodic::<Retention, _>("0 41 * * * *", || Retention)?;
    Ok(())
}

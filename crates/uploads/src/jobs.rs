//! The uploads domain's jobs and their registration.

use crate::Uploads;
use keel_queue::{Job, JobContext, JobError, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Inspect and process one upload (`processing` → `ready` | `rejected` | `failed`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub upload_id: Uuid,
}

impl Job for Process {
    const NAME: &'static str = "uploads.process";
    const MAX_ATTEMPTS: Option<u32> = Some(5);
    /// Hashing streams the whole file once (a 5 GiB file takes tens of seconds from a
    /// local disk, minutes from a slow store); a thumbnail adds a decode.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(15 * 60));
}

/// Run the deferred processors (the AI task) on a `ready` upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AiTask {
    pub upload_id: Uuid,
}

impl Job for AiTask {
    const NAME: &'static str = "uploads.ai_task";
    /// Spread over a few minutes by the backoff (or the provider's `Retry-After`): long
    /// enough to ride out a rate limit or a short outage.
    const MAX_ATTEMPTS: Option<u32> = Some(6);
    /// Above any sensible `ai.timeout_ms`: the call's own timeout ends an attempt first.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(300));
}

/// Remove the objects of a deleted, rejected or failed upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteObjects {
    pub org_id: Uuid,
    pub upload_id: Uuid,
}

impl Job for DeleteObjects {
    const NAME: &'static str = "uploads.delete_objects";
}

/// Attaches the uploads jobs to the worker registry.
pub fn register(registry: &mut Registry, uploads: Uploads) -> Result<(), RegistryError> {
    let u = uploads.clone();
    registry.register(move |ctx: JobContext, job: Process| {
        let u = u.clone();
        async move { u.process(&ctx, job.upload_id).await }
    })?;
    let describer = uploads.clone();
    registry.register(move |ctx: JobContext, job: AiTask| {
        let u = describer.clone();
        async move { u.run_deferred(&ctx, job.upload_id).await }
    })?;
    registry.concurrency::<AiTask>(uploads.inner.settings.ai.concurrency)?;
    let deleter = uploads.clone();
    registry.register(move |_ctx: JobContext, job: DeleteObjects| {
        let u = deleter.clone();
        async move {
            let folder = crate::keys::folder(job.org_id, job.upload_id);
            let removed = u
                .storage()
                .delete_prefix(&folder)
                .await
                .map_err(JobError::retry)?;
            tracing::info!(upload.id = %job.upload_id, objects = removed, "upload objects deleted");
            Ok(())
        }
    })?;
    let sweeper = uploads.clone();
    registry.register(move |_ctx: JobContext, _: crate::sweep::Sweep| {
        let u = sweeper.clone();
        async move {
            let swept = u
                .sweep()
                .await
                .map_err(|e| JobError::retry(anyhow::Error::new(e)))?;
            tracing::info!(
                orphan_objects = swept.orphan_objects,
                expired_uploads = swept.expired_uploads,
                "uploads swept"
            );
            Ok(())
        }
    })?;
    // Hourly, at a quiet minute; one tick runs once across all worker processes.
    registry.periodic::<crate::sweep::Sweep, _>("0 23 * * * *", || crate::sweep::Sweep)?;
    Ok(())
}

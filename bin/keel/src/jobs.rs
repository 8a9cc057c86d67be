//! The job handlers of every domain and the platform's periodic housekeeping, composed for
//! `keel work` / `keel all`.

use crate::domains::Domains;
use keel_queue::{Job, JobContext, JobError, Registry};
use serde::{Deserialize, Serialize};

/// Deletes idempotency keys older than their 24 h lifetime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeIdempotencyKeys;

impl Job for PurgeIdempotencyKeys {
    const NAME: &'static str = "http.purge_idempotency_keys";
}

pub fn registry(domains: &Domains) -> anyhow::Result<Registry> {
    let mut registry = Registry::new();
    keel_notifications::jobs::register(&mut registry, domains.mailer.clone())?;
    keel_notifications::jobs::register_events(&mut registry, domains.notifications.clone())?;
    keel_accounts::jobs::register(&mut registry, domains.accounts.clone())?;
    keel_uploads::jobs::register(&mut registry, domains.uploads.clone())?;
    keel_exports::jobs::register(&mut registry, domains.exports.clone())?;
    registry.register(|ctx: JobContext, _: PurgeIdempotencyKeys| async move {
        let purged = keel_http::idempotency::purge_expired(&ctx.pool)
            .await
            .map_err(JobError::from)?;
        tracing::info!(purged, "expired idempotency keys deleted");
        Ok(())
    })?;
    registry.periodic::<PurgeIdempotencyKeys, _>("0 17 * * * *", || PurgeIdempotencyKeys)?;
    Ok(registry)
}

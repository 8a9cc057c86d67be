//! The `uploads.ai_task` job: the processors that run apart from processing (the AI
//! task), on a `ready` upload, each adding its results. A failure that retrying cannot
//! fix — or the last attempt's — is recorded with the upload (`{"error": ...}` under the
//! processor's name), never turning a ready upload into a failed one.

use crate::model::UploadState;
use crate::process::{Content, FileFacts, Verdict};
use crate::{Uploads, keys, repo};
use keel_queue::{JobContext, JobError};
use serde_json::json;
use uuid::Uuid;

impl Uploads {
    pub(crate) async fn run_deferred(&self, ctx: &JobContext, id: Uuid) -> Result<(), JobError> {
        let row = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::by_id(&mut conn, id, false).await?
        };
        let Some(row) = row.filter(|r| r.state == UploadState::Ready) else {
            return Ok(());
        };
        ctx.record_org(row.org_id);
        let facts = FileFacts {
            org_id: row.org_id,
            upload_id: id,
            file_name: row.file_name.clone(),
            declared_type: row.declared_type.clone(),
            detected_type: row.detected_type.clone().unwrap_or_default(),
            size: u64::try_from(row.size_bytes).unwrap_or_default(),
            sha256: row.sha256.clone().unwrap_or_default(),
        };
        let key = keys::original(row.org_id, id);
        let content = Content {
            storage: &self.inner.storage,
            key: &key,
            org_id: row.org_id,
            upload_id: id,
        };
        let deferred = self
            .inner
            .processors
            .iter()
            .filter(|p| p.deferred() && p.accepts(&facts));
        for processor in deferred {
            let result = match processor.process(&facts, &content).await {
                Ok(Verdict::Accept(Some(value))) => value,
                Ok(Verdict::Accept(None)) => continue,
                Ok(Verdict::Reject(reason)) => json!({ "error": reason }),
                Err(e) => match e.retry(ctx.is_last_attempt()) {
                    Ok(again) => return Err(again),
                    Err(end) => {
                        tracing::warn!(upload.id = %id, processor = processor.name(), error = %end, "deferred processor gave up");
                        json!({ "error": end.to_string() })
                    }
                },
            };
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::set_processor_result(&mut conn, id, processor.name(), &result).await?;
        }
        self.inner
            .by_id
            .invalidate(&Self::cache_key(row.org_id, id))
            .await;
        Ok(())
    }
}

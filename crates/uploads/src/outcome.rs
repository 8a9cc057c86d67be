//! The `uploads.process` job's side of the service: run the pipeline, then record its
//! decision, the event and the clean-up in one transaction.

use crate::jobs::AiTask;
use crate::model::{Results, UploadMethod, UploadState};
use crate::process::pipeline::{self, Decision};
use crate::process::{Content, FileFacts, ProcessError};
use crate::repo::{self, uploads::Row};
use crate::rules::holds_quota;
use crate::{Uploads, UploadsError, keys};
use diesel_async::AsyncConnection;
use keel_events::{Audience, Event};
use keel_queue::{JobContext, JobError};
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

impl Uploads {
    /// Processes one upload. Idempotent: an upload no longer `processing` (deleted, or
    /// decided by an earlier run) is left alone.
    pub(crate) async fn process(&self, ctx: &JobContext, id: Uuid) -> Result<(), JobError> {
        let row = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::by_id(&mut conn, id, false).await?
        };
        let Some(row) = row.filter(|r| r.state == UploadState::Processing) else {
            return Ok(());
        };
        ctx.record_org(row.org_id);
        let span = tracing::info_span!(
            "upload.process",
            upload.id = %id,
            org.id = %row.org_id,
            upload.method = row.method.as_str(),
            upload.outcome = tracing::field::Empty,
        );
        let key = keys::original(row.org_id, id);
        let content = Content {
            storage: &self.inner.storage,
            key: &key,
            org_id: row.org_id,
            upload_id: id,
        };
        let facts = facts_of(&row);
        let started = std::time::Instant::now();
        let settings = &self.inner.settings.uploads;
        let result = async {
            if row.method == UploadMethod::Resumable {
                let length = u64::try_from(row.size_bytes).unwrap_or_default();
                self.assemble(row.org_id, id, length).await?;
            }
            pipeline::run(settings, &self.inner.processors, facts.clone(), &content).await
        }
        .instrument(span.clone())
        .await;
        let decision = match result.map_err(|e| e.retry(ctx.is_last_attempt())) {
            Ok(decision) => decision,
            Err(Ok(again)) => return Err(again),
            Err(Err(e)) => {
                span.in_scope(|| tracing::warn!(error = %e, "upload processing failed"));
                failed(facts, &e)
            }
        };
        span.record("upload.outcome", decision.state.as_str());
        metrics::counter!("keel_uploads_processed_total", "outcome" => decision.state.as_str())
            .increment(1);
        metrics::histogram!("keel_uploads_processing_seconds")
            .record(started.elapsed().as_secs_f64());
        self.record(&row, &decision).await.map_err(|e| match e {
            UploadsError::Db(db) => JobError::from(db),
            other => JobError::retry(anyhow::Error::new(other)),
        })
    }

    /// Writes the decision, and for a refused upload gives its bytes back to the quota
    /// and queues their removal; publishes the matching event. All in one transaction.
    async fn record(&self, row: &Row, d: &Decision) -> Result<(), UploadsError> {
        let size = i64::try_from(d.facts.size).unwrap_or(i64::MAX);
        let outcome = repo::uploads::Outcome {
            state: d.state,
            detected_type: Some(&d.facts.detected_type)
                .filter(|t| !t.is_empty())
                .map(String::as_str),
            sha256: Some(&d.facts.sha256)
                .filter(|s| !s.is_empty())
                .map(String::as_str),
            size_bytes: if d.facts.size > 0 || d.state == UploadState::Ready {
                size
            } else {
                row.size_bytes
            },
            reason: d.reason.as_deref(),
            results: &d.results,
        };
        let mut conn = self.inner.pool.get().await?;
        let jobs = conn
            .transaction(async |conn| {
                let Some(updated) = repo::uploads::finish(conn, row.id, &outcome).await? else {
                    return Ok(Vec::new());
                };
                let mut jobs = Vec::new();
                if !holds_quota(d.state) {
                    jobs.push(self.let_go(conn, row, true).await?);
                }
                let deferred = self
                    .inner
                    .processors
                    .iter()
                    .any(|p| p.deferred() && p.accepts(&d.facts));
                if d.state == UploadState::Ready && deferred {
                    jobs.push(
                        self.inner
                            .queue
                            .enqueue(conn, &AiTask { upload_id: row.id })
                            .await?,
                    );
                }
                jobs.push(
                    self.inner
                        .publisher
                        .publish(conn, event(&updated, d))
                        .await?,
                );
                Ok::<_, UploadsError>(jobs)
            })
            .await?;
        self.inner.queue.ring(jobs).await;
        self.inner
            .by_id
            .invalidate(&Self::cache_key(row.org_id, row.id))
            .await;
        Ok(())
    }
}

impl Uploads {
    /// Records `row` as failed with `reason` (its processing can no longer finish).
    pub(crate) async fn give_up(&self, row: &Row, reason: &str) -> Result<(), UploadsError> {
        let decision = Decision {
            state: UploadState::Failed,
            facts: facts_of(row),
            reason: Some(reason.to_owned()),
            results: Results::default(),
        };
        self.record(row, &decision).await
    }
}

/// What the row knows of the file before processing looks at it.
fn facts_of(row: &Row) -> FileFacts {
    FileFacts {
        org_id: row.org_id,
        upload_id: row.id,
        file_name: row.file_name.clone(),
        declared_type: row.declared_type.clone(),
        detected_type: String::new(),
        size: 0,
        sha256: String::new(),
    }
}

fn failed(facts: FileFacts, error: &ProcessError) -> Decision {
    let reason = match error {
        ProcessError::Permanent(e) => format!("processing failed: {e:#}"),
        ProcessError::Transient(_) | ProcessError::RetryAfter(..) | ProcessError::Deferred(..) => {
            "processing failed: storage stayed unavailable; upload the file again".to_owned()
        }
    };
    Decision {
        state: UploadState::Failed,
        facts,
        reason: Some(reason),
        results: Results::default(),
    }
}

/// `upload.processed`, `upload.rejected` or `upload.failed`, told to the person who
/// uploaded (an API key's uploads tell machines only: webhooks).
fn event(row: &Row, d: &Decision) -> Event {
    let (event_type, title, body) = match d.state {
        UploadState::Ready => (
            "upload.processed",
            "File ready",
            format!("{} is ready.", row.file_name),
        ),
        UploadState::Rejected => (
            "upload.rejected",
            "File rejected",
            format!(
                "{} was rejected: {}",
                row.file_name,
                d.reason.as_deref().unwrap_or_default()
            ),
        ),
        _ => (
            "upload.failed",
            "File processing failed",
            format!("{} could not be processed.", row.file_name),
        ),
    };
    Event {
        event_type: event_type.to_owned(),
        org_id: row.org_id,
        audience: row
            .uploaded_by_user
            .map_or(Audience::Nobody, |user| Audience::Users(vec![user])),
        title: title.to_owned(),
        body,
        link: None,
        data: json!({
            "upload_id": row.id,
            "state": d.state,
            "file_name": row.file_name,
            "detected_type": d.facts.detected_type,
            "size_bytes": d.facts.size,
            "sha256": d.facts.sha256,
            "reason": d.reason,
        }),
    }
}

//! The `exports.generate` job: rows from the source, in pages, into one object.
//!
//! - **Bounded memory**: one page (`exports.batch_rows` rows) is read, encoded and handed
//!   to the streamed writer before the next is read; the writer holds a few parts at
//!   most. Nothing grows with the number of rows.
//! - **A consistent read that never holds a transaction long**: pages are read inside a
//!   read-only `REPEATABLE READ` transaction (one snapshot) on the read pool — the
//!   replica when configured. When the transaction has been open
//!   `exports.max_transaction_secs`, it ends and the next one continues after the last
//!   key; every page is bounded above by the moment the export was requested, so rows
//!   written meanwhile are never picked up.
//! - **Progress and cancellation**: between pages the job checks that the export is still
//!   running (a cancel stops it at the next page, and what it wrote is dropped); every
//!   `exports.progress_every_rows` rows it writes its progress.
//! - **One object per export, never half a file behind `succeeded`**: the object appears
//!   only when the writer finishes, and the row turns `succeeded` only after that. A run
//!   that dies is retried from the start, writing the same key again.

use crate::Exports;
use crate::ExportsError;
use crate::keys;
use crate::model::ExportState;
use crate::repo::exports::{self as repo, File, Row};
use crate::request::scope_of;
use crate::sink::{Sink, Written};
use crate::source::{DataSource, Key};
use diesel_async::AsyncConnection;
use keel_events::{Audience, Event};
use keel_queue::{JobContext, JobError};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// How one read transaction ended.
enum Window {
    /// The source has no more rows.
    End,
    /// The transaction reached its time limit; another continues after the last key.
    Continue,
    /// The export is no longer running: it was canceled.
    Canceled,
}

/// What a run produced.
enum Produced {
    File(Written),
    Canceled,
}

impl Exports {
    /// Produces one export. Idempotent: an export no longer queued or running is left
    /// alone; one still running (its earlier run died) starts again from scratch.
    pub(crate) async fn generate(&self, ctx: &JobContext, id: Uuid) -> Result<(), JobError> {
        let row = {
            let mut conn = self.inner.pool.get().await?;
            repo::claim(&mut conn, id).await?
        };
        let Some(row) = row else {
            return Ok(());
        };
        let span = tracing::info_span!(
            "export.generate",
            export.id = %id,
            org.id = %row.org_id,
            export.source = %row.source,
            export.format = row.format.as_str(),
            export.rows = tracing::field::Empty,
        );
        let Some(source) = self.inner.sources.get(&row.source).cloned() else {
            let why = format!("the source `{}` is no longer offered", row.source);
            return self.give_up(id, &why).await.map_err(JobError::from);
        };
        let started = Instant::now();
        let produced = self.produce(&row, source).instrument(span.clone()).await;
        let outcome = match produced {
            Ok(Produced::File(written)) => {
                span.record("export.rows", written.rows);
                metrics::counter!("keel_exports_rows_total", "source" => row.source.clone())
                    .increment(u64::try_from(written.rows).unwrap_or_default());
                self.succeeded(&row, written).await?;
                "succeeded"
            }
            Ok(Produced::Canceled) => {
                span.in_scope(|| tracing::info!("export canceled; its partial file was dropped"));
                "canceled"
            }
            Err(e) if ctx.is_last_attempt() => {
                span.in_scope(|| tracing::warn!(error = %e, "export failed on its last attempt"));
                self.give_up(id, &format!("the export could not be produced: {e}"))
                    .await?;
                "failed"
            }
            Err(e) => {
                return Err(JobError::retry(anyhow::Error::new(e)));
            }
        };
        metrics::counter!("keel_exports_finished_total", "outcome" => outcome).increment(1);
        metrics::histogram!("keel_exports_generation_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Streams the source into the export's object; see the module docs.
    async fn produce(
        &self,
        row: &Row,
        source: Arc<dyn DataSource>,
    ) -> Result<Produced, ExportsError> {
        let settings = &self.inner.settings.exports;
        let batch = i64::from(settings.batch_rows);
        let every = i64::from(settings.progress_every_rows);
        let max_transaction = settings.max_transaction();
        let scope = scope_of(row.org_id, &row.filters, row.created_at);
        let key = keys::file(row.org_id, row.id, &row.file_name);
        let writer = self.inner.storage.writer(key).await?;
        let mut sink = Sink::new(writer, row.format, source.columns(), row.compress);
        let mut control = self.inner.pool.get().await?;
        let mut reads = self.inner.reads.get().await?;
        // Counted outside the snapshot: a count that runs into the statement timeout
        // (a huge organization) costs the progress percentage, not the export.
        match source.estimate(&mut reads, &scope).await {
            Ok(rows) => repo::set_estimate(&mut control, row.id, rows).await?,
            Err(e) => {
                tracing::warn!(error = %e, "export rows not counted; progress shows no percentage")
            }
        }
        let mut after: Option<Key> = None;
        let mut next_progress = every;
        loop {
            let window = reads
                .build_transaction()
                .repeatable_read()
                .read_only()
                .run(async |conn| {
                    let opened = Instant::now();
                    loop {
                        let page = source.page(conn, &scope, after, batch).await?;
                        let end = (page.len() as i64) < batch;
                        if let Some((last, _)) = page.last() {
                            after = Some(*last);
                        }
                        sink.write(page.iter().map(|(_, cells)| cells.as_slice()))
                            .await?;
                        let running = if sink.rows() >= next_progress {
                            next_progress = sink.rows() + every;
                            repo::progress(&mut control, row.id, sink.rows()).await?
                        } else {
                            repo::is_running(&mut control, row.id).await?
                        };
                        if !running {
                            return Ok::<_, ExportsError>(Window::Canceled);
                        }
                        if end {
                            return Ok(Window::End);
                        }
                        if opened.elapsed() >= max_transaction {
                            return Ok(Window::Continue);
                        }
                    }
                })
                .await?;
            match window {
                Window::End => break,
                Window::Continue => continue,
                Window::Canceled => {
                    sink.abort().await?;
                    return Ok(Produced::Canceled);
                }
            }
        }
        Ok(Produced::File(sink.finish().await?))
    }

    /// Records the file and publishes `export.completed`, in one transaction. An export
    /// canceled while its file was being finished keeps no file.
    async fn succeeded(&self, row: &Row, written: Written) -> Result<(), JobError> {
        let file = File {
            rows: written.rows,
            size_bytes: i64::try_from(written.size).unwrap_or(i64::MAX),
            sha256: written.sha256,
        };
        let expires_at = self.expiry();
        let mut conn = self.inner.pool.get().await?;
        let done = conn
            .transaction(async |conn| {
                let Some(done) = repo::succeed(conn, row.id, &file, expires_at).await? else {
                    return Ok(None);
                };
                let event = self.completed_event(&done);
                let job = self.inner.publisher.publish(conn, event).await?;
                Ok::<_, keel_persistence::DbError>(Some(job))
            })
            .await?;
        match done {
            Some(job) => self.inner.queue.ring([job]).await,
            None => {
                let key = keys::file(row.org_id, row.id, &row.file_name);
                self.inner
                    .storage
                    .delete(&key)
                    .await
                    .map_err(JobError::retry)?;
            }
        }
        Ok(())
    }

    fn completed_event(&self, done: &Row) -> Event {
        let rows = done.row_count.unwrap_or_default();
        let download = format!("/api/v1/orgs/{}/exports/{}/download", done.org_id, done.id);
        Event {
            event_type: "export.completed".to_owned(),
            org_id: done.org_id,
            audience: audience(done),
            title: format!("Your {} export is ready", done.source.replace('_', " ")),
            body: format!(
                "{} ({rows} rows) can be downloaded until {}.",
                done.file_name,
                done.expires_at
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default()
            ),
            link: Some(download.clone()),
            data: json!({
                "export_id": done.id,
                "source": done.source,
                "format": done.format,
                "compress": done.compress,
                "file_name": done.file_name,
                "row_count": rows,
                "size_bytes": done.size_bytes,
                "sha256": done.sha256,
                "expires_at": done.expires_at,
                "download": download,
            }),
        }
    }

    /// Ends an active export as `failed` with `why` and publishes `export.failed`; an
    /// export that already ended is left alone.
    pub(crate) async fn give_up(&self, id: Uuid, why: &str) -> Result<(), ExportsError> {
        let expires_at = self.expiry();
        let mut conn = self.inner.pool.get().await?;
        let job = conn
            .transaction(async |conn| {
                let Some(failed) =
                    repo::end(conn, id, None, ExportState::Failed, Some(why), expires_at).await?
                else {
                    return Ok(None);
                };
                let event = Event {
                    event_type: "export.failed".to_owned(),
                    org_id: failed.org_id,
                    audience: audience(&failed),
                    title: format!("Your {} export failed", failed.source.replace('_', " ")),
                    body: why.to_owned(),
                    link: Some(format!(
                        "/api/v1/orgs/{}/exports/{}",
                        failed.org_id, failed.id
                    )),
                    data: json!({
                        "export_id": failed.id,
                        "source": failed.source,
                        "error": why,
                    }),
                };
                let job = self.inner.publisher.publish(conn, event).await?;
                Ok::<_, keel_persistence::DbError>(Some(job))
            })
            .await?;
        if let Some(job) = job {
            self.inner.queue.ring([job]).await;
        }
        Ok(())
    }
}

/// Who hears about an export: the person who requested it, or the organization's
/// admins when an API key did.
fn audience(row: &Row) -> Audience {
    match row.requested_by_user {
        Some(user) => Audience::Users(vec![user]),
        None => Audience::Admins,
    }
}

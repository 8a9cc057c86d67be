//! The `exports.generate` job: rows from the source, in pages, into one object.
//!
//! - **Bounded memory**: one page (`exports.batch_rows` rows) is read, encoded and handed
//!   to the streamed writer before the next is read; the writer holds a few parts at
//!   most. Nothing grows with the number of rows.
//! - **Consistent reads that never hold a transaction long**: pages are read inside a
//!   read-only `REPEATABLE READ` transaction (one snapshot) on the read replica when one
//!   is configured (once it has replayed the request: [`crate::replica`]), else the
//!   primary. The server ends a statement or an idle moment in it past
//!   `exports.max_transaction_secs`, and the job ends it itself at that age: a longer
//!   export continues in a new transaction after the last key. Every page is bounded
//!   above by the moment the export was requested, so rows written meanwhile never slip
//!   in; each window is one snapshot, and a row changed between two windows shows as it
//!   was when its window read it.
//! - **Progress and cancellation**: between pages the job checks that its run still
//!   holds the export (a cancel or a delete stops it at the next page, and what it wrote
//!   is dropped); every `exports.progress_every_rows` rows it writes its progress.
//! - **One file per export, never half a file behind `succeeded`**: the object appears
//!   only when the writer finishes, under the run's own attempt number, and the row turns
//!   `succeeded` (naming that object) only after that, if the run still holds it. A run
//!   that dies is retried from the start; a stale run cannot touch the recorded file.

use crate::jobs::Generate;
use crate::model::ExportState;
use crate::repo::exports::{self as repo, File, Row};
use crate::request::scope_of;
use crate::sink::{Sink, Written};
use crate::source::{DataSource, Key, Scope};
use crate::{Exports, ExportsError, keys, replica};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use keel_events::{Audience, Event};
use keel_persistence::DbPool;
use keel_queue::{Job, JobContext, JobError};
use keel_storage::{ObjectKey, StorageError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use uuid::Uuid;

/// A run ends itself this long before the job's time limit, so its last attempt can still
/// record the failure (a run the queue cuts off records nothing).
const RUN_MARGIN: Duration = Duration::from_secs(120);

/// How long an export waits for the replica to replay its request before it reads the
/// primary instead (a replica that far behind is broken, and the export should not be).
const REPLICA_WAIT: Duration = Duration::from_secs(300);

/// How one read transaction ended.
enum Window {
    /// The source has no more rows.
    End,
    /// The transaction reached its time limit; another continues after the last key.
    Continue,
    /// The run no longer holds the export: it was canceled, deleted, or taken over.
    Lost,
}

/// What a run produced.
enum Produced {
    File { key: ObjectKey, written: Written },
    Lost,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the run reached its time limit of {} minutes", .0.as_secs() / 60)]
    TimedOut(Duration),
    #[error(transparent)]
    Export(#[from] ExportsError),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::Export(ExportsError::Storage(e))
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Export(ExportsError::Db(e.into()))
    }
}

impl From<keel_persistence::DbError> for Failure {
    fn from(e: keel_persistence::DbError) -> Self {
        Failure::Export(ExportsError::Db(e))
    }
}

impl Failure {
    /// What the requester is told (the export's `error`, the `export.failed` event):
    /// what to do, never internal details (those go to the log).
    fn public(&self) -> String {
        match self {
            Failure::TimedOut(limit) => format!(
                "the export took longer than {} minutes; request a narrower one (a shorter time range, a filter)",
                limit.as_secs() / 60
            ),
            Failure::Export(ExportsError::Storage(_)) => {
                "file storage was unavailable; request the export again".to_owned()
            }
            Failure::Export(ExportsError::Db(_)) => {
                "the database was unavailable; request the export again".to_owned()
            }
            Failure::Export(_) => "the export could not be produced; request it again".to_owned(),
        }
    }
}

impl Exports {
    /// Produces one export. Idempotent: an export no longer queued or running is left
    /// alone; one still running (its earlier run died) starts again from scratch.
    pub(crate) async fn generate(&self, ctx: &JobContext, id: Uuid) -> Result<(), JobError> {
        let reads = match &self.inner.services.replica {
            None => self.inner.services.pool.clone(),
            Some(replica) => {
                // The request's WAL position, before the claim: waiting uses no attempt.
                let found = {
                    let mut conn = self.inner.services.pool.get().await?;
                    repo::by_id(&mut conn, id).await?
                };
                let Some(found) = found.filter(|row| row.state.is_active()) else {
                    return Ok(());
                };
                self.replica_once_caught_up(replica, &found).await?
            }
        };
        let row = {
            let mut conn = self.inner.services.pool.get().await?;
            repo::claim(&mut conn, id).await?
        };
        let Some(row) = row else {
            return Ok(());
        };
        ctx.record_org(row.org_id);
        let span = tracing::info_span!(
            "export.generate",
            export.id = %id,
            org.id = %row.org_id,
            export.source = %row.source,
            export.format = row.format.as_str(),
            export.attempt = row.attempts,
            export.rows = tracing::field::Empty,
        );
        let Some(source) = self.inner.sources.get(&row.source).cloned() else {
            let why = format!("the source `{}` is no longer offered", row.source);
            return self.give_up(id, &why).await.map_err(JobError::from);
        };
        let scope = match scope_of(row.org_id, &row.filters, row.created_at) {
            Ok(scope) => scope,
            Err(why) => return self.give_up(id, &why).await.map_err(JobError::from),
        };
        let started = Instant::now();
        let limit = Generate::TIMEOUT
            .unwrap_or(Duration::from_secs(1800))
            .saturating_sub(RUN_MARGIN);
        let run = self.produce(&row, source, &scope, &reads);
        let produced = match tokio::time::timeout(limit, run.instrument(span.clone())).await {
            Ok(produced) => produced,
            Err(_) => Err(Failure::TimedOut(limit)),
        };
        let outcome = match produced {
            Ok(Produced::File { key, written }) => {
                span.record("export.rows", written.rows);
                let rows = u64::try_from(written.rows).unwrap_or_default();
                if self.succeeded(&row, &key, written).await? {
                    metrics::counter!("keel_exports_rows_total", "source" => row.source.clone())
                        .increment(rows);
                    "succeeded"
                } else {
                    "canceled"
                }
            }
            Ok(Produced::Lost) => {
                span.in_scope(|| {
                    tracing::info!("export run stopped: canceled, deleted or taken over")
                });
                "canceled"
            }
            Err(e) if ctx.is_last_attempt() => {
                span.in_scope(|| tracing::warn!(error = %e, "export failed on its last attempt"));
                self.give_up(id, &e.public()).await?;
                "failed"
            }
            Err(e) => return Err(JobError::retry(anyhow::Error::new(e))),
        };
        metrics::counter!("keel_exports_finished_total", "outcome" => outcome).increment(1);
        metrics::histogram!("keel_exports_generation_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The pool to read `row`'s rows from: the replica once it has replayed the request
    /// (until then the job waits without using an attempt), the primary after
    /// [`REPLICA_WAIT`].
    async fn replica_once_caught_up(
        &self,
        replica: &DbPool,
        row: &Row,
    ) -> Result<DbPool, JobError> {
        let mut conn = replica.get().await?;
        if replica::caught_up(&mut conn, row.replica_lsn).await? {
            return Ok(replica.clone());
        }
        let waited = (chrono::Utc::now() - row.created_at)
            .to_std()
            .unwrap_or_default();
        if waited >= REPLICA_WAIT {
            tracing::warn!(export.id = %row.id, "the read replica is still behind the export's request; reading the primary");
            metrics::counter!("keel_exports_replica_fallbacks_total").increment(1);
            return Ok(self.inner.services.pool.clone());
        }
        Err(JobError::Defer(
            Duration::from_secs(2),
            "the read replica has not replayed the export's request yet".to_owned(),
        ))
    }

    /// Streams the source into the run's object; see the module docs.
    async fn produce(
        &self,
        row: &Row,
        source: Arc<dyn DataSource>,
        scope: &Scope,
        reads: &DbPool,
    ) -> Result<Produced, Failure> {
        let settings = &self.inner.settings.exports;
        let batch = i64::from(settings.batch_rows);
        let every = i64::from(settings.progress_every_rows);
        let max_transaction = settings.max_transaction();
        let key = keys::file(row.org_id, row.id, row.attempts, &row.file_name);
        let writer = self.inner.services.storage.writer(key.clone()).await?;
        let mut sink = Sink::new(writer, row.format, source.info().columns, row.compress);
        let mut reads = reads.get().await?;
        // Counted in a transaction of its own: a count that runs into the time limit (a
        // huge organization) costs the progress percentage, not the export.
        let counted = reads
            .build_transaction()
            .read_only()
            .run(async |conn| {
                bound_transaction(conn, max_transaction).await?;
                Ok::<_, Failure>(source.estimate(conn, scope).await?)
            })
            .await;
        match counted {
            Ok(rows) => {
                let mut conn = self.inner.services.pool.get().await?;
                repo::set_estimate(&mut conn, row.id, rows).await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "export rows not counted; progress shows no percentage");
            }
        }
        let mut after: Option<Key> = None;
        let mut next_progress = every;
        let pace = Pace::new(settings.max_rows_per_second);
        loop {
            let window = reads
                .build_transaction()
                .repeatable_read()
                .read_only()
                .run(async |conn| {
                    bound_transaction(conn, max_transaction).await?;
                    let opened = Instant::now();
                    loop {
                        pace.wait(sink.rows()).await;
                        let page = source.page(conn, scope, after, batch).await?;
                        let end = (page.len() as i64) < batch;
                        if let Some((last, _)) = page.last() {
                            after = Some(*last);
                        }
                        sink.write(page.iter().map(|(_, cells)| cells.as_slice()))
                            .await?;
                        // A short-lived connection of its own: a run holds one
                        // connection for its reads, not two.
                        let mut control = self.inner.services.pool.get().await?;
                        let holds = if sink.rows() >= next_progress {
                            next_progress = sink.rows() + every;
                            repo::progress(&mut control, row.id, row.attempts, sink.rows()).await?
                        } else {
                            repo::holds(&mut control, row.id, row.attempts).await?
                        };
                        if !holds {
                            return Ok::<_, Failure>(Window::Lost);
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
                Window::Lost => {
                    sink.abort().await?;
                    self.clear_if_ended(row).await?;
                    return Ok(Produced::Lost);
                }
            }
        }
        let written = sink.finish().await?;
        Ok(Produced::File { key, written })
    }

    /// Removes every file of an export that was canceled or deleted (an earlier run may
    /// have finished a file before it died); an export another run took over keeps its.
    async fn clear_if_ended(&self, row: &Row) -> Result<(), Failure> {
        let now = {
            let mut conn = self.inner.services.pool.get().await?;
            repo::by_id(&mut conn, row.id).await?
        };
        if now.is_none_or(|now| now.state == ExportState::Canceled) {
            self.inner
                .services
                .storage
                .delete_prefix(&keys::folder(row.org_id, row.id))
                .await?;
        }
        Ok(())
    }

    /// Records the file and publishes `export.completed`, in one transaction; `false`
    /// when the run no longer held the export (its file is then removed).
    async fn succeeded(
        &self,
        row: &Row,
        key: &ObjectKey,
        written: Written,
    ) -> Result<bool, JobError> {
        let file = File {
            key: key.as_str(),
            rows: written.rows,
            size_bytes: i64::try_from(written.size).unwrap_or(i64::MAX),
            sha256: written.sha256,
        };
        let expires_at = self.expiry();
        let mut conn = self.inner.services.pool.get().await?;
        let done = conn
            .transaction(async |conn| {
                let Some(done) =
                    repo::succeed(conn, row.id, row.attempts, &file, expires_at).await?
                else {
                    return Ok(None);
                };
                let event = self.completed_event(&done);
                let job = self.inner.services.publisher.publish(conn, event).await?;
                Ok::<_, keel_persistence::DbError>(Some(job))
            })
            .await?;
        match done {
            Some(job) => {
                self.inner.services.queue.ring([job]).await;
                Ok(true)
            }
            None => {
                self.inner
                    .services
                    .storage
                    .delete(key)
                    .await
                    .map_err(JobError::retry)?;
                self.clear_if_ended(row)
                    .await
                    .map_err(|e| JobError::retry(anyhow::Error::new(e)))?;
                Ok(false)
            }
        }
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

    /// Ends an active export as `failed` with `why` (said to the requester: no internal
    /// details) and publishes `export.failed`; an export that already ended is left alone.
    pub(crate) async fn give_up(&self, id: Uuid, why: &str) -> Result<(), ExportsError> {
        let expires_at = self.expiry();
        let mut conn = self.inner.services.pool.get().await?;
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
                let job = self.inner.services.publisher.publish(conn, event).await?;
                Ok::<_, keel_persistence::DbError>(Some(job))
            })
            .await?;
        if let Some(job) = job {
            self.inner.services.queue.ring([job]).await;
        }
        Ok(())
    }
}

/// Bounds a read transaction on the server too: a statement, or an idle moment (the
/// writer waiting on a slow store), past `limit` ends it, so no stall keeps a snapshot
/// open — on the primary that holds back vacuum, on a replica it holds back replay. And
/// no parallel workers: a background export should take one core of the database, not
/// three (a parallel count of a million rows did, and the API's latency showed it).
async fn bound_transaction(
    conn: &mut AsyncPgConnection,
    limit: Duration,
) -> Result<(), keel_persistence::DbError> {
    let ms = format!("{}ms", limit.as_millis());
    diesel::sql_query(
        "SELECT set_config('statement_timeout', $1, true), \
                set_config('idle_in_transaction_session_timeout', $1, true), \
                set_config('max_parallel_workers_per_gather', '0', true)",
    )
    .bind::<Text, _>(ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps a run under `exports.max_rows_per_second` (0: no limit): before each page it
/// waits until the rows written so far are no longer ahead of that rate. An export is
/// background work; at full speed it takes a core of the worker and one of the database
/// for its whole run, and the requests sharing those machines wait.
struct Pace {
    rows_per_second: Option<f64>,
    started: Instant,
}

impl Pace {
    fn new(rows_per_second: u32) -> Self {
        Self {
            rows_per_second: (rows_per_second > 0).then_some(f64::from(rows_per_second)),
            started: Instant::now(),
        }
    }

    async fn wait(&self, rows: i64) {
        let Some(rate) = self.rows_per_second else {
            return;
        };
        let due = Duration::from_secs_f64(rows as f64 / rate);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
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

//! The exports service: requesting, reading, cancelling and downloading exports.
//! Handlers and jobs call it; it owns the transactions.

use crate::ExportsError;
use crate::jobs::{DeleteFiles, Generate};
use crate::link::{LinkSigner, Signature};
use crate::model::{Export, ExportState};
use crate::repo::exports::{self as repo, Row};
use crate::repo::requests;
use crate::request::{NewExport, Validated};
use crate::source::Sources;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use keel_config::Settings;
use keel_events::{Actor, AuditRecord, AuditTrail, Publisher};
use keel_http::{Page, Paginated, Reply};
use keel_persistence::DbPool;
use keel_queue::{Enqueued, Queue};
use keel_storage::{ByteRange, Download, Method, ObjectKey, PresignConditions, Storage};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Exports {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub settings: Arc<Settings>,
    pub services: Services,
    pub sources: Sources,
    pub links: LinkSigner,
}

/// Where to download a succeeded export's file, and until when.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DownloadLink {
    /// A signed link: Keel's own route, or the object store's presigned URL.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// The services exports needs from the rest of Keel.
#[derive(Debug)]
pub struct Services {
    pub pool: DbPool,
    /// A read replica's pool: exports read their rows there when given.
    pub replica: Option<DbPool>,
    pub queue: Queue,
    pub storage: Storage,
    pub publisher: Arc<dyn Publisher>,
    pub audit: Arc<dyn AuditTrail>,
}

impl Exports {
    pub fn new(settings: Arc<Settings>, services: Services, sources: Sources) -> Self {
        let links = LinkSigner::new(settings.exports.link_keys.clone());
        Self {
            inner: Arc::new(Inner {
                settings,
                services,
                sources,
                links,
            }),
        }
    }

    pub fn sources(&self) -> &Sources {
        &self.inner.sources
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.services.storage
    }

    /// Requests an export: checks the request and the organization's limits, then
    /// writes the row, its job, the audit entry and the request's idempotent answer in
    /// one transaction. The job starts after the commit.
    pub async fn request(
        &self,
        org_id: Uuid,
        actor: Actor,
        input: NewExport,
        reply: &Reply<Export>,
    ) -> Result<Export, ExportsError> {
        let mut conn = self.inner.services.pool.get().await?;
        let (export, job) = conn
            .transaction(async |conn| {
                let (export, job) = self.request_in(conn, org_id, actor, input).await?;
                reply.record(conn, &export).await?;
                Ok::<_, ExportsError>((export, job))
            })
            .await?;
        self.inner.services.queue.ring([job]).await;
        Ok(export)
    }

    /// [`Exports::request`]'s writes on `conn`, inside the caller's transaction: if it
    /// rolls back, there is no export and no job. Ring the returned job after the commit.
    pub async fn request_in(
        &self,
        conn: &mut AsyncPgConnection,
        org_id: Uuid,
        actor: Actor,
        input: NewExport,
    ) -> Result<(Export, Enqueued), ExportsError> {
        let valid = Validated::check(&self.inner.sources, input)?;
        crate::limits::check(conn, &self.inner.settings.exports, org_id).await?;
        let id = Uuid::now_v7();
        let file_name = valid.file_name(Utc::now());
        let replica_lsn = match self.inner.services.replica {
            Some(_) => Some(crate::replica::primary_position(conn).await?),
            None => None,
        };
        let (user, key) = match actor {
            Actor::User(user) => (Some(user), None),
            Actor::ApiKey(key) => (None, Some(key)),
        };
        let row = repo::insert(
            conn,
            &repo::NewRow {
                id,
                org_id,
                requested_by_user: user,
                requested_by_key: key,
                source: valid.source,
                format: valid.format,
                compress: valid.compress,
                filters: &valid.filters,
                state: ExportState::Queued,
                file_name: &file_name,
                replica_lsn,
            },
        )
        .await?;
        requests::record(conn, id, org_id).await?;
        let job = self
            .inner
            .services
            .queue
            .enqueue(conn, &Generate { export_id: id })
            .await?;
        let details = json!({
            "source": valid.source,
            "format": valid.format,
            "compress": valid.compress,
            "filters": valid.filters,
        });
        self.audit(conn, org_id, actor, "export.requested", id, details)
            .await?;
        Ok((row.into_export(), job))
    }

    async fn audit(
        &self,
        conn: &mut AsyncPgConnection,
        org_id: Uuid,
        actor: Actor,
        action: &'static str,
        target: Uuid,
        details: serde_json::Value,
    ) -> Result<(), ExportsError> {
        let record = AuditRecord {
            org_id,
            actor,
            action,
            target_id: Some(target),
            details,
        };
        Ok(self.inner.services.audit.record(conn, record).await?)
    }

    /// One export of the organization.
    pub async fn get(&self, org_id: Uuid, id: Uuid) -> Result<Export, ExportsError> {
        Ok(self.row(org_id, id).await?.into_export())
    }

    async fn row(&self, org_id: Uuid, id: Uuid) -> Result<Row, ExportsError> {
        let mut conn = self.inner.services.pool.get().await?;
        repo::get(&mut conn, org_id, id)
            .await?
            .ok_or(ExportsError::NotFound)
    }

    /// The organization's exports, newest first.
    pub async fn list(
        &self,
        org_id: Uuid,
        page: &Page<Uuid>,
    ) -> Result<Paginated<Export>, ExportsError> {
        let mut conn = self.inner.services.pool.get().await?;
        let rows = repo::list(&mut conn, org_id, page.fetch_limit(), page.after).await?;
        let exports = rows.into_iter().map(Row::into_export).collect();
        Ok(Paginated::from_rows(exports, page, |e: &Export| e.id))
    }

    /// Cancels a queued or running export: the job stops at its next batch and drops
    /// what it wrote. Cancelling a canceled export again is a no-op; a finished one, 409.
    pub async fn cancel(
        &self,
        org_id: Uuid,
        id: Uuid,
        actor: Actor,
    ) -> Result<Export, ExportsError> {
        let expires_at = self.expiry();
        let mut conn = self.inner.services.pool.get().await?;
        let ended = conn
            .transaction(async |conn| {
                let ended = repo::end(
                    conn,
                    id,
                    Some(org_id),
                    ExportState::Canceled,
                    None,
                    expires_at,
                )
                .await?;
                if ended.is_some() {
                    self.audit(conn, org_id, actor, "export.canceled", id, json!({}))
                        .await?;
                }
                Ok::<_, ExportsError>(ended)
            })
            .await?;
        if let Some(row) = ended {
            return Ok(row.into_export());
        }
        let export = self.get(org_id, id).await?;
        match export.state {
            ExportState::Canceled => Ok(export),
            other => Err(ExportsError::State(other)),
        }
    }

    /// Deletes an export before its retention: the record at once, the file by the
    /// `exports.delete_files` job after the commit. A running export stops at its next
    /// page (it finds itself gone) and keeps nothing.
    pub async fn delete(&self, org_id: Uuid, id: Uuid, actor: Actor) -> Result<(), ExportsError> {
        let mut conn = self.inner.services.pool.get().await?;
        let job = conn
            .transaction(async |conn| {
                let row = repo::delete(conn, org_id, id)
                    .await?
                    .ok_or(ExportsError::NotFound)?;
                let details = json!({ "file_name": row.file_name, "state": row.state });
                self.audit(conn, org_id, actor, "export.deleted", id, details)
                    .await?;
                let files = DeleteFiles {
                    org_id,
                    export_id: id,
                };
                Ok::<_, ExportsError>(self.inner.services.queue.enqueue(conn, &files).await?)
            })
            .await?;
        self.inner.services.queue.ring([job]).await;
        Ok(())
    }

    /// When an export ending now is deleted.
    pub(crate) fn expiry(&self) -> DateTime<Utc> {
        let days = self.inner.settings.exports.retention_days;
        Utc::now() + chrono::Duration::days(i64::from(days))
    }

    /// A link to download a succeeded export's file, valid for `exports.link_expiry_secs`:
    /// the object store's presigned URL on S3, Keel's own signed route otherwise. The
    /// request is in the audit trail.
    pub async fn download_link(
        &self,
        org_id: Uuid,
        id: Uuid,
        actor: Actor,
    ) -> Result<DownloadLink, ExportsError> {
        let row = self.row(org_id, id).await?;
        let key = downloadable(&row)?;
        let storage = &self.inner.services.storage;
        let mut expiry = self.inner.settings.exports.link_expiry();
        if storage.can_presign() {
            // The store will not sign for longer than its own limit.
            expiry = expiry.min(storage.presign_expiry());
        }
        let expires_at = Utc::now() + chrono::Duration::from_std(expiry).unwrap_or_default();
        let url = if storage.can_presign() {
            let conditions = PresignConditions {
                response_content_type: Some(row.format.content_type(row.compress).to_owned()),
                response_content_disposition: Some(keel_http::download::content_disposition(
                    &row.file_name,
                )),
                expires_in: Some(expiry),
                ..PresignConditions::default()
            };
            storage
                .presign(Method::GET, &key, &conditions)
                .await?
                .to_string()
        } else {
            let signature = self
                .inner
                .links
                .sign(id, org_id, expires_at)
                .map_err(ExportsError::Signing)?;
            format!(
                "/api/v1/orgs/{org_id}/exports/{id}/file?{}",
                signature.query()
            )
        };
        let mut conn = self.inner.services.pool.get().await?;
        let details = json!({ "file_name": row.file_name, "size_bytes": row.size_bytes });
        self.audit(&mut conn, org_id, actor, "export.downloaded", id, details)
            .await?;
        Ok(DownloadLink { url, expires_at })
    }

    /// The file behind a signed link, whole or `range` of it.
    pub async fn open_signed(
        &self,
        org_id: Uuid,
        id: Uuid,
        signature: &Signature,
        range: Option<ByteRange>,
    ) -> Result<(Export, Download), ExportsError> {
        self.inner
            .links
            .verify(id, org_id, signature, Utc::now())
            .map_err(|refused| ExportsError::BadLink(refused.message()))?;
        let row = self.row(org_id, id).await?;
        let key = downloadable(&row)?;
        let size = u64::try_from(row.size_bytes.unwrap_or_default()).unwrap_or_default();
        let range = range
            .map(|r| r.within(size).ok_or(ExportsError::Range { size }))
            .transpose()?;
        let download = self.inner.services.storage.get(&key, range).await?;
        Ok((row.into_export(), download))
    }
}

/// Only a succeeded export has a file to download: its key.
fn downloadable(row: &Row) -> Result<ObjectKey, ExportsError> {
    match (row.state_at(Utc::now()), &row.object_key) {
        (ExportState::Succeeded, Some(key)) => Ok(ObjectKey::stored(key)?),
        (ExportState::Expired, _) => Err(ExportsError::Expired),
        (other, _) => Err(ExportsError::State(other)),
    }
}

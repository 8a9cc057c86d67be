//! The uploads service: receiving files, reading them, deleting them, and recording what
//! processing found. Handlers and jobs call it; it owns the transactions.

use crate::jobs::{DeleteObjects, Process};
use crate::model::{Upload, UploadMethod, UploadState};
use crate::process::Processor;
use crate::process::image::ImageProcessor;
use crate::process::table::TableProcessor;
use crate::receive::{Digest, Limit, OnBreak, receive};
use crate::repo::{self, uploads::ListFilter};
use crate::rules::{declared_type, empty, holds_quota, quota_message};
use crate::{UploadsError, keys, names};
use bytes::Bytes;
use diesel_async::AsyncConnection;
use futures::Stream;
use keel_cache::{Cache, Namespace};
use keel_config::Settings;
use keel_events::Publisher;
use keel_http::{Page, Paginated, Reply};
use keel_persistence::DbPool;
use keel_queue::Queue;
use keel_storage::{ByteRange, Download, Storage};
use std::fmt::Display;
use std::sync::Arc;
use uuid::Uuid;

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Uploads {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
pub(crate) struct Inner {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    pub queue: Queue,
    pub storage: Storage,
    pub publisher: Arc<dyn Publisher>,
    pub processors: Vec<Arc<dyn Processor>>,
    /// `GET /uploads/{id}` per `{org_id}:{id}`; `None` caches "no such upload".
    pub by_id: Namespace<Option<Upload>>,
}

/// Who is uploading: a person (session) or an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploader {
    User(Uuid),
    ApiKey(Uuid),
}

impl Uploader {
    /// The `(uploaded_by_user, uploaded_by_key)` columns.
    fn columns(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Uploader::User(id) => (Some(id), None),
            Uploader::ApiKey(id) => (None, Some(id)),
        }
    }
}

/// What every new upload row needs; the state follows from the method (a streamed
/// upload's bytes are all there: `processing`; the others start `receiving`).
#[derive(Debug)]
pub(crate) struct NewUpload<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub uploader: Uploader,
    pub method: UploadMethod,
    pub file_name: &'a str,
    pub declared_type: &'a str,
    pub size: i64,
    pub sha256: Option<&'a str>,
}

/// A file arriving in one request body.
#[derive(Debug)]
pub struct Incoming<S> {
    /// The client's name for it, uncleaned.
    pub name: Option<String>,
    /// The client's `Content-Type` for it.
    pub declared_type: Option<String>,
    /// `Content-Length`, when the client announced it: refused at once when too big.
    pub announced_length: Option<u64>,
    pub body: S,
}

impl Uploads {
    /// The service with the built-in processors (images, then CSV/text, and the AI task
    /// when `ai` is given: see [`crate::ai::AiProcessor::from_settings`]); add the
    /// deployment's own with [`Uploads::with_processor`].
    pub fn new(
        settings: Arc<Settings>,
        pool: DbPool,
        cache: &Cache,
        queue: Queue,
        storage: Storage,
        publisher: Arc<dyn Publisher>,
        ai: Option<crate::ai::AiProcessor>,
    ) -> Self {
        let mut processors: Vec<Arc<dyn Processor>> = vec![
            Arc::new(ImageProcessor::from_settings(&settings.uploads)),
            Arc::new(TableProcessor),
        ];
        if let Some(ai) = ai {
            processors.push(Arc::new(ai));
        }
        Self {
            inner: Arc::new(Inner {
                settings,
                pool,
                queue,
                storage,
                publisher,
                processors,
                by_id: cache.namespace("uploads.upload", 1),
            }),
        }
    }

    /// Runs `processor` after the built-in ones, on every upload it accepts.
    pub fn with_processor(mut self, processor: Arc<dyn Processor>) -> Self {
        Arc::make_mut(&mut self.inner).processors.push(processor);
        self
    }

    /// The largest file one upload may carry (`uploads.max_size_bytes`).
    pub fn max_size_bytes(&self) -> u64 {
        self.inner.settings.uploads.max_size_bytes
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub(crate) fn cache_key(org_id: Uuid, id: Uuid) -> String {
        format!("{org_id}:{id}")
    }

    /// Stores a file sent as one request body and queues its processing. The bytes
    /// stream to storage as they arrive; the row is written only once they are all
    /// stored, so a refused or broken-off upload leaves no row and no object.
    pub async fn receive_streamed<S, E>(
        &self,
        org_id: Uuid,
        uploader: Uploader,
        incoming: Incoming<S>,
        reply: &Reply<Upload>,
    ) -> Result<Upload, UploadsError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let file_name = names::clean(incoming.name.as_deref().unwrap_or_default());
        let declared_type = declared_type(incoming.declared_type.as_deref())?;
        let limit = self.limit(org_id).await?;
        if incoming.announced_length.is_some_and(|n| n > limit.bytes) {
            return Err(limit.exceeded());
        }
        if incoming.announced_length == Some(0) {
            return Err(empty());
        }
        let id = Uuid::now_v7();
        let key = keys::original(org_id, id);
        let received = receive(
            &self.inner.storage,
            key.clone(),
            incoming.body,
            &limit,
            OnBreak::Discard,
            Digest::None,
        )
        .await?;
        if received.size == 0 {
            self.inner.storage.delete(&key).await?;
            return Err(empty());
        }
        let size = i64::try_from(received.size).unwrap_or(i64::MAX);
        let new = NewUpload {
            id,
            org_id,
            uploader,
            method: UploadMethod::Streamed,
            file_name: &file_name,
            declared_type: &declared_type,
            size,
            sha256: None,
        };
        let recorded = self.record_new(&new, reply, |upload| upload).await;
        match recorded {
            Ok((row, job)) => {
                self.inner.queue.ring(job).await;
                metrics::counter!("keel_uploads_received_total", "method" => "streamed")
                    .increment(1);
                metrics::counter!("keel_uploads_received_bytes_total", "method" => "streamed")
                    .increment(received.size);
                Ok(row)
            }
            Err(e) => {
                // The row never committed: the object must not outlive it.
                if let Err(delete) = self.inner.storage.delete(&key).await {
                    tracing::warn!(error = %delete, upload.id = %id, "object of an unrecorded upload left for the sweeper");
                }
                Err(e)
            }
        }
    }

    /// Writes the row of a new upload, reserving its size in the organization's quota,
    /// and the request's idempotent answer (`answer` of the upload), in one transaction;
    /// a complete upload also gets its processing job (ring what is returned after the
    /// commit).
    pub(crate) async fn record_new<T: Send + Sync>(
        &self,
        new: &NewUpload<'_>,
        reply: &Reply<T>,
        answer: impl FnOnce(Upload) -> T + Send,
    ) -> Result<(T, Vec<keel_queue::Enqueued>), UploadsError> {
        let complete = new.method == UploadMethod::Streamed;
        let (user, key) = new.uploader.columns();
        let object_key = keys::original(new.org_id, new.id);
        let expires_at = (!complete).then(|| {
            let hours = self.inner.settings.uploads.unfinished_expiry_hours;
            chrono::Utc::now() + chrono::Duration::hours(i64::try_from(hours).unwrap_or(24))
        });
        let row = repo::uploads::NewRow {
            id: new.id,
            org_id: new.org_id,
            uploaded_by_user: user,
            uploaded_by_key: key,
            method: new.method,
            state: if complete {
                UploadState::Processing
            } else {
                UploadState::Receiving
            },
            file_name: new.file_name,
            declared_type: new.declared_type,
            size_bytes: new.size,
            received_bytes: if complete { new.size } else { 0 },
            sha256: new.sha256,
            object_key: object_key.as_str(),
            expires_at,
        };
        let quota = self.quota();
        let mut conn = self.inner.pool.get().await?;
        conn.transaction(async |conn| {
            if !repo::usage::reserve(conn, new.org_id, new.size, quota).await? {
                return Err(UploadsError::TooLarge(quota_message(quota)));
            }
            let inserted = repo::uploads::insert(conn, &row).await?;
            let mut jobs = Vec::new();
            if complete {
                jobs.push(
                    self.inner
                        .queue
                        .enqueue(conn, &Process { upload_id: new.id })
                        .await?,
                );
            }
            let value = answer(inserted.into_upload());
            reply.record(conn, &value).await?;
            Ok((value, jobs))
        })
        .await
    }

    /// On `conn`, inside the transaction that ends `row`'s life as an upload (deleted,
    /// refused, expired): gives its bytes back to the quota when `release`, and queues
    /// the removal of its objects (ring the job after the commit).
    pub(crate) async fn let_go(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        row: &repo::uploads::Row,
        release: bool,
    ) -> keel_persistence::DbResult<keel_queue::Enqueued> {
        if release {
            repo::usage::release(conn, row.org_id, row.size_bytes).await?;
        }
        let objects = DeleteObjects {
            org_id: row.org_id,
            upload_id: row.id,
        };
        self.inner.queue.enqueue(conn, &objects).await
    }

    pub(crate) fn quota(&self) -> Option<i64> {
        let q = self.inner.settings.uploads.org_quota_bytes;
        (q > 0).then(|| i64::try_from(q).unwrap_or(i64::MAX))
    }

    /// The most the next upload of `org_id` may carry: the per-file cap, or what is left
    /// of the organization's quota when that is less.
    async fn limit(&self, org_id: Uuid) -> Result<Limit, UploadsError> {
        let max = self.inner.settings.uploads.max_size_bytes;
        let per_file = Limit {
            bytes: max,
            why: format!("a file may have at most {max} bytes"),
        };
        let Some(quota) = self.quota() else {
            return Ok(per_file);
        };
        let used = {
            let mut conn = self.inner.pool.get().await?;
            repo::usage::bytes(&mut conn, org_id).await?
        };
        let left = u64::try_from(quota - used).unwrap_or(0);
        Ok(if left < max {
            Limit {
                bytes: left,
                why: quota_message(Some(quota)),
            }
        } else {
            per_file
        })
    }

    /// One upload of the organization (cached; the cache is dropped whenever its state
    /// changes).
    pub async fn get(&self, org_id: Uuid, id: Uuid) -> Result<Upload, UploadsError> {
        let pool = &self.inner.pool;
        self.inner
            .by_id
            .get_or_load(&Self::cache_key(org_id, id), || async {
                let mut conn = pool.get().await?;
                let row = repo::uploads::get(&mut conn, org_id, id).await?;
                Ok::<_, keel_persistence::DbError>(row.map(repo::uploads::Row::into_upload))
            })
            .await?
            .ok_or(UploadsError::NotFound)
    }

    /// The organization's uploads, newest first.
    pub async fn list(
        &self,
        org_id: Uuid,
        filter: &ListFilter,
        page: &Page<Uuid>,
    ) -> Result<Paginated<Upload>, UploadsError> {
        let mut conn = self.inner.pool.get().await?;
        let rows =
            repo::uploads::list(&mut conn, org_id, filter, page.fetch_limit(), page.after).await?;
        let uploads = rows
            .into_iter()
            .map(repo::uploads::Row::into_upload)
            .collect();
        Ok(Paginated::from_rows(uploads, page, |u: &Upload| u.id))
    }

    /// The content of `upload` (of the organization, as [`Uploads::get`] gave it), whole
    /// or a byte range of it; only once it is `ready`.
    pub async fn content(
        &self,
        org_id: Uuid,
        upload: &Upload,
        range: Option<ByteRange>,
    ) -> Result<Download, UploadsError> {
        ready(upload)?;
        self.open(&keys::original(org_id, upload.id), range, upload.size_bytes)
            .await
    }

    /// The PNG thumbnail of a `ready` image.
    pub async fn thumbnail(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<(Upload, Download), UploadsError> {
        let upload = self.get(org_id, id).await?;
        ready(&upload)?;
        if !upload.results.image.is_some_and(|i| i.thumbnail) {
            return Err(UploadsError::NotFound);
        }
        let download = self
            .inner
            .storage
            .get(&keys::thumbnail(org_id, id), None)
            .await?;
        Ok((upload, download))
    }

    /// Streams `key` (of `size` bytes), whole or `range` of it: a range that starts past
    /// the end is 416, one that ends past it is cut to the end (RFC 9110).
    async fn open(
        &self,
        key: &keel_storage::ObjectKey,
        range: Option<ByteRange>,
        size: i64,
    ) -> Result<Download, UploadsError> {
        let size = u64::try_from(size).unwrap_or(0);
        let range = range
            .map(|r| r.within(size).ok_or(UploadsError::Range { size }))
            .transpose()?;
        Ok(self.inner.storage.get(key, range).await?)
    }

    /// Deletes the upload: the row at once, the objects by a job after the commit. With
    /// `only_by`, only an upload that person uploaded (403 for another's).
    pub async fn delete(
        &self,
        org_id: Uuid,
        id: Uuid,
        only_by: Option<Uuid>,
    ) -> Result<(), UploadsError> {
        let mut conn = self.inner.pool.get().await?;
        let job = conn
            .transaction(async |conn| {
                let row = repo::uploads::delete(conn, org_id, id)
                    .await?
                    .ok_or(UploadsError::NotFound)?;
                if only_by.is_some_and(|user| row.uploaded_by_user != Some(user)) {
                    // Rolls the delete back.
                    return Err(UploadsError::Forbidden(
                        "members may delete only their own uploads; owners and admins may delete any",
                    ));
                }
                let job = self.let_go(conn, &row, holds_quota(row.state)).await?;
                Ok::<_, UploadsError>(job)
            })
            .await?;
        self.inner.queue.ring([job]).await;
        self.inner
            .by_id
            .invalidate(&Self::cache_key(org_id, id))
            .await;
        Ok(())
    }
}

/// Content is served only once processing found it acceptable (409 before).
fn ready(upload: &Upload) -> Result<(), UploadsError> {
    if upload.state == UploadState::Ready {
        Ok(())
    } else {
        Err(UploadsError::NotReady(upload.state))
    }
}

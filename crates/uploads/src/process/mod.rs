//! Processing an upload after its bytes are stored: the `uploads.process` job runs the
//! mandatory inspection ([`inspect`]: size, SHA-256, the type the bytes show, the
//! deployment's type policy), then every [`Processor`] that wants the file.
//!
//! **Adding a step** (a virus scanner, a classifier): implement [`Processor`] and hand
//! it to [`crate::Uploads::with_processor`] in the binary. A processor reads the bytes
//! through [`Content`], may store derived objects next to the original, and answers
//! [`Verdict::Accept`] with its results (shown under `results.<name>`) or
//! [`Verdict::Reject`] with a reason the uploader sees. Processors run in order and must
//! be idempotent: the job may run twice.

pub mod image;
pub(crate) mod inspect;
pub(crate) mod pipeline;
pub mod table;

use bytes::Bytes;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use keel_storage::{ByteRange, ObjectKey, Storage, StorageError, StorageResult};
use uuid::Uuid;

/// What is known about a file once it has been inspected.
#[derive(Debug, Clone)]
pub struct FileFacts {
    pub org_id: Uuid,
    pub upload_id: Uuid,
    pub file_name: String,
    pub declared_type: String,
    /// The type the bytes show.
    pub detected_type: String,
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// A processor's way to the file's bytes and to the place for what it derives.
#[derive(Debug)]
pub struct Content<'a> {
    pub(crate) storage: &'a Storage,
    pub(crate) key: &'a ObjectKey,
    pub(crate) org_id: Uuid,
    pub(crate) upload_id: Uuid,
}

impl Content<'_> {
    /// The bytes, as they stream from storage.
    pub async fn stream(&self) -> StorageResult<BoxStream<'static, StorageResult<Bytes>>> {
        Ok(self.storage.get(self.key, None).await?.stream)
    }

    /// All the bytes in memory: only for files known to be at most a bounded size.
    pub async fn read_all(&self) -> StorageResult<Vec<u8>> {
        collect(self.stream().await?).await
    }

    /// The first bytes, or another range of them.
    pub async fn read_range(&self, range: ByteRange) -> StorageResult<Vec<u8>> {
        collect(self.storage.get(self.key, Some(range)).await?.stream).await
    }

    /// A derived object stored beside the original (`thumbnail.png`), if there is one.
    pub async fn read_derived(&self, name: &str) -> StorageResult<Option<Vec<u8>>> {
        let key = crate::keys::derived(self.org_id, self.upload_id, name);
        match self.storage.get(&key, None).await {
            Ok(download) => Ok(Some(collect(download.stream).await?)),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `bytes` as `name` beside the original (`thumbnail.png`); it goes when the
    /// upload goes.
    pub async fn put_derived(&self, name: &str, bytes: Bytes) -> StorageResult<()> {
        self.storage
            .put(
                &crate::keys::derived(self.org_id, self.upload_id, name),
                bytes,
            )
            .await
    }
}

async fn collect(stream: BoxStream<'static, StorageResult<Bytes>>) -> StorageResult<Vec<u8>> {
    stream
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
}

/// What a processor decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Keep the file; the value (if any) is shown as `results.<processor name>`.
    Accept(Option<serde_json::Value>),
    /// Refuse the file; the reason is shown to the uploader.
    Reject(String),
}

/// Why a processor could not decide.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Storage or a service it calls is unavailable: the job retries.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help: the upload is marked `failed` with this reason.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// Transient, and the service said when to come back (`Retry-After`).
    #[error("{1:#} (retry in {0:?})")]
    RetryAfter(std::time::Duration, anyhow::Error),
    /// Not attempted (a circuit breaker is open): run again after this long without
    /// using up an attempt.
    #[error("deferred for {0:?}: {1}")]
    Deferred(std::time::Duration, String),
}

impl ProcessError {
    /// As the job's error, when the job is to run again; `None` when this failure is the
    /// end of it (permanent, or transient on the last attempt).
    pub(crate) fn retry(self, last_attempt: bool) -> Result<keel_queue::JobError, Self> {
        use keel_queue::JobError;
        match self {
            ProcessError::Deferred(after, why) => Ok(JobError::Defer(after, why)),
            ProcessError::Transient(e) if !last_attempt => Ok(JobError::retry(e)),
            ProcessError::RetryAfter(after, e) if !last_attempt => {
                Ok(JobError::retry_after(after, e))
            }
            other => Err(other),
        }
    }
}

impl From<StorageError> for ProcessError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) => ProcessError::Permanent(anyhow::anyhow!(
                "the file's bytes are missing from storage"
            )),
            other => ProcessError::Transient(other.into()),
        }
    }
}

/// One step of processing. See the module documentation.
pub trait Processor: Send + Sync + std::fmt::Debug + 'static {
    /// Stable, lowercase: the key of its results in `results`.
    fn name(&self) -> &'static str;

    /// Whether this file is for this processor (by its detected type, its size).
    fn accepts(&self, file: &FileFacts) -> bool;

    /// True for a processor that runs apart, in the `uploads.ai_task` job after the
    /// upload is `ready` (a call to a third party: its slowness or failures must not hold
    /// the upload back). Its verdict annotates the upload; it cannot reject it.
    fn deferred(&self) -> bool {
        false
    }

    fn process<'a>(
        &'a self,
        file: &'a FileFacts,
        content: &'a Content<'a>,
    ) -> BoxFuture<'a, Result<Verdict, ProcessError>>;
}

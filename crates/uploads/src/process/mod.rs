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
use keel_storage::{ObjectKey, Storage, StorageError, StorageResult};
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
        self.stream()
            .await?
            .try_fold(Vec::new(), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await
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

    fn process<'a>(
        &'a self,
        file: &'a FileFacts,
        content: &'a Content<'a>,
    ) -> BoxFuture<'a, Result<Verdict, ProcessError>>;
}

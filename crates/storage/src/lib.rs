//! Object storage for the bytes of files — uploads, exports — over `object_store`: a local
//! folder by default (so `keel` runs with nothing else), any S3-compatible store by
//! configuration. Postgres holds the rows that say what an object is; this crate only
//! moves bytes.
//!
//! - Writes stream: [`Storage::writer`] sends parts while the bytes arrive and publishes
//!   the object only when finished; an aborted or dropped writer leaves nothing.
//! - Reads stream, whole or by byte range ([`Storage::get`]).
//! - Keys are [`ObjectKey`]s built from generated ids, never from client file names.
//! - On S3, [`Storage::presign`] hands out short-lived URLs so bytes can bypass Keel;
//!   the local backend cannot sign (callers fall back to Keel's own routes).
//!
//! Shared by the domains that keep files, so none of them depends on another.

mod backend;
mod error;
mod key;
mod local_read;
mod writer;

pub use error::{StorageError, StorageResult};
pub use key::ObjectKey;
pub use object_store::signer::Method;
pub use url::Url;
pub use writer::Writer;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use keel_config::{StorageBackend, StorageSettings};
use object_store::signer::{HeaderValue, SignedUrlOptions, Signer};
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Which bytes of an object to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From this offset to the end.
    From(u64),
    /// `start..end`, end exclusive.
    Bounded(u64, u64),
    /// The last this many bytes.
    Last(u64),
}

impl ByteRange {
    /// This range of content `size` bytes long (RFC 9110): `None` when it starts past
    /// the end (unsatisfiable: 416); one that ends past the end is cut to it.
    pub fn within(self, size: u64) -> Option<ByteRange> {
        match self {
            ByteRange::From(start) | ByteRange::Bounded(start, _) if start >= size => None,
            ByteRange::Bounded(start, end) => Some(ByteRange::Bounded(start, end.min(size))),
            other => Some(other),
        }
    }
}

/// An object being read.
pub struct Download {
    /// The object's whole size.
    pub size: u64,
    /// The bytes this download carries (all of them without a range).
    pub range: Range<u64>,
    pub stream: BoxStream<'static, StorageResult<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// What the store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: ObjectKey,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// Conditions a presigned PUT binds the uploader to: the store refuses a request whose
/// headers differ. (S3 cannot bind a presigned PUT's length: check the object's size
/// after the upload, before trusting it.)
#[derive(Debug, Clone, Default)]
pub struct PresignConditions {
    pub content_type: Option<String>,
    /// For a GET: the `Content-Type` and `Content-Disposition` the store answers with
    /// (S3's `response-content-*` parameters, covered by the signature), so a download
    /// has its type and file name whatever the object was stored with.
    pub response_content_type: Option<String>,
    pub response_content_disposition: Option<String>,
    /// The URL's lifetime when shorter than [`Storage::presign_expiry`].
    pub expires_in: Option<Duration>,
}

/// The object store. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    backend: StorageBackend,
    presign_expiry: Duration,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("store", &self.store.to_string())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// The store `storage.*` describes. Does not connect: a store that is down shows in
    /// the first call's error, not at start-up.
    pub fn new(settings: &StorageSettings) -> StorageResult<Self> {
        let built = backend::build(settings)?;
        Ok(Self {
            store: built.store,
            signer: built.signer,
            backend: settings.backend,
            presign_expiry: settings.presign_expiry(),
        })
    }

    pub fn backend(&self) -> StorageBackend {
        self.backend
    }

    /// True when [`Storage::presign`] works (S3), so bytes can bypass Keel.
    pub fn can_presign(&self) -> bool {
        self.signer.is_some()
    }

    /// The lifetime of presigned URLs (`storage.presign_expiry_secs`).
    pub fn presign_expiry(&self) -> Duration {
        self.presign_expiry
    }

    /// Starts a streamed write of `key`.
    pub async fn writer(&self, key: ObjectKey) -> StorageResult<Writer> {
        let upload = self.store.put_multipart(key.path()).await?;
        Ok(Writer::new(
            WriteMultipart::new_with_chunk_size(upload, writer::PART_BYTES),
            key,
        ))
    }

    /// Writes a small object in one request (thumbnails, manifests).
    pub async fn put(&self, key: &ObjectKey, bytes: Bytes) -> StorageResult<()> {
        self.store.put(key.path(), PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Streams `key`, whole or `range` of it.
    pub async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> StorageResult<Download> {
        let options = GetOptions {
            range: range.map(|r| match r {
                ByteRange::From(start) => GetRange::Offset(start),
                ByteRange::Bounded(start, end) => GetRange::Bounded(start..end),
                ByteRange::Last(n) => GetRange::Suffix(n),
            }),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(key.path(), options).await?;
        let (size, range) = (result.meta.size, result.range.clone());
        let stream = match result.payload {
            // object_store reads local files 8 KiB per blocking task: too small a bite
            // for files of gigabytes.
            GetResultPayload::File(file, _) => local_read::stream(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(StorageError::from).boxed(),
        };
        Ok(Download {
            size,
            range,
            stream,
        })
    }

    /// The object's size and age, or [`StorageError::NotFound`].
    pub async fn head(&self, key: &ObjectKey) -> StorageResult<ObjectInfo> {
        let meta = self.store.head(key.path()).await?;
        Ok(info(meta))
    }

    /// Moves `from` to `to`, replacing what is there (a rename on a local disk, a
    /// server-side copy and delete on S3).
    pub async fn rename(&self, from: &ObjectKey, to: &ObjectKey) -> StorageResult<()> {
        self.store.rename(from.path(), to.path()).await?;
        Ok(())
    }

    /// Removes `key`; a key that is already gone is fine (jobs delete at least once).
    pub async fn delete(&self, key: &ObjectKey) -> StorageResult<()> {
        match self
            .store
            .delete(key.path())
            .await
            .map_err(StorageError::from)
        {
            Ok(()) | Err(StorageError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes every object under `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &ObjectKey) -> StorageResult<usize> {
        let keys: Vec<ObjectInfo> = self.list(Some(prefix)).try_collect().await?;
        for object in &keys {
            self.delete(&object.key).await?;
        }
        Ok(keys.len())
    }

    /// Every object under `prefix` (the whole store with `None`), in no set order.
    pub fn list(
        &self,
        prefix: Option<&ObjectKey>,
    ) -> BoxStream<'static, StorageResult<ObjectInfo>> {
        self.store
            .list(prefix.map(ObjectKey::path))
            .map(|r| r.map(info).map_err(StorageError::from))
            .boxed()
    }

    /// A URL that lets its holder `method` (GET or PUT) `key` without credentials for
    /// [`Storage::presign_expiry`]; a PUT must carry exactly the `conditions`' headers.
    pub async fn presign(
        &self,
        method: Method,
        key: &ObjectKey,
        conditions: &PresignConditions,
    ) -> StorageResult<Url> {
        let signer = self.signer.as_ref().ok_or(StorageError::CannotPresign)?;
        let mut options = SignedUrlOptions::new();
        if let Some(content_type) = &conditions.content_type {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| StorageError::Invalid(format!("content type {content_type:?}")))?;
            options = options.with_signed_header(
                object_store::signer::HeaderName::from_static("content-type"),
                value,
            );
        }
        let overrides = [
            ("response-content-type", &conditions.response_content_type),
            (
                "response-content-disposition",
                &conditions.response_content_disposition,
            ),
        ];
        options = options.with_query(
            overrides
                .into_iter()
                .filter_map(|(name, value)| value.as_deref().map(|v| (name, v))),
        );
        Ok(signer
            .signed_url_opts(
                method,
                key.path(),
                conditions
                    .expires_in
                    .map_or(self.presign_expiry, |d| d.min(self.presign_expiry)),
                &options,
            )
            .await?)
    }
}

fn info(meta: object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: ObjectKey::from_listed(meta.location),
        size: meta.size,
        last_modified: meta.last_modified,
    }
}

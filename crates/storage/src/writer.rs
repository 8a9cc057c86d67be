//! A streamed write: bytes go to the store in parts while they arrive, and an object
//! appears only when the writer finishes — never a partial one.

use crate::{ObjectKey, StorageResult};
use bytes::Bytes;
use object_store::WriteMultipart;

/// Part size: S3's minimum for all but the last part is 5 MiB.
pub(crate) const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts in flight at once. With [`PART_BYTES`] a writer holds at most ~20 MiB,
/// whatever the object's size.
pub(crate) const PARTS_IN_FLIGHT: usize = 3;

/// Writes one object in parts. Call [`Writer::finish`] to publish it or
/// [`Writer::abort`] to drop it; a writer dropped without either (its request was
/// cancelled when the client went away) aborts in the background, so no staging file or
/// billable S3 part outlives it.
#[derive(Debug)]
pub struct Writer {
    inner: Option<WriteMultipart>,
    key: ObjectKey,
    written: u64,
}

impl Writer {
    pub(crate) fn new(inner: WriteMultipart, key: ObjectKey) -> Self {
        Self {
            inner: Some(inner),
            key,
            written: 0,
        }
    }

    /// Queues `bytes`; waits while [`PARTS_IN_FLIGHT`] parts are being uploaded, so a
    /// fast sender is slowed to the store's pace instead of filling memory.
    pub async fn write(&mut self, bytes: Bytes) -> StorageResult<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        inner.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.written += bytes.len() as u64;
        inner.put(bytes);
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Uploads what is left and publishes the object; returns its size. On failure the
    /// parts are removed.
    pub async fn finish(mut self) -> StorageResult<u64> {
        if let Some(inner) = self.inner.take() {
            inner.finish().await?;
        }
        Ok(self.written)
    }

    /// Drops everything written; the object never appears.
    pub async fn abort(mut self) -> StorageResult<()> {
        if let Some(inner) = self.inner.take() {
            inner.abort().await?;
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let key = self.key.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = inner.abort().await {
                        tracing::warn!(object.key = %key, error = %e, "abandoned upload could not be aborted; the sweeper will remove it");
                    }
                });
            }
        }
    }
}

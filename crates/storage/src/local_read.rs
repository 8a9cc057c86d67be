//! Reading a range of a local file as a stream of large chunks, each read on the
//! blocking pool: object_store's own stream reads 8 KiB per blocking task, which caps a
//! download at a fraction of what the disk (or the page cache) gives.

use crate::{StorageError, StorageResult};
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes read per blocking task.
const CHUNK_BYTES: u64 = 1024 * 1024;

pub(crate) fn stream(file: File, range: Range<u64>) -> BoxStream<'static, StorageResult<Bytes>> {
    let file = Arc::new(file);
    stream::try_unfold(range.start, move |at| {
        let file = file.clone();
        let end = range.end;
        async move {
            if at >= end {
                return Ok(None);
            }
            let len = (end - at).min(CHUNK_BYTES);
            let chunk = tokio::task::spawn_blocking(move || read_exactly(&file, at, len))
                .await
                .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
            Ok(Some((chunk, at + len)))
        }
    })
    .boxed()
}

fn read_exactly(file: &File, at: u64, len: u64) -> StorageResult<Bytes> {
    let mut buf = BytesMut::zeroed(usize::try_from(len).unwrap_or(usize::MAX));
    file.read_exact_at(&mut buf, at).map_err(StorageError::Io)?;
    Ok(buf.freeze())
}

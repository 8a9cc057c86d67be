//! Where the job's rows go: encoded ([`crate::encode`]), optionally gzip-compressed,
//! hashed, and handed to the object store's streamed writer about a mebibyte at a time.
//! What it holds is bounded — one batch's encoding plus the writer's parts in flight —
//! whatever the number of rows.

use crate::encode;
use crate::model::ExportFormat;
use crate::source::{Cell, Column};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use keel_storage::{StorageResult, Writer};
use sha2::{Digest, Sha256};
use std::io::Write as _;

/// Bytes gathered before they are handed to the writer.
const FLUSH_BYTES: usize = 1 << 20;
/// The encoding buffer: a flush's worth and a page's overshoot.
const BUFFER_BYTES: usize = FLUSH_BYTES + (256 << 10);

/// The finished file.
#[derive(Debug, Clone)]
pub struct Written {
    pub rows: i64,
    pub size: u64,
    pub sha256: String,
}

pub struct Sink {
    format: ExportFormat,
    columns: &'static [Column],
    writer: Writer,
    /// Rows encoded since the last flush.
    encoded: Vec<u8>,
    /// Set when compressing: the compressed bytes not yet handed to the writer.
    gzip: Option<GzEncoder<Vec<u8>>>,
    hasher: Sha256,
    rows: i64,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("key", self.writer.key())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// A sink writing `columns` as `format` into `writer`; the CSV header goes first.
    pub fn new(
        writer: Writer,
        format: ExportFormat,
        columns: &'static [Column],
        compress: bool,
    ) -> Self {
        let mut encoded = Vec::with_capacity(BUFFER_BYTES);
        encode::header(format, columns, &mut encoded);
        Self {
            format,
            columns,
            writer,
            encoded,
            gzip: compress.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
            hasher: Sha256::new(),
            rows: 0,
        }
    }

    /// Encodes `rows`; hands the bytes to the store once about a mebibyte has gathered.
    pub async fn write<'a>(
        &mut self,
        rows: impl IntoIterator<Item = &'a [Cell]>,
    ) -> StorageResult<()> {
        for cells in rows {
            encode::row(self.format, self.columns, cells, &mut self.encoded);
            self.rows += 1;
        }
        if self.encoded.len() >= FLUSH_BYTES {
            self.flush(false).await?;
        }
        Ok(())
    }

    pub fn rows(&self) -> i64 {
        self.rows
    }

    /// Passes what is encoded through the compressor (if any) to the writer; `last`
    /// ends the gzip stream.
    async fn flush(&mut self, last: bool) -> StorageResult<()> {
        let out = match &mut self.gzip {
            // A fresh buffer of the same size: the next mebibyte need not regrow it.
            None => std::mem::replace(&mut self.encoded, Vec::with_capacity(BUFFER_BYTES)),
            Some(gzip) => {
                // Writing to a Vec cannot fail.
                let _ = gzip.write_all(&self.encoded);
                self.encoded.clear();
                if last {
                    let _ = gzip.try_finish();
                }
                std::mem::take(gzip.get_mut())
            }
        };
        if !out.is_empty() {
            self.hasher.update(&out);
            self.writer.write(Bytes::from(out)).await?;
        }
        Ok(())
    }

    /// Publishes the object: it exists from now on, whole.
    pub async fn finish(mut self) -> StorageResult<Written> {
        self.flush(true).await?;
        let rows = self.rows;
        let sha256 = hex::encode(self.hasher.clone().finalize());
        let size = self.writer.finish().await?;
        Ok(Written { rows, size, sha256 })
    }

    /// Drops what was written; the object never appears.
    pub async fn abort(self) -> StorageResult<()> {
        self.writer.abort().await
    }
}

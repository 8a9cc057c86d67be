//! Resumable uploads (the tus 1.0 protocol's model): an upload is created with its
//! length, then receives its bytes in chunks at increasing offsets, each stored as a
//! part object, so a network failure costs at most the chunk in flight and any replica
//! — or the same one after a restart — continues where the last chunk ended: the offset
//! lives in the row. Once every byte is there, the processing job joins the parts into
//! the original and inspects it like any upload.

use crate::model::{Upload, UploadMethod, UploadState};
use crate::receive::{Limit, OnBreak, receive};
use crate::service::{NewUpload, Uploader, declared_type};
use crate::{Uploads, UploadsError, keys, names, repo};
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use keel_storage::ObjectKey;
use std::fmt::Display;
use uuid::Uuid;

/// A checksum the client sent for one chunk (tus `Upload-Checksum`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

/// A chunk arriving at `offset`.
#[derive(Debug)]
pub struct Chunk<S> {
    pub offset: u64,
    pub checksum: Option<Checksum>,
    pub body: S,
}

impl Uploads {
    /// Records a resumable upload of `length` bytes (reserving them in the quota).
    pub async fn create_resumable(
        &self,
        org_id: Uuid,
        uploader: Uploader,
        length: u64,
        name: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<Upload, UploadsError> {
        let max = self.inner.settings.uploads.max_size_bytes;
        if length > max {
            return Err(UploadsError::TooLarge(format!(
                "a file may have at most {max} bytes"
            )));
        }
        if length == 0 {
            return Err(crate::service::empty());
        }
        let file_name = names::clean(name.unwrap_or_default());
        let declared = declared_type(content_type)?;
        let new = NewUpload {
            id: Uuid::now_v7(),
            org_id,
            uploader,
            method: UploadMethod::Resumable,
            file_name: &file_name,
            declared_type: &declared,
            size: i64::try_from(length).unwrap_or(i64::MAX),
            sha256: None,
        };
        // tus clients send no Idempotency-Key: a retried creation is a new upload.
        let no_key = keel_http::IdempotencyKey::default()
            .reply(|_: &Upload| keel_http::Answer::empty(actix_web::http::StatusCode::CREATED));
        let (upload, _) = self.record_new(&new, &no_key, |upload| upload).await?;
        metrics::counter!("keel_uploads_received_total", "method" => "resumable").increment(1);
        Ok(upload)
    }

    /// A resumable upload of the organization, read from the database (not the cache:
    /// its offset changes with every chunk).
    pub async fn resumable(&self, org_id: Uuid, id: Uuid) -> Result<Upload, UploadsError> {
        let mut conn = self.inner.pool.get().await?;
        let row = repo::uploads::get(&mut conn, org_id, id)
            .await?
            .filter(|r| r.method == UploadMethod::Resumable)
            .ok_or(UploadsError::NotFound)?;
        Ok(row.into_upload())
    }

    /// Stores one chunk at `chunk.offset`, which must be the upload's current offset;
    /// returns the upload with its new offset. A chunk whose checksum does not match is
    /// dropped. A chunk cut short keeps what arrived (unless it carried a checksum,
    /// which cannot be checked then). The last chunk starts processing.
    pub async fn append<S, E>(
        &self,
        org_id: Uuid,
        id: Uuid,
        chunk: Chunk<S>,
    ) -> Result<Upload, UploadsError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let upload = self.resumable(org_id, id).await?;
        if upload.state != UploadState::Receiving {
            return Err(UploadsError::Conflict(
                "this upload has all its bytes already",
            ));
        }
        let offset = u64::try_from(upload.received_bytes).unwrap_or_default();
        if chunk.offset != offset {
            return Err(UploadsError::OffsetMismatch { expected: offset });
        }
        let length = u64::try_from(upload.size_bytes).unwrap_or_default();
        let limit = Limit {
            bytes: length - offset,
            why: format!("the chunk goes past the upload's length ({length} bytes)"),
        };
        let on_break = if chunk.checksum.is_some() {
            OnBreak::Discard
        } else {
            OnBreak::Keep
        };
        let key = part_key(org_id, id, offset);
        let received = receive(self.storage(), key.clone(), chunk.body, &limit, on_break).await?;
        let matches = match &chunk.checksum {
            None => true,
            Some(Checksum::Sha1(sum)) => *sum == received.sha1,
            Some(Checksum::Sha256(sum)) => *sum == received.sha256,
        };
        if !matches {
            self.storage().delete(&key).await?;
            return Err(UploadsError::ChecksumMismatch);
        }
        if received.size == 0 {
            self.storage().delete(&key).await?;
            return Ok(upload);
        }
        if let Some(why) = &received.broken {
            tracing::info!(upload.id = %id, bytes = received.size, reason = %why, "chunk cut short; kept what arrived");
        }
        let to = offset + received.size;
        let advanced = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::advance(
                &mut conn,
                org_id,
                id,
                i64::try_from(offset).unwrap_or_default(),
                i64::try_from(to).unwrap_or_default(),
            )
            .await?
        };
        let Some(row) = advanced else {
            // Another request moved the offset (or the upload went) while this chunk was
            // arriving: its bytes are not part of the upload.
            self.storage().delete(&key).await?;
            return Err(UploadsError::Conflict(
                "another request changed this upload meanwhile; ask for its offset",
            ));
        };
        metrics::counter!("keel_uploads_received_bytes_total", "method" => "resumable")
            .increment(received.size);
        if to == length {
            return self.start_processing(org_id, id, upload.size_bytes).await;
        }
        Ok(row.into_upload())
    }

    /// Joins the parts of a complete resumable upload into its original, then removes
    /// them. Idempotent: parts already joined (the original is there and no part is
    /// left) are not joined again.
    pub(crate) async fn assemble(
        &self,
        org_id: Uuid,
        id: Uuid,
        length: u64,
    ) -> Result<(), crate::process::ProcessError> {
        let storage = self.storage();
        let mut parts: Vec<(u64, ObjectKey, u64)> = storage
            .list(Some(&keys::derived(org_id, id, PARTS)))
            .map_ok(|o| (part_offset(&o.key), o.key, o.size))
            .try_collect()
            .await?;
        if parts.is_empty() {
            return Ok(());
        }
        parts.sort_by_key(|(offset, _, _)| *offset);
        let mut expected = 0;
        for (offset, key, size) in &parts {
            if *offset != expected {
                return Err(crate::process::ProcessError::Permanent(anyhow::anyhow!(
                    "the stored chunks do not join up (a gap before {key})"
                )));
            }
            expected += size;
        }
        if expected != length {
            return Err(crate::process::ProcessError::Permanent(anyhow::anyhow!(
                "the stored chunks hold {expected} bytes, not {length}"
            )));
        }
        let mut writer = storage.writer(keys::original(org_id, id)).await?;
        for (_, key, _) in &parts {
            let mut stream = storage.get(key, None).await?.stream;
            while let Some(bytes) = stream.try_next().await? {
                writer.write(bytes).await?;
            }
        }
        writer.finish().await?;
        for (_, key, _) in &parts {
            storage.delete(key).await?;
        }
        Ok(())
    }
}

/// The folder of a resumable upload's chunks, beside its original.
const PARTS: &str = "parts";

/// `{org}/uploads/{id}/parts/{offset}`, the offset zero-padded so that listing order is
/// offset order.
fn part_key(org_id: Uuid, id: Uuid, offset: u64) -> ObjectKey {
    ObjectKey::new([
        org_id.to_string().as_str(),
        keys::AREA,
        &id.to_string(),
        PARTS,
        &format!("{offset:020}"),
    ])
}

fn part_offset(key: &ObjectKey) -> u64 {
    key.segments()
        .last()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

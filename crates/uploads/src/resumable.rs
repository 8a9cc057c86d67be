//! Resumable uploads (the tus 1.0 protocol's model): an upload is created with its
//! length, then receives its bytes in chunks at increasing offsets, each stored as a
//! part object, so a network failure costs at most the chunk in flight and any replica
//! — or the same one after a restart — continues where the last chunk ended: the offset
//! lives in the row. Once every byte is there, the processing job joins the parts into
//! the original and inspects it like any upload.

use crate::model::{Upload, UploadMethod, UploadState};
use crate::receive::{Digest, Limit, OnBreak, receive};
use crate::rules::declared_type;
use crate::service::{NewUpload, Uploader};
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

impl Checksum {
    fn bytes(&self) -> &[u8] {
        match self {
            Checksum::Sha1(sum) => sum,
            Checksum::Sha256(sum) => sum,
        }
    }
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
            return Err(UploadsError::file_too_large(max));
        }
        if length == 0 {
            return Err(crate::rules::empty());
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
    /// its offset changes with every chunk). One that has every byte but is still
    /// receiving (its last chunk's request failed after moving the offset) starts
    /// processing now; one past its expiry is gone (410).
    pub async fn resumable(&self, org_id: Uuid, id: Uuid) -> Result<Upload, UploadsError> {
        let upload = {
            let mut conn = self.inner.pool.get().await?;
            repo::uploads::get(&mut conn, org_id, id)
                .await?
                .filter(|r| r.method == UploadMethod::Resumable)
                .ok_or(UploadsError::NotFound)?
                .into_upload()
        };
        if upload.state != UploadState::Receiving {
            return Ok(upload);
        }
        if upload.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
            return Err(UploadsError::Expired);
        }
        if upload.received_bytes == upload.size_bytes {
            return self.start_processing(org_id, id, upload.size_bytes).await;
        }
        Ok(upload)
    }

    /// Stores one chunk at `chunk.offset`, which must be the upload's current offset;
    /// returns the upload with its new offset. A chunk whose checksum does not match is
    /// dropped. A chunk cut short keeps what arrived (unless it carried a checksum,
    /// which cannot be checked then). The last chunk starts processing.
    /// With `only_by`, only an upload that person started (403 for another's).
    pub async fn append<S, E>(
        &self,
        org_id: Uuid,
        id: Uuid,
        chunk: Chunk<S>,
        only_by: Option<Uuid>,
    ) -> Result<Upload, UploadsError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let upload = self.resumable(org_id, id).await?;
        crate::rules::owned_by(&upload, only_by)?;
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
        // Written under a key of this request's own, so two requests racing for the
        // same offset never write into each other's object; named for its byte range
        // once complete, before the offset moves (see `assemble`).
        let staging = keys::derived_in(
            org_id,
            id,
            PARTS,
            &format!("{offset:020}.{}", Uuid::new_v4()),
        );
        let digest = match chunk.checksum {
            None => Digest::None,
            Some(Checksum::Sha1(_)) => Digest::Sha1,
            Some(Checksum::Sha256(_)) => Digest::Sha256,
        };
        let received = receive(
            self.storage(),
            staging.clone(),
            chunk.body,
            &limit,
            on_break,
            digest,
        )
        .await?;
        let matches = chunk
            .checksum
            .as_ref()
            .is_none_or(|sum| received.digest.as_deref() == Some(sum.bytes()));
        if !matches || received.size == 0 {
            self.storage().delete(&staging).await?;
            if !matches {
                return Err(UploadsError::ChecksumMismatch);
            }
            return Ok(upload);
        }
        if let Some(why) = &received.broken {
            tracing::info!(upload.id = %id, bytes = received.size, reason = %why, "chunk cut short; kept what arrived");
        }
        let to = offset + received.size;
        self.storage()
            .rename(&staging, &part_key(org_id, id, offset, to))
            .await?;
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
        self.inner
            .by_id
            .invalidate(&Self::cache_key(org_id, id))
            .await;
        let Some(row) = advanced else {
            // Another request moved the offset (or the upload went) while this chunk was
            // arriving: its part is not on the upload's path and is dropped when the
            // parts are joined (or the upload removed).
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
    /// every part. The parts on the upload's path are found by their names — each is
    /// `{start}-{end}` of its byte range — as the chain from 0 to the length; a part left
    /// by a request that lost a race, or whose process died before moving the offset,
    /// is off that chain and only removed. Idempotent: once the original is there whole,
    /// a second run only removes what parts are left.
    pub(crate) async fn assemble(
        &self,
        org_id: Uuid,
        id: Uuid,
        length: u64,
    ) -> Result<(), crate::process::ProcessError> {
        let storage = self.storage();
        let original = keys::original(org_id, id);
        let listed: Vec<keel_storage::ObjectInfo> = storage
            .list(Some(&keys::derived(org_id, id, PARTS)))
            .try_collect()
            .await?;
        let joined = match storage.head(&original).await {
            Ok(info) => info.size == length,
            Err(keel_storage::StorageError::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if !joined {
            let ranges: Vec<(u64, u64, &ObjectKey)> = listed
                .iter()
                .filter_map(|o| part_range(&o.key).map(|(start, end)| (start, end, &o.key)))
                .collect();
            let chain = chain(&ranges, length).ok_or_else(|| {
                crate::process::ProcessError::Permanent(anyhow::anyhow!(
                    "the stored chunks do not join up into {length} bytes"
                ))
            })?;
            let mut writer = storage.writer(original).await?;
            for key in chain {
                let mut stream = storage.get(key, None).await?.stream;
                while let Some(bytes) = stream.try_next().await? {
                    writer.write(bytes).await?;
                }
            }
            writer.finish().await?;
        }
        for part in &listed {
            storage.delete(&part.key).await?;
        }
        Ok(())
    }
}

/// The parts' keys, in order, that cover `0..length` end to end, if some do. A depth-first
/// search that remembers the offsets it found no way on from, so stale parts (however
/// many) cost linear time.
fn chain<'a>(ranges: &[(u64, u64, &'a ObjectKey)], length: u64) -> Option<Vec<&'a ObjectKey>> {
    fn from<'a>(
        at: u64,
        length: u64,
        ranges: &[(u64, u64, &'a ObjectKey)],
        dead: &mut std::collections::HashSet<u64>,
        path: &mut Vec<&'a ObjectKey>,
    ) -> bool {
        if at == length {
            return true;
        }
        if dead.contains(&at) {
            return false;
        }
        for &(_, end, key) in ranges
            .iter()
            .filter(|(start, end, _)| *start == at && *end > at)
        {
            path.push(key);
            if from(end, length, ranges, dead, path) {
                return true;
            }
            path.pop();
        }
        dead.insert(at);
        false
    }
    let mut path = Vec::new();
    from(0, length, ranges, &mut Default::default(), &mut path).then_some(path)
}

/// The folder of a resumable upload's chunks, beside its original.
const PARTS: &str = "parts";

/// `{org}/uploads/{id}/parts/{start}-{end}`, zero-padded so that listing order is
/// offset order.
fn part_key(org_id: Uuid, id: Uuid, start: u64, end: u64) -> ObjectKey {
    keys::derived_in(org_id, id, PARTS, &format!("{start:020}-{end:020}"))
}

/// The byte range a part's name says it holds; `None` for anything else (a request's
/// unfinished staging object).
fn part_range(key: &ObjectKey) -> Option<(u64, u64)> {
    let name = key.segments().last().copied()?;
    let (start, end) = name.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_skips_parts_off_the_path() {
        let key = |s: &str| ObjectKey::new([s]);
        let (a, b, stale, c) = (key("a"), key("b"), key("stale"), key("c"));
        let ranges = [(0, 4, &a), (4, 6, &stale), (4, 8, &b), (8, 10, &c)];
        assert_eq!(chain(&ranges, 10), Some(vec![&a, &b, &c]));
        assert_eq!(chain(&ranges, 11), None);
        assert_eq!(chain(&[], 0), Some(vec![]));
    }
}

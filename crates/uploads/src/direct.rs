//! Direct uploads: with S3 storage, the client PUTs the bytes straight into the bucket
//! through a presigned URL — they never pass through Keel — then says it is done.

use crate::model::{Upload, UploadMethod, UploadState};
use crate::rules::declared_type;
use crate::service::{NewUpload, Uploader};
use crate::{Uploads, UploadsError, keys, names, repo};
use chrono::{DateTime, Utc};
use keel_http::Reply;
use keel_storage::{Method, PresignConditions, StorageError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST .../uploads/direct`: the file to come.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDirectUpload {
    /// The file's name (cleaned like every upload's).
    #[schema(min_length = 1, max_length = 1024)]
    pub file_name: String,
    /// Its media type; the PUT must send exactly this `Content-Type`.
    #[schema(min_length = 3, max_length = 255, example = "image/png")]
    pub content_type: String,
    /// Its exact size in bytes; `complete` checks it.
    #[schema(minimum = 1)]
    pub size_bytes: i64,
}

/// Where and how to send the bytes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DirectUpload {
    /// The upload, in state `receiving` until completed.
    pub upload: Upload,
    /// PUT the bytes here, with `headers`, before `url_expires_at`.
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the PUT must carry, exactly (they are part of the signature).
    pub headers: std::collections::BTreeMap<String, String>,
    pub url_expires_at: DateTime<Utc>,
}

impl Uploads {
    /// Records the upload (reserving its size in the quota) and signs a PUT for it.
    pub async fn create_direct(
        &self,
        org_id: Uuid,
        uploader: Uploader,
        input: NewDirectUpload,
        reply: &Reply<DirectUpload>,
    ) -> Result<DirectUpload, UploadsError> {
        if !self.storage().can_presign() {
            return Err(UploadsError::Conflict(
                "direct uploads need S3 storage; this deployment stores files itself: use the streamed or resumable upload",
            ));
        }
        let content_type = declared_type(Some(&input.content_type))?;
        if input.size_bytes < 1 {
            return Err(UploadsError::invalid("size_bytes", "must be at least 1"));
        }
        let max = self.inner.settings.uploads.max_size_bytes;
        if u64::try_from(input.size_bytes).unwrap_or(u64::MAX) > max {
            return Err(UploadsError::file_too_large(max));
        }
        let file_name = names::clean(&input.file_name);
        let id = Uuid::now_v7();
        let signed_at = Utc::now();
        let url = self
            .storage()
            .presign(
                Method::PUT,
                &keys::incoming(org_id, id),
                &PresignConditions {
                    content_type: Some(content_type.clone()),
                    ..PresignConditions::default()
                },
            )
            .await?;
        let new = NewUpload {
            id,
            org_id,
            uploader,
            method: UploadMethod::Direct,
            file_name: &file_name,
            declared_type: &content_type,
            size: input.size_bytes,
            sha256: None,
        };
        let expiry =
            chrono::Duration::from_std(self.storage().presign_expiry()).unwrap_or_default();
        let (direct, _) = self
            .record_new(&new, reply, |upload| DirectUpload {
                upload,
                url: url.to_string(),
                method: "PUT".to_owned(),
                headers: [("content-type".to_owned(), content_type.clone())].into(),
                url_expires_at: signed_at + expiry,
            })
            .await?;
        metrics::counter!("keel_uploads_received_total", "method" => "direct").increment(1);
        Ok(direct)
    }

    /// The client says the bytes are in the bucket: they must be there with the declared
    /// size, then processing starts. Completing an upload already past `receiving` answers
    /// it as it is, so a retried call is harmless.
    pub async fn complete_direct(
        &self,
        org_id: Uuid,
        id: Uuid,
        only_by: Option<Uuid>,
    ) -> Result<Upload, UploadsError> {
        let upload = self.get(org_id, id).await?;
        crate::rules::owned_by(&upload, only_by)?;
        if upload.method != UploadMethod::Direct {
            return Err(UploadsError::Conflict(
                "only direct uploads are completed this way",
            ));
        }
        if upload.state != UploadState::Receiving {
            return Ok(upload);
        }
        // The URL stays valid after this: the client PUTs to a key of its own, which is
        // moved to the original only now, so a later PUT cannot change a checked file.
        let incoming = keys::incoming(org_id, id);
        let original = keys::original(org_id, id);
        let stored = match self.storage().head(&incoming).await {
            Ok(info) => Some(info),
            Err(StorageError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let size = match &stored {
            Some(info) => info.size,
            // Moved by an earlier call that did not get to start processing.
            None => match self.storage().head(&original).await {
                Ok(info) => info.size,
                Err(StorageError::NotFound(_)) => {
                    return Err(UploadsError::Conflict(
                        "no file has been uploaded to the URL yet; PUT it there first",
                    ));
                }
                Err(e) => return Err(e.into()),
            },
        };
        if i64::try_from(size).ok() != Some(upload.size_bytes) {
            self.storage().delete(&incoming).await?;
            return Err(UploadsError::SizeMismatch {
                declared: upload.size_bytes,
                stored: size,
            });
        }
        if stored.is_some() {
            self.storage().rename(&incoming, &original).await?;
        }
        self.start_processing(org_id, id, upload.size_bytes).await
    }

    /// `receiving` → `processing` with every byte in place, and the processing job, in
    /// one transaction.
    pub(crate) async fn start_processing(
        &self,
        org_id: Uuid,
        id: Uuid,
        received: i64,
    ) -> Result<Upload, UploadsError> {
        use diesel_async::AsyncConnection as _;
        let mut conn = self.inner.pool.get().await?;
        let (row, job) = conn
            .transaction(async |conn| {
                let Some(row) = repo::uploads::received_all(conn, org_id, id, received).await?
                else {
                    return Ok::<_, UploadsError>((None, None));
                };
                let job = self
                    .inner
                    .queue
                    .enqueue(conn, &crate::jobs::Process { upload_id: id })
                    .await?;
                Ok((Some(row), Some(job)))
            })
            .await?;
        self.inner.queue.ring(job).await;
        self.inner
            .by_id
            .invalidate(&Self::cache_key(org_id, id))
            .await;
        match row {
            Some(row) => Ok(row.into_upload()),
            // Another request completed it first.
            None => self.get(org_id, id).await,
        }
    }
}

//! The uploads domain's one error enum; each variant's doc says the status it becomes.

use crate::model::UploadState;
use actix_web::http::StatusCode;
use keel_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum UploadsError {
    /// 422: a field failed validation.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 404: no such upload for this caller (also: another organization's).
    #[error("not found")]
    NotFound,
    /// 403: allowed to see the upload, not to do this to it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 413: the file is bigger than one upload may be, or than what is left of the
    /// organization's quota. Nothing of it is kept.
    #[error("{0}")]
    TooLarge(String),
    /// 409: the request does not fit the upload's or the deployment's state.
    #[error("{0}")]
    Conflict(&'static str),
    /// 409: the bytes in storage are not as many as were declared; they were removed.
    #[error("the stored file has {stored} bytes, {declared} were declared")]
    SizeMismatch { declared: i64, stored: u64 },
    /// 410: a resumable upload past its expiry (the sweeper removes it).
    #[error("this upload has expired")]
    Expired,
    /// 409: a resumable chunk sent at another offset than the upload's.
    #[error("the upload's offset is {expected}")]
    OffsetMismatch { expected: u64 },
    /// 460 (tus): the chunk's bytes do not match its `Upload-Checksum`; it was dropped.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// 409: the upload is not in a state that allows this (its content before it is
    /// `ready`).
    #[error("the upload is {0}")]
    NotReady(UploadState),
    /// 416: a `Range` that starts past the end of the content.
    #[error("range not satisfiable")]
    Range { size: u64 },
    /// 400: the request body broke off (the client went away or sent less than it
    /// announced). Nothing of it is kept.
    #[error("the request body ended early: {0}")]
    Incomplete(String),
    /// 415: a multipart body without a file part, or a body type uploads do not take.
    #[error("{0}")]
    Unsupported(String),
    /// 503: object storage is unreachable or refused.
    #[error(transparent)]
    Storage(StorageError),
    /// 503/500, by the database error's class.
    #[error(transparent)]
    Db(keel_persistence::DbError),
}

keel_persistence::db_error_conversions!(UploadsError::Db);

impl From<StorageError> for UploadsError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) => UploadsError::NotFound,
            other => UploadsError::Storage(other),
        }
    }
}

impl UploadsError {
    /// 413 for a file bigger than `max` bytes, however it arrives.
    pub fn file_too_large(max: u64) -> Self {
        UploadsError::TooLarge(format!("a file may have at most {max} bytes"))
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        UploadsError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<UploadsError> for keel_http::ApiError {
    fn from(e: UploadsError) -> Self {
        use keel_http::ApiError;
        match e {
            UploadsError::Invalid { field, message } => ApiError::validation(field, message),
            UploadsError::NotFound => ApiError::not_found("not found"),
            UploadsError::Forbidden(why) => ApiError::forbidden(why),
            UploadsError::TooLarge(why) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", why)
            }
            UploadsError::Conflict(why) => ApiError::conflict(why),
            e @ UploadsError::SizeMismatch { .. } => {
                ApiError::conflict(format!("{e}; it was removed: upload it again"))
            }
            UploadsError::Expired => ApiError::new(
                StatusCode::GONE,
                "gone",
                "this upload was not finished in time and has expired; start a new one",
            ),
            UploadsError::OffsetMismatch { expected } => ApiError::conflict(format!(
                "Upload-Offset does not match the upload's offset ({expected}); ask for it with HEAD"
            )),
            UploadsError::ChecksumMismatch => ApiError::new(
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                "checksum_mismatch",
                "the chunk does not match its Upload-Checksum; it was dropped: send it again",
            ),
            UploadsError::NotReady(state) => ApiError::conflict(format!(
                "the upload is {state}; its content can be read once it is ready"
            )),
            UploadsError::Range { size } => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range starts past the end of the content ({size} bytes)"),
            ),
            UploadsError::Incomplete(why) => {
                ApiError::bad_request(format!("the request body ended early: {why}"))
            }
            UploadsError::Unsupported(why) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                why,
            ),
            UploadsError::Storage(e) => {
                tracing::warn!(error = %e, "object storage failed");
                ApiError::unavailable("file storage is unavailable; retry shortly", 5)
            }
            UploadsError::Db(db) => db.into(),
        }
    }
}

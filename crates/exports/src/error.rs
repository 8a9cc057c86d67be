//! The exports domain's one error enum; each variant's doc says the status it becomes.

use crate::model::ExportState;
use keel_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ExportsError {
    /// 422: a field of the request failed validation; `field` names it
    /// (`filters.created_after`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 404: no such export for this caller (also: another organization's).
    #[error("not found")]
    NotFound,
    /// 429: the organization has as many exports queued or running as it may, or has
    /// requested its daily number; `retry_after` seconds until one frees up.
    #[error("{message}")]
    Limited { message: String, retry_after: u64 },
    /// 409: the export is not in a state that allows this (cancelling a finished one,
    /// downloading one that is not `succeeded`).
    #[error("the export is {0}")]
    State(ExportState),
    /// 410: the export's file has passed its retention and is gone.
    #[error("the export has expired")]
    Expired,
    /// 403: a download link that was tampered with, has expired, or was signed by a key
    /// no longer configured.
    #[error("{0}")]
    BadLink(&'static str),
    /// 416: a `Range` that starts past the end of the file.
    #[error("range not satisfiable")]
    Range { size: u64 },
    /// 503: object storage is unreachable or refused.
    #[error(transparent)]
    Storage(StorageError),
    /// 500: a download link could not be signed (a key the MAC refuses: a bug).
    #[error("signing a download link: {0}")]
    Signing(hmac::digest::InvalidLength),
    /// 503/500, by the database error's class.
    #[error(transparent)]
    Db(keel_persistence::DbError),
}

keel_persistence::db_error_conversions!(ExportsError::Db);

impl From<StorageError> for ExportsError {
    fn from(e: StorageError) -> Self {
        match e {
            // The row says there is a file and the store has none: the retention job
            // got there first.
            StorageError::NotFound(_) => ExportsError::Expired,
            other => ExportsError::Storage(other),
        }
    }
}

impl ExportsError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ExportsError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ExportsError> for keel_http::ApiError {
    fn from(e: ExportsError) -> Self {
        use actix_web::http::StatusCode;
        use keel_http::ApiError;
        match e {
            ExportsError::Invalid { field, message } => ApiError::validation(field, message),
            ExportsError::NotFound => ApiError::not_found("not found"),
            ExportsError::Limited {
                message,
                retry_after,
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
                .retry_after(retry_after),
            ExportsError::State(state) => ApiError::conflict(match state {
                ExportState::Queued | ExportState::Running => {
                    format!(
                        "the export is {state}; its file can be downloaded once it has succeeded"
                    )
                }
                _ => format!("the export is {state}"),
            }),
            ExportsError::Expired => ApiError::new(
                StatusCode::GONE,
                "gone",
                "the export has passed its retention and its file was deleted; request a new one",
            ),
            ExportsError::BadLink(why) => ApiError::forbidden(why),
            ExportsError::Range { size } => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range starts past the end of the file ({size} bytes)"),
            ),
            ExportsError::Storage(e) => {
                tracing::warn!(error = %e, "object storage failed");
                ApiError::unavailable("file storage is unavailable; retry shortly", 5)
            }
            e @ ExportsError::Signing(_) => ApiError::internal(&e),
            ExportsError::Db(db) => db.into(),
        }
    }
}

impl From<ExportsError> for keel_queue::JobError {
    fn from(e: ExportsError) -> Self {
        match e {
            ExportsError::Db(db) => db.into(),
            other => keel_queue::JobError::retry(anyhow::Error::new(other)),
        }
    }
}

//! The export resource: its states, formats and progress.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

keel_persistence::text_enum! {
    /// Where an export stands: `queued` → `running` → `succeeded` (its file can be
    /// downloaded until `expires_at`), `failed` (see `error`) or `canceled`; a succeeded
    /// export past `expires_at` is `expired` (its file is gone or about to be).
    pub enum ExportState {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
        Expired = "expired",
    }
}

impl ExportState {
    /// Still to be produced: counted against the organization's running limit, and
    /// cancelable.
    pub fn is_active(self) -> bool {
        matches!(self, ExportState::Queued | ExportState::Running)
    }
}

keel_persistence::text_enum! {
    /// The file's format: `csv` (RFC 4180, a header row, CRLF) or `ndjson` (one JSON
    /// object per line).
    pub enum ExportFormat {
        Csv = "csv",
        Ndjson = "ndjson",
    }
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }

    /// The download's `Content-Type`: the format's, or gzip's for a compressed file.
    pub fn content_type(self, compressed: bool) -> &'static str {
        match (self, compressed) {
            (_, true) => "application/gzip",
            (ExportFormat::Csv, false) => "text/csv; charset=utf-8",
            (ExportFormat::Ndjson, false) => "application/x-ndjson",
        }
    }
}

/// An export as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Export {
    pub id: Uuid,
    /// The data source (`GET .../exports/sources` lists them).
    pub source: String,
    pub format: ExportFormat,
    /// Whether the file is gzip-compressed.
    pub compress: bool,
    /// The filters as requested (time range and the source's own).
    #[schema(value_type = Object)]
    pub filters: serde_json::Value,
    pub state: ExportState,
    pub progress: Progress,
    /// Rows in the file, once it succeeded.
    pub row_count: Option<i64>,
    /// The file's size in bytes (compressed when `compress`), once it succeeded.
    pub size_bytes: Option<i64>,
    /// Hex SHA-256 of the file's bytes, as downloaded.
    pub sha256: Option<String>,
    /// The download's file name.
    pub file_name: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The person who requested it, when a session did.
    pub requested_by_user: Option<Uuid>,
    /// The API key that requested it, when a key did.
    pub requested_by_key: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// When the job first started on it.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The file and this record are deleted after this.
    pub expires_at: Option<DateTime<Utc>>,
}

/// How far the job is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Rows written so far (updated every few thousand rows, not every row).
    pub rows_written: i64,
    /// About how many rows the export will have, once the job has counted them.
    pub estimated_rows: Option<i64>,
    /// `rows_written` of `estimated_rows`, 0–100; 100 once succeeded.
    pub percent: Option<f64>,
}

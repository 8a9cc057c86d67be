//! The upload resource: its states, how it arrived, and what processing found.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

keel_persistence::text_enum! {
    /// Where an upload stands. `receiving` (resumable and direct uploads whose bytes are
    /// still arriving) → `processing` (the checks run in a job) → `ready`, `rejected`
    /// (the checks refused it: see `reason`) or `failed` (processing could not finish).
    pub enum UploadState {
        Receiving = "receiving",
        Processing = "processing",
        Ready = "ready",
        Rejected = "rejected",
        Failed = "failed",
    }
}

keel_persistence::text_enum! {
    /// How the bytes arrived: streamed through Keel in one request, resumable (tus), or
    /// directly into the object store with a presigned URL.
    pub enum UploadMethod {
        Streamed = "streamed",
        Resumable = "resumable",
        Direct = "direct",
    }
}

impl UploadState {
    /// No job will change it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            UploadState::Ready | UploadState::Rejected | UploadState::Failed
        )
    }
}

/// An uploaded file as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Upload {
    pub id: Uuid,
    pub state: UploadState,
    pub method: UploadMethod,
    /// The client's name for the file, cleaned of path parts and control characters.
    pub file_name: String,
    /// The `Content-Type` the client declared.
    pub declared_type: String,
    /// The type the bytes show (magic numbers, or text), once processed. Downloads are
    /// served as this type, never as the declared one.
    pub detected_type: Option<String>,
    pub size_bytes: i64,
    /// Bytes received so far (equal to `size_bytes` once complete).
    pub received_bytes: i64,
    /// Hex SHA-256 of the content; also the download's `ETag`.
    pub sha256: Option<String>,
    /// Why the upload was rejected or failed.
    pub reason: Option<String>,
    pub results: Results,
    /// The person who uploaded it, when a session did.
    pub uploaded_by_user: Option<Uuid>,
    /// The API key that uploaded it, when a key did.
    pub uploaded_by_key: Option<Uuid>,
    /// An unfinished upload is removed after this.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// What processing found. Each part is present when it applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Results {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableFacts>,
    /// Results of the deployment's own processors, by processor name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub processors: BTreeMap<String, serde_json::Value>,
}

/// An image's size, and whether a thumbnail was made (`GET .../thumbnail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageFacts {
    pub width: u32,
    pub height: u32,
    pub thumbnail: bool,
}

/// The shape of a CSV or text file: records (lines for plain text) and the columns of
/// the first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableFacts {
    pub rows: u64,
    pub columns: u64,
}

//! Uploads: files streamed into object storage, checked and processed off the request
//! path.
//!
//! - **Receiving** ([`Uploads::receive_streamed`]): the body goes to storage in parts as
//!   it arrives (never whole in memory), hashed and counted on the way; the per-file cap
//!   and the organization's quota are enforced while streaming. The row is written only
//!   once every byte is stored, so a refused or broken-off upload leaves nothing.
//! - **Processing** (job `uploads.process`, [`process`]): size, SHA-256 and the type the
//!   bytes show (magic numbers, never the client's label); a contradicting label or a
//!   type outside the allow-list rejects the upload; then the [`process::Processor`]s:
//!   built in, image dimensions and thumbnails (decoded within limits) and CSV/text
//!   shape; a deployment adds its own. The end state publishes `upload.processed`,
//!   `upload.rejected` or `upload.failed`.
//! - **Reading**: metadata (cached), content with `Range`/`ETag`, thumbnails.
//! - **Deleting**: the row at once, the objects by the `uploads.delete_objects` job.
//!
//! - **Sweeping** (job `uploads.sweep`, hourly, [`sweep`]): objects no row accounts for,
//!   and unfinished uploads past their expiry, are removed.
//!
//! Objects live under `{org_id}/uploads/{upload_id}/` ([`keys`]); Postgres holds what
//! they are. The bytes of rejected and failed uploads are removed and given back to
//! the quota.
//!
//! Metrics: `keel_uploads_received_total{method}`, `keel_uploads_received_bytes_total{method}`,
//! `keel_uploads_processed_total{outcome}`, `keel_uploads_processing_seconds`,
//! `keel_uploads_swept_total{kind}`.

pub mod ai;
mod deferred;
pub mod direct;
mod error;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod model;
pub mod names;
mod outcome;
pub mod process;
mod receive;
pub mod repo;
pub mod resumable;
mod rules;
mod service;
pub mod sniff;
pub mod sweep;

/// The area of the uploads domain's API-key scopes: `uploads:read`, `uploads:write`.
pub const SCOPE_AREA: &str = "uploads";

pub use error::UploadsError;
pub use model::{ImageFacts, Results, TableFacts, Upload, UploadMethod, UploadState};
pub use service::{Incoming, Uploader, Uploads};

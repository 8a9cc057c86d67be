//! Where an export's file lives: `{org_id}/exports/{export_id}/{attempt}/{file name}`.
//! Each run of the job writes under its own attempt number, so a stale run (its lease
//! taken over) can never overwrite or delete the file another run recorded; the row
//! names the one file that counts, and the folder holds everything of the export.

use keel_storage::ObjectKey;
use uuid::Uuid;

/// The second segment of every key this domain writes.
pub const AREA: &str = "exports";

pub fn file(org_id: Uuid, export_id: Uuid, attempt: i32, file_name: &str) -> ObjectKey {
    ObjectKey::new([
        org_id.to_string().as_str(),
        AREA,
        &export_id.to_string(),
        &attempt.to_string(),
        file_name,
    ])
}

/// The folder of one export's objects.
pub fn folder(org_id: Uuid, export_id: Uuid) -> ObjectKey {
    ObjectKey::new([org_id.to_string().as_str(), AREA, &export_id.to_string()])
}

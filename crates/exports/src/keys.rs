//! Where an export's file lives: `{org_id}/exports/{export_id}/{file name}`, one object
//! per export (a retry writes the same key again).

use keel_storage::ObjectKey;
use uuid::Uuid;

/// The second segment of every key this domain writes.
pub const AREA: &str = "exports";

pub fn file(org_id: Uuid, export_id: Uuid, file_name: &str) -> ObjectKey {
    ObjectKey::new([
        org_id.to_string().as_str(),
        AREA,
        &export_id.to_string(),
        file_name,
    ])
}

/// The folder of one export's objects.
pub fn folder(org_id: Uuid, export_id: Uuid) -> ObjectKey {
    ObjectKey::new([org_id.to_string().as_str(), AREA, &export_id.to_string()])
}

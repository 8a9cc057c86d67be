//! Where an upload's objects live: `{org_id}/uploads/{upload_id}/{name}`. The original
//! is `original`; processors add derived objects (`thumbnail.png`) beside it, so
//! removing the folder removes everything.

use keel_storage::ObjectKey;
use uuid::Uuid;

/// The second segment of every key this domain writes.
pub const AREA: &str = "uploads";

pub fn original(org_id: Uuid, upload_id: Uuid) -> ObjectKey {
    derived(org_id, upload_id, "original")
}

/// Where a direct upload's presigned PUT writes: moved to the original once checked.
pub fn incoming(org_id: Uuid, upload_id: Uuid) -> ObjectKey {
    derived(org_id, upload_id, INCOMING)
}

/// The name of a direct upload's not-yet-checked object.
pub const INCOMING: &str = "incoming";

pub fn thumbnail(org_id: Uuid, upload_id: Uuid) -> ObjectKey {
    derived(org_id, upload_id, "thumbnail.png")
}

pub fn derived(org_id: Uuid, upload_id: Uuid, name: &str) -> ObjectKey {
    ObjectKey::new([
        org_id.to_string().as_str(),
        AREA,
        &upload_id.to_string(),
        name,
    ])
}

/// `name` in a folder of its own beside the original (`parts/...` of resumable uploads).
pub fn derived_in(org_id: Uuid, upload_id: Uuid, folder: &str, name: &str) -> ObjectKey {
    ObjectKey::new([
        org_id.to_string().as_str(),
        AREA,
        &upload_id.to_string(),
        folder,
        name,
    ])
}

/// The folder of all of an upload's objects.
pub fn folder(org_id: Uuid, upload_id: Uuid) -> ObjectKey {
    ObjectKey::new([org_id.to_string().as_str(), AREA, &upload_id.to_string()])
}

/// The upload id a listed key belongs to, when it is one of this domain's keys.
pub fn upload_of(key: &ObjectKey) -> Option<Uuid> {
    match key.segments().as_slice() {
        [_org, area, id, ..] if *area == AREA => id.parse().ok(),
        _ => None,
    }
}

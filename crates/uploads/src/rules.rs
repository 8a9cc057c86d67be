//! The rules every way of uploading shares: who may change an upload, which uploads
//! hold quota, what a declared type must look like, what an empty file is.

use crate::UploadsError;
use crate::model::{Upload, UploadState};
use crate::sniff;
use uuid::Uuid;

/// 403 unless `only_by` (a member who is not an admin) started `upload`.
pub(crate) fn owned_by(upload: &Upload, only_by: Option<Uuid>) -> Result<(), UploadsError> {
    if only_by.is_some_and(|user| upload.uploaded_by_user != Some(user)) {
        return Err(UploadsError::Forbidden(
            "members may change only their own uploads; owners and admins may change any",
        ));
    }
    Ok(())
}

/// Uploads whose bytes count against the quota: rejected and failed ones gave theirs
/// back when processing ended.
pub(crate) fn holds_quota(state: UploadState) -> bool {
    !matches!(state, UploadState::Rejected | UploadState::Failed)
}

/// An upload without a byte: nothing to keep, most likely a client bug.
pub(crate) fn empty() -> UploadsError {
    UploadsError::invalid("body", "the file is empty")
}

pub(crate) fn quota_message(quota: Option<i64>) -> String {
    format!(
        "this file does not fit in what is left of the organization's upload quota ({} bytes)",
        quota.unwrap_or_default()
    )
}

/// The declared type, checked to be a media type (`type/subtype`, optional parameters);
/// none declared is `application/octet-stream`.
pub(crate) fn declared_type(raw: Option<&str>) -> Result<String, UploadsError> {
    let Some(raw) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok("application/octet-stream".to_owned());
    };
    let essence = sniff::essence(raw);
    let valid = essence.split_once('/').is_some_and(|(t, s)| {
        let token = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        token(t) && token(s)
    });
    if valid && raw.len() <= 255 {
        Ok(essence)
    } else {
        Err(UploadsError::invalid(
            "content_type",
            "must be a media type such as image/png",
        ))
    }
}

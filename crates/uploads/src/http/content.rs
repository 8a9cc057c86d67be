//! What serving an upload's bytes needs beyond [`keel_http::download`]: its entity tag
//! and its errors.

use crate::UploadsError;
use crate::model::Upload;
use actix_web::HttpResponse;

/// The strong entity tag of an upload's content.
pub fn etag(upload: &Upload) -> Option<String> {
    upload.sha256.as_ref().map(|sha| format!("\"{sha}\""))
}

/// An error response; a 416 also says how long the content is.
pub fn error(e: UploadsError) -> HttpResponse {
    let size = match &e {
        UploadsError::Range { size } => Some(*size),
        _ => None,
    };
    keel_http::download::error(e.into(), size)
}

//! The uploads part of the OpenAPI document: the tag description (the paths come from
//! the routes themselves).

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    components(schemas(super::resumable::TusVersion)),
    tags((name = "uploads", description = "Files streamed into object storage and processed in the background")),
)]
pub struct UploadsApi;

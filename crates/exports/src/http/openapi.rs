//! The exports part of the OpenAPI document: the tag description (the paths come from
//! the routes themselves).

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(tags((
    name = "exports",
    description = "Reports generated in the background and downloaded through expiring signed links"
)))]
pub struct ExportsApi;

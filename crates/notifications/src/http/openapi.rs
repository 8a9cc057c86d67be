//! The notifications part of the OpenAPI document; the binary merges it into the whole. Its
//! paths come from the routes themselves (`http::configure` registers each handler
//! once, with its `#[utoipa::path]`); this adds what a route cannot say: tag descriptions.

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    tags(
        (name = "notifications", description = "In-app notifications, preferences, unsubscribe links"),
        (name = "webhooks", description = "Signed outgoing webhooks of an organization and their delivery log"),
    )
)]
pub struct NotificationsApi;

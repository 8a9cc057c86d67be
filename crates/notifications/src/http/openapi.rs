//! The notifications part of the OpenAPI document; the binary merges it into the whole.

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        super::inbox::list, super::inbox::unread_count, super::inbox::read, super::inbox::read_all,
        super::inbox::preferences, super::inbox::set_preferences, super::inbox::unsubscribe_page, super::inbox::unsubscribe,
        super::webhooks::create, super::webhooks::list, super::webhooks::get, super::webhooks::update,
        super::webhooks::delete, super::webhooks::rotate_secret, super::webhooks::test,
        super::webhooks::deliveries, super::webhooks::redeliver,
    ),
    tags(
        (name = "notifications", description = "In-app notifications, preferences, unsubscribe links"),
        (name = "webhooks", description = "Signed outgoing webhooks of an organization and their delivery log"),
    )
)]
pub struct NotificationsApi;

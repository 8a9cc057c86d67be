//! Webhook endpoints of an organization: create (the signing secret is shown once),
//! read, update, delete, rotate the secret. Every query is scoped by `org_id`, so another
//! organization's endpoint is "not found", exactly like a missing one.

use crate::error::NotificationsError;
use crate::preferences::check_event_type;
use crate::repo::endpoints::{self, EndpointEdit};
use crate::service::Notifications;
use crate::webhooks::signing;
use keel_http::Reply;
use keel_http::pagination::{Page, Paginated};
use keel_persistence::AsyncConnection as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::repo::endpoints::Endpoint;

/// Most endpoints one organization may have: each event costs one delivery per endpoint.
pub const MAX_ENDPOINTS: i64 = 20;
/// Most event types one endpoint may list.
const MAX_EVENT_TYPES: usize = 50;

/// The endpoint with its signing secret: only in the answers to create and rotate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_...`: verify signatures with it. Shown once; rotate it if lost.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://...` (or `http://`); must resolve to a public address.
    #[schema(max_length = 2048, pattern = "^https?://[^/?#@\\s]+([/?][^#\\s]*)?$")]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub description: String,
    /// Event types to deliver, e.g. `["export.completed"]`, or `["*"]` for all.
    #[schema(min_items = 1, max_items = 50, inline, value_type = Vec<String>)]
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    #[schema(max_length = 2048, pattern = "^https?://[^/?#@\\s]+([/?][^#\\s]*)?$")]
    pub url: Option<String>,
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub description: Option<String>,
    #[schema(min_items = 1, max_items = 50, inline, value_type = Vec<String>)]
    pub event_types: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint (and closes its breaker); `false` pauses it.
    /// A new `url` also starts with a clean failure streak.
    pub enabled: Option<bool>,
}

impl Notifications {
    pub async fn create_endpoint(
        &self,
        org_id: Uuid,
        input: NewEndpoint,
        reply: &Reply<EndpointWithSecret>,
    ) -> Result<EndpointWithSecret, NotificationsError> {
        let url = self.check_url(&input.url).await?;
        check_event_types(&input.event_types)?;
        check_description(&input.description)?;
        let secret = signing::new_secret();
        let id = Uuid::now_v7();
        // The count and the insert run under a per-organization lock: two concurrent
        // creates at 19 endpoints would otherwise both see 19 (READ COMMITTED) and both
        // insert. The lock is transaction-scoped and taken before the insert's snapshot.
        self.inner
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                endpoints::lock_org(conn, org_id).await?;
                let new = endpoints::NewEndpointRow {
                    id,
                    org_id,
                    url: &url,
                    description: &input.description,
                    event_types: &input.event_types,
                    secret: &secret,
                };
                let endpoint = endpoints::insert_within_limit(conn, new, MAX_ENDPOINTS)
                    .await?
                    .ok_or_else(|| {
                        NotificationsError::invalid(
                            "url",
                            format!(
                                "an organization may have at most {MAX_ENDPOINTS} webhook endpoints"
                            ),
                        )
                    })?;
                let created = EndpointWithSecret {
                    endpoint,
                    secret: secret.clone(),
                };
                reply.record(conn, &created).await?;
                Ok(created)
            })
            .await
    }

    pub async fn endpoints(
        &self,
        org_id: Uuid,
        page: &Page<Uuid>,
    ) -> Result<Paginated<Endpoint>, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let rows = endpoints::list(&mut conn, org_id, page.fetch_limit(), page.after).await?;
        Ok(Paginated::from_rows(rows, page, |e| e.id))
    }

    pub async fn endpoint(&self, org_id: Uuid, id: Uuid) -> Result<Endpoint, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        endpoints::get(&mut conn, org_id, id)
            .await?
            .ok_or(NotificationsError::NotFound)
    }

    pub async fn update_endpoint(
        &self,
        org_id: Uuid,
        id: Uuid,
        changes: EndpointChanges,
    ) -> Result<Endpoint, NotificationsError> {
        let url = match &changes.url {
            Some(url) => Some(self.check_url(url).await?),
            None => None,
        };
        if let Some(types) = &changes.event_types {
            check_event_types(types)?;
        }
        if let Some(description) = &changes.description {
            check_description(description)?;
        }
        let mut conn = self.inner.pool.get().await?;
        let edit = EndpointEdit {
            url: url.as_deref(),
            description: changes.description.as_deref(),
            event_types: changes.event_types.as_deref(),
            enabled: changes.enabled,
        };
        endpoints::update(&mut conn, org_id, id, edit)
            .await?
            .ok_or(NotificationsError::NotFound)
    }

    /// Deletes the endpoint and its delivery log; queued deliveries find nothing to do.
    pub async fn delete_endpoint(&self, org_id: Uuid, id: Uuid) -> Result<(), NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        if endpoints::delete(&mut conn, org_id, id).await? {
            Ok(())
        } else {
            Err(NotificationsError::NotFound)
        }
    }

    /// A new secret; the current one keeps signing (a second `v1=` signature) for
    /// `webhooks.secret_overlap_hours`, so receivers can switch without losing events.
    pub async fn rotate_secret(
        &self,
        org_id: Uuid,
        id: Uuid,
        reply: &Reply<EndpointWithSecret>,
    ) -> Result<EndpointWithSecret, NotificationsError> {
        let secret = signing::new_secret();
        let overlap =
            i32::try_from(self.inner.settings.webhooks.secret_overlap_hours).unwrap_or(24);
        let mut conn = self.inner.pool.get().await?;
        conn.transaction(async |conn| {
            let endpoint = endpoints::rotate_secret(conn, org_id, id, &secret, overlap)
                .await?
                .ok_or(NotificationsError::NotFound)?;
            let rotated = EndpointWithSecret {
                endpoint,
                secret: secret.clone(),
            };
            reply.record(conn, &rotated).await?;
            Ok(rotated)
        })
        .await
    }

    /// The URL, checked twice: its form (scheme, host, literal addresses), then what its
    /// host resolves to now. The sender checks again on every attempt (DNS can change).
    async fn check_url(&self, raw: &str) -> Result<String, NotificationsError> {
        let policy = self.inner.policy;
        let url = policy
            .check_url(raw.trim())
            .map_err(|why| NotificationsError::invalid("url", why.to_string()))?;
        policy
            .check_resolved(&url)
            .await
            .map_err(|why| NotificationsError::invalid("url", why.to_string()))?;
        Ok(url.to_string())
    }
}

fn check_event_types(types: &[String]) -> Result<(), NotificationsError> {
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(NotificationsError::invalid(
            "event_types",
            format!("list 1 to {MAX_EVENT_TYPES} event types, or [\"*\"] for all"),
        ));
    }
    types
        .iter()
        .filter(|t| t.as_str() != "*")
        .try_for_each(|t| check_event_type(t))
}

fn check_description(description: &str) -> Result<(), NotificationsError> {
    if description.chars().count() > 500 {
        return Err(NotificationsError::invalid(
            "description",
            "must be at most 500 characters",
        ));
    }
    if description.chars().any(char::is_control) {
        return Err(NotificationsError::invalid(
            "description",
            "must not contain control characters",
        ));
    }
    Ok(())
}

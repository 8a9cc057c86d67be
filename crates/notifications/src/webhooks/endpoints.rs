//! Webhook endpoints of an organization: create (the signing secret is shown once),
//! read, update, delete, rotate the secret. Every query is scoped by `org_id`, so another
//! organization's endpoint is "not found", exactly like a missing one.

use crate::error::NotificationsError;
use crate::preferences::check_event_type;
use crate::service::Notifications;
use crate::webhooks::signing;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use keel_http::Reply;
use keel_http::pagination::{Page, Paginated};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{DbError, OptionalExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most endpoints one organization may have: each event costs one delivery per endpoint.
pub const MAX_ENDPOINTS: i64 = 20;
/// Most event types one endpoint may list.
const MAX_EVENT_TYPES: usize = 50;

const COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, \
    consecutive_failures, breaker_open_until, previous_secret_expires_at, created_at, updated_at";

/// A webhook endpoint, without its secret.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct Endpoint {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    /// Event types delivered; `*` means every type.
    #[diesel(sql_type = Array<Text>)]
    pub event_types: Vec<String>,
    /// False once disabled by hand or after too many failures in a row.
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row (0 after any success).
    #[diesel(sql_type = Integer)]
    pub consecutive_failures: i32,
    /// While in the future the circuit breaker holds deliveries back.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub breaker_open_until: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs, after a rotation.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

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
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Event types to deliver, e.g. `["export.completed"]`, or `["*"]` for all.
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
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
        self
            .inner
            .pool
            .get().await?.transaction(async |conn| {
                    diesel::sql_query(
                        "SELECT pg_advisory_xact_lock(hashtextextended('notifications_webhook_endpoints:' || $1::text, 0))",
                    )
                    .bind::<SqlUuid, _>(org_id)
                    .execute(conn)
                    .await?;
                    let endpoint = diesel::sql_query(format!(
                        "INSERT INTO notifications_webhook_endpoints (id, org_id, url, description, event_types, secret) \
                         SELECT $1, $2, $3, $4, $5, $6 \
                         WHERE (SELECT count(*) FROM notifications_webhook_endpoints WHERE org_id = $2) < $7 \
                         RETURNING {COLUMNS}"
                    ))
                    .bind::<SqlUuid, _>(id)
                    .bind::<SqlUuid, _>(org_id)
                    .bind::<Text, _>(url)
                    .bind::<Text, _>(&input.description)
                    .bind::<Array<Text>, _>(&input.event_types)
                    .bind::<Text, _>(&secret)
                    .bind::<BigInt, _>(MAX_ENDPOINTS)
                    .get_result(conn)
                    .await
                    .map_err(DbError::from)
                    .optional()?;
                    let endpoint: Endpoint = endpoint.ok_or_else(|| {
                        NotificationsError::invalid(
                            "url",
                            format!("an organization may have at most {MAX_ENDPOINTS} webhook endpoints"),
                        )
                    })?;
                    let created = EndpointWithSecret { endpoint, secret: secret.clone() };
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
        let rows: Vec<Endpoint> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM notifications_webhook_endpoints \
             WHERE org_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind::<SqlUuid, _>(org_id)
        .bind::<Nullable<SqlUuid>, _>(page.after)
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut conn)
        .await?;
        Ok(Paginated::from_rows(rows, page, |e| e.id))
    }

    pub async fn endpoint(&self, org_id: Uuid, id: Uuid) -> Result<Endpoint, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM notifications_webhook_endpoints WHERE id = $1 AND org_id = $2"
        ))
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(org_id)
        .get_result(&mut conn)
        .await
        .map_err(DbError::from)
        .optional()?
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
        diesel::sql_query(format!(
            "UPDATE notifications_webhook_endpoints SET \
                 url = COALESCE($3, url), description = COALESCE($4, description), \
                 event_types = COALESCE($5, event_types), enabled = COALESCE($6, enabled), \
                 disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason \
                                        WHEN $6 THEN NULL ELSE 'disabled by a user' END, \
                 consecutive_failures = CASE WHEN $6 OR $3 IS NOT NULL THEN 0 ELSE consecutive_failures END, \
                 breaker_open_until = CASE WHEN $6 OR $3 IS NOT NULL THEN NULL ELSE breaker_open_until END, \
                 updated_at = now() \
             WHERE id = $1 AND org_id = $2 RETURNING {COLUMNS}"
        ))
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(org_id)
        .bind::<Nullable<Text>, _>(url)
        .bind::<Nullable<Text>, _>(changes.description)
        .bind::<Nullable<Array<Text>>, _>(changes.event_types)
        .bind::<Nullable<Bool>, _>(changes.enabled)
        .get_result(&mut conn)
        .await
        .map_err(DbError::from)
        .optional()?
        .ok_or(NotificationsError::NotFound)
    }

    /// Deletes the endpoint and its delivery log; queued deliveries find nothing to do.
    pub async fn delete_endpoint(&self, org_id: Uuid, id: Uuid) -> Result<(), NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let n = diesel::sql_query(
            "DELETE FROM notifications_webhook_endpoints WHERE id = $1 AND org_id = $2",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(org_id)
        .execute(&mut conn)
        .await?;
        if n == 0 {
            return Err(NotificationsError::NotFound);
        }
        Ok(())
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
            let endpoint: Endpoint = diesel::sql_query(format!(
                "UPDATE notifications_webhook_endpoints SET previous_secret = secret, \
                 previous_secret_expires_at = now() + make_interval(hours => $4::int), \
                 secret = $3, updated_at = now() \
             WHERE id = $1 AND org_id = $2 RETURNING {COLUMNS}"
            ))
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(org_id)
            .bind::<Text, _>(&secret)
            .bind::<Integer, _>(overlap)
            .get_result(conn)
            .await
            .map_err(DbError::from)
            .optional()?
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
            .map_err(|why| NotificationsError::invalid("url", why))?;
        policy
            .check_resolved(&url)
            .await
            .map_err(|why| NotificationsError::invalid("url", why))?;
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

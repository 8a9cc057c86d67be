//! API keys: created by owners and admins, shown once, stored hashed, limited by scopes,
//! revocable at once.

use crate::access;
use crate::error::AccountsError;
use crate::orgs::ListKey;
use crate::repo::{self, ApiKeyRow, AuditEvent, NewApiKeyRow};
use crate::service::Accounts;
use crate::token::{self, API_KEY_PREFIX};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use keel_http::{Caller, Page, Paginated, Reply, Scope};
use keel_persistence::AsyncConnection as _;
use uuid::Uuid;

/// Characters of the secret kept as the visible prefix (after `keel_key_`).
const VISIBLE: usize = 6;

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created key with its secret, which is never shown again.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyRow,
    pub secret: String,
}

impl Accounts {
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        org_id: Uuid,
        new: NewApiKey,
        reply: &Reply<CreatedApiKey>,
    ) -> Result<CreatedApiKey, AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_manage(caller)?;
        let name = crate::input::name("name", &new.name)?;
        let mut scopes = new
            .scopes
            .iter()
            .map(|text| Scope::parse(text, &self.scope_areas))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AccountsError::invalid("scopes", e.to_string()))?;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(AccountsError::invalid(
                "scopes",
                "give at least one scope, e.g. accounts:read",
            ));
        }
        if new.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(AccountsError::invalid(
                "expires_at",
                "must be in the future",
            ));
        }
        let secret = token::generate(API_KEY_PREFIX);
        let prefix: String = secret
            .token
            .chars()
            .take(API_KEY_PREFIX.len() + VISIBLE)
            .collect();
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let key = repo::insert_api_key(
                conn,
                NewApiKeyRow {
                    id: Uuid::now_v7(),
                    org_id,
                    created_by: caller.user_id(),
                    name: &name,
                    prefix: &prefix,
                    hash: &secret.hash,
                    scopes: &scopes,
                    expires_at: new.expires_at,
                },
            )
            .await?;
            repo::audit(
                conn,
                AuditEvent::by(
                    caller,
                    org_id,
                    "api_key.created",
                    Some(key.id),
                    serde_json::json!({ "name": key.name, "scopes": key.scopes }),
                ),
            )
            .await?;
            let created = CreatedApiKey {
                key,
                secret: secret.token,
            };
            reply.record(conn, &created).await?;
            Ok(created)
        })
        .await
    }

    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        org_id: Uuid,
        page: Page<ListKey>,
    ) -> Result<Paginated<ApiKeyRow>, AccountsError> {
        self.org_page(
            caller,
            org_id,
            page,
            access::can_manage,
            |c, org, limit, after| repo::list_api_keys(c, org, limit, after).boxed(),
            |k: &ApiKeyRow| (k.created_at, k.id),
        )
        .await
    }

    /// Revokes a key: it stops working at once on every instance (within the L1 TTL).
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        org_id: Uuid,
        key_id: Uuid,
    ) -> Result<(), AccountsError> {
        let org_id = access::same_org(caller, org_id)?;
        access::can_manage(caller)?;
        let hash = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let hash = repo::revoke_api_key(conn, org_id, key_id)
                    .await?
                    .ok_or(AccountsError::NotFound)?;
                repo::audit(
                    conn,
                    AuditEvent::by(
                        caller,
                        org_id,
                        "api_key.revoked",
                        Some(key_id),
                        serde_json::json!({}),
                    ),
                )
                .await?;
                Ok::<_, AccountsError>(hash)
            })
            .await?;
        self.keys.invalidate(&hex::encode(&hash)).await;
        Ok(())
    }
}

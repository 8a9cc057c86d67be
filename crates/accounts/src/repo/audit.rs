//! The audit trail: written in the transaction of the change it records, listed by admins.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::schema::accounts_audit_events as audit;
use keel_persistence::{DbResult, keyset};
use uuid::Uuid;

/// One entry of the audit trail, written in the transaction of the change it records.
#[derive(Debug)]
pub struct AuditEvent<'a> {
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub action: &'static str,
    pub target_id: Option<Uuid>,
    pub ip: Option<&'a str>,
    pub details: serde_json::Value,
}

impl AuditEvent<'static> {
    /// What `caller` did in `org_id`: the actor is the caller's user or API key.
    pub fn by(
        caller: &keel_http::Caller,
        org_id: Uuid,
        action: &'static str,
        target_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            org_id: Some(org_id),
            actor_user_id: caller.user_id(),
            actor_api_key_id: caller.api_key_id(),
            action,
            target_id,
            ip: None,
            details,
        }
    }
}

pub async fn audit(conn: &mut AsyncPgConnection, e: AuditEvent<'_>) -> DbResult<()> {
    diesel::insert_into(audit::table)
        .values((
            audit::id.eq(Uuid::now_v7()),
            audit::org_id.eq(e.org_id),
            audit::actor_user_id.eq(e.actor_user_id),
            audit::actor_api_key_id.eq(e.actor_api_key_id),
            audit::action.eq(e.action),
            audit::target_id.eq(e.target_id),
            audit::ip.eq(e.ip),
            audit::details.eq(e.details),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// An entry of the audit trail as the API shows it.
#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An organization's trail, newest first, after the `(created_at, id)` cursor.
pub async fn list_audit(
    conn: &AsyncPgConnection,
    org_id: Uuid,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> DbResult<Vec<AuditEntry>> {
    let mut query = audit::table
        .filter(audit::org_id.eq(org_id))
        .order((audit::created_at.desc(), audit::id.desc()))
        .select((
            audit::id,
            audit::action,
            audit::actor_user_id,
            audit::actor_api_key_id,
            audit::target_id,
            audit::ip,
            audit::details,
            audit::created_at,
        ))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(keyset::before("created_at, id", at, id));
    }
    query.load(&mut &*conn).await.map_err(Into::into)
}

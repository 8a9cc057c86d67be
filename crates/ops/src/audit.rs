//! The operators' audit log (`ops_audit`): every console action — sign-in, sign-out,
//! retry, discard, pause, resume — with the session that took it and where from.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use keel_persistence::{DbPool, DbResult};
use serde::Serialize;
use uuid::Uuid;

keel_persistence::text_enum! {
    /// What an operator did.
    pub enum Action {
        SignedIn = "signed_in",
        SignedOut = "signed_out",
        /// A failed sign-in (wrong token): no session, so the session id is `-`.
        SignInRefused = "sign_in_refused",
        RetriedJob = "retried_job",
        RetriedDead = "retried_dead",
        DiscardedJob = "discarded_job",
        DiscardedDead = "discarded_dead",
        PausedKind = "paused_kind",
        ResumedKind = "resumed_kind",
    }
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct AuditLine {
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub session_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub target: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub detail: serde_json::Value,
}

/// Who acted, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub session_id: String,
    pub ip: Option<String>,
}

/// Writes one line; its id, for [`outcome`].
pub async fn record(
    pool: &DbPool,
    actor: &Actor,
    action: Action,
    target: Option<&str>,
    detail: serde_json::Value,
) -> DbResult<Uuid> {
    let id = Uuid::now_v7();
    let mut conn = pool.get().await?;
    sql_query(
        "INSERT INTO ops_audit (id, session_id, ip, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(&actor.session_id)
    .bind::<Nullable<Text>, _>(actor.ip.as_deref())
    .bind::<Text, _>(action.as_str())
    .bind::<Nullable<Text>, _>(target)
    .bind::<Jsonb, _>(detail)
    .execute(&mut conn)
    .await?;
    Ok(id)
}

/// Adds what an action did to its line (`detail || outcome`). Actions are written before
/// they are taken, so none goes unlogged; a failure here loses only the count.
pub async fn outcome(pool: &DbPool, id: Uuid, outcome: serde_json::Value) {
    let written = async {
        let mut conn = pool.get().await?;
        sql_query("UPDATE ops_audit SET detail = detail || $2 WHERE id = $1")
            .bind::<SqlUuid, _>(id)
            .bind::<Jsonb, _>(outcome)
            .execute(&mut conn)
            .await?;
        Ok::<_, keel_persistence::DbError>(())
    }
    .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, audit.id = %id, "the outcome of an operator's action was not recorded");
    }
}

/// The latest `limit` lines, newest first.
pub async fn latest(pool: &DbPool, limit: i64) -> DbResult<Vec<AuditLine>> {
    let mut conn = pool.get().await?;
    sql_query(
        "SELECT at, session_id, ip, action, target, detail FROM ops_audit ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await
    .map_err(Into::into)
}

//! Clean-up of ended sessions and used or expired one-time tokens.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use keel_persistence::schema::{accounts_sessions as sessions, accounts_tokens as tokens};

/// Deletes sessions and one-time tokens that ended more than a day ago (a day of grace
/// keeps them visible while someone investigates), at most `limit` of each.
pub async fn purge_expired(conn: &mut AsyncPgConnection, limit: i64) -> DbResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    // The batch is chosen by a subquery on the same table, which diesel needs an alias for.
    let ended = diesel::alias!(sessions as ended_sessions);
    let ended_sessions = ended
        .select(ended.field(sessions::id))
        .filter(
            ended
                .field(sessions::expires_at)
                .lt(cutoff)
                .or(ended.field(sessions::revoked_at).lt(cutoff)),
        )
        .limit(limit);
    let deleted_sessions = diesel::delete(sessions::table)
        .filter(sessions::id.eq_any(ended_sessions))
        .execute(conn)
        .await?;
    let ended = diesel::alias!(tokens as ended_tokens);
    let ended_tokens = ended
        .select(ended.field(tokens::id))
        .filter(ended.field(tokens::expires_at).lt(cutoff))
        .limit(limit);
    let deleted_tokens = diesel::delete(tokens::table)
        .filter(tokens::id.eq_any(ended_tokens))
        .execute(conn)
        .await?;
    Ok(deleted_sessions + deleted_tokens)
}

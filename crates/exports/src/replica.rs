//! Reading from a replica without missing rows. A replica replays the primary's WAL a
//! little behind it: an export requested at position P must not read a replica that has
//! not replayed P yet, or rows committed before the request would be missing from a file
//! that looks complete. The request records P; the job waits until the replica has
//! passed it.

use diesel::pg::data_types::PgLsn;
use diesel::sql_types::{Bool, Nullable, PgLsn as SqlLsn};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;

#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = SqlLsn)]
    lsn: PgLsn,
}

#[derive(diesel::QueryableByName)]
struct CaughtUp {
    #[diesel(sql_type = Bool)]
    ok: bool,
}

/// The primary's current WAL position (call it on the primary, in the request's
/// transaction).
pub async fn primary_position(conn: &mut AsyncPgConnection) -> DbResult<PgLsn> {
    let position: Position = diesel::sql_query("SELECT pg_current_wal_lsn() AS lsn")
        .get_result(conn)
        .await?;
    Ok(position.lsn)
}

/// Whether the server behind `conn` holds everything up to `lsn`: a standby that has
/// replayed it, or a server that is not a standby at all.
pub async fn caught_up(conn: &mut AsyncPgConnection, lsn: Option<PgLsn>) -> DbResult<bool> {
    let Some(lsn) = lsn else {
        return Ok(true);
    };
    let answer: CaughtUp =
        diesel::sql_query("SELECT coalesce(pg_last_wal_replay_lsn() >= $1, true) AS ok")
            .bind::<Nullable<SqlLsn>, _>(Some(lsn))
            .get_result(conn)
            .await?;
    Ok(answer.ok)
}

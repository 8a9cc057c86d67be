//! What Postgres says about its own pressure: the slowest statements (from
//! `pg_stat_statements` when it is loaded), connections by state, the longest-running
//! transaction, and the queue table's dead rows.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_persistence::DbResult;
use serde::Serialize;

/// One normalised statement of `pg_stat_statements`.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct StatementStats {
    #[diesel(sql_type = Text)]
    pub query: String,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = Double)]
    pub mean_ms: f64,
    #[diesel(sql_type = Double)]
    pub total_ms: f64,
    #[diesel(sql_type = BigInt)]
    pub rows: i64,
}

/// The statements of this database that took the most time in all, or why they cannot
/// be read (the extension is not installed, or not preloaded).
pub async fn slowest_statements(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<StatementStats>, String> {
    #[derive(QueryableByName)]
    struct Installed {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        installed: bool,
    }
    let installed: Installed = sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed",
    )
    .get_result(conn)
    .await
    .map_err(|e| e.to_string())?;
    if !installed.installed {
        return Err(
            "pg_stat_statements is not installed in this database: add it to \
                    shared_preload_libraries, restart Postgres and run \
                    CREATE EXTENSION pg_stat_statements"
                .to_owned(),
        );
    }
    sql_query(
        "SELECT left(query, 400) AS query, calls, mean_exec_time AS mean_ms, \
                total_exec_time AS total_ms, rows \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY total_exec_time DESC LIMIT 15",
    )
    .load(conn)
    .await
    .map_err(|e| format!("pg_stat_statements cannot be read: {e}"))
}

/// Connections to this database by state (`active`, `idle`, `idle in transaction`...).
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct ConnectionState {
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = BigInt)]
    pub connections: i64,
    /// Of them, waiting for a lock.
    #[diesel(sql_type = BigInt)]
    pub waiting_on_locks: i64,
}

pub async fn connections(conn: &mut AsyncPgConnection) -> DbResult<Vec<ConnectionState>> {
    sql_query(
        "SELECT coalesce(state, 'background') AS state, count(*) AS connections, \
                count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_on_locks \
         FROM pg_stat_activity WHERE datname = current_database() \
         GROUP BY 1 ORDER BY 2 DESC",
    )
    .load(conn)
    .await
    .map_err(Into::into)
}

/// The transaction open the longest on this database (this query's own left out).
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct LongTransaction {
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    #[diesel(sql_type = Double)]
    pub seconds: f64,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Text)]
    pub application: String,
    #[diesel(sql_type = Text)]
    pub query: String,
}

pub async fn longest_transaction(
    conn: &mut AsyncPgConnection,
) -> DbResult<Option<LongTransaction>> {
    let rows: Vec<LongTransaction> = sql_query(
        "SELECT pid, extract(epoch FROM now() - xact_start)::float8 AS seconds, \
                coalesce(state, '') AS state, coalesce(application_name, '') AS application, \
                left(query, 400) AS query \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid() \
         ORDER BY xact_start LIMIT 1",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// The queue table's health: rows, dead tuples, last vacuum, size.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct TableHealth {
    #[diesel(sql_type = BigInt)]
    pub live_rows: i64,
    #[diesel(sql_type = BigInt)]
    pub dead_rows: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_autovacuum: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub autovacuum_count: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
}

impl TableHealth {
    /// What to do about it, if anything: dead rows are what a queue table produces most
    /// (every finished job leaves one), and a table autovacuum cannot keep up with slows
    /// every claim.
    pub fn hint(&self) -> Option<String> {
        let ratio = self.dead_rows as f64 / (self.live_rows.max(1)) as f64;
        (self.dead_rows > 10_000 && ratio > 0.2).then(|| {
            format!(
                "{:.0}% of queue_jobs' rows are dead: autovacuum is behind. Lower its \
                 autovacuum_vacuum_scale_factor (ALTER TABLE queue_jobs SET \
                 (autovacuum_vacuum_scale_factor = 0.01)), and look for long transactions \
                 holding vacuum back.",
                ratio * 100.0
            )
        })
    }
}

pub async fn queue_table(conn: &mut AsyncPgConnection) -> DbResult<Option<TableHealth>> {
    let rows: Vec<TableHealth> = sql_query(
        "SELECT n_live_tup AS live_rows, n_dead_tup AS dead_rows, last_autovacuum, \
                autovacuum_count, pg_total_relation_size(relid) AS bytes \
         FROM pg_stat_user_tables WHERE relname = 'queue_jobs'",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

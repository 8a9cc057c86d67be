//! Embedded migrations from the top-level `migrations/` folder.

use crate::error::{DbError, DbResult};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::collections::HashSet;

/// Every migration of the repository, compiled into the binary so `keel migrate` needs no
/// files at run time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Applies every pending migration on a fresh connection to `url` and returns the versions
/// applied. Runs on a blocking thread: diesel's harness is synchronous.
pub async fn run_migrations(url: &str) -> DbResult<Vec<String>> {
    let conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        harness
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| DbError::Unavailable(format!("migration failed: {e}")))
    })
    .await
    .map_err(|e| DbError::Unavailable(format!("migration task failed: {e}")))?
}

/// The versions of embedded migrations, as diesel records them.
pub fn embedded_versions() -> DbResult<Vec<String>> {
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(|e| DbError::Unavailable(format!("embedded migrations unreadable: {e}")))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Embedded migrations not yet applied to the database behind `conn` — for readiness:
/// an instance must not take traffic against a schema older than its code.
pub async fn pending_migrations(conn: &mut AsyncPgConnection) -> DbResult<Vec<String>> {
    let applied: Vec<AppliedVersion> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(conn)
            .await
            .or_else(|e| match DbError::from(e) {
                // No migration table yet: nothing applied.
                DbError::Query(diesel::result::Error::DatabaseError(_, info))
                    if info.message().contains("does not exist") =>
                {
                    Ok(Vec::new())
                }
                other => Err(other),
            })?;
    let applied: HashSet<String> = applied.into_iter().map(|a| a.version).collect();
    Ok(embedded_versions()?
        .into_iter()
        .filter(|v| !applied.contains(v))
        .collect())
}

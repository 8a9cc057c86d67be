//! Keel's PostgreSQL layer: the bounded pool, embedded migrations, the transaction
//! helper, the error classification every domain maps from, the table definitions, and
//! the per-test database harness.
//!
//! Repositories take `&mut AsyncPgConnection` rather than the pool, so a service can run
//! several of them — and enqueue jobs — in one transaction.

mod error;
mod migrate;
mod pool;
pub mod schema;
pub mod testing;
mod transaction;

pub use diesel_async::AsyncPgConnection;
pub use error::{DbError, DbResult, OptionalExt};
pub use migrate::{MIGRATIONS, embedded_versions, pending_migrations, run_migrations};
pub use pool::{DbPool, PoolStatus, PooledConn};

/// `SELECT 1` through the pool, for readiness checks.
pub async fn ping(pool: &DbPool) -> DbResult<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

//! Keel's PostgreSQL layer: the bounded pool, embedded migrations, the transaction
//! helper, the error classification every domain maps from, the table definitions, and
//! the per-test database harness.
//!
//! Repositories take `&mut AsyncPgConnection` rather than the pool, so a service can run
//! several of them — and enqueue jobs — in one transaction, with diesel-async's own API:
//!
//! ```ignore
//! use diesel_async::AsyncConnection;
//! let (user, job) = pool.get().await?.transaction(async |conn| {
//!     let user = users::insert(conn, &new_user).await?;
//!     let job = queue.enqueue(conn, &SendWelcome { user_id: user.id }).await?;
//!     Ok::<_, AccountsError>((user, job))
//! }).await?;
//! queue.ring([job]).await; // after the commit: only now can a worker see the row
//! ```
//!
//! The closure borrows what it needs (no clones, no boxing); the transaction commits when
//! it returns `Ok` and rolls back on `Err`, a panic or a dropped future. Cache
//! invalidations and doorbells belong after it returns.

mod error;
pub mod keyset;
mod migrate;
pub mod observe;
mod pool;
pub mod reads;
/// The table definitions, generated from the migrations by `just schema` (`diesel
/// print-schema` with `diesel.toml` and `schema.patch`); never edited by hand. The
/// `schema_rs_is_what_diesel_generates` test fails when it is stale.
pub mod schema;
pub mod testing;
mod text_enum;

#[doc(hidden)]
pub use diesel; // for `db_error_conversions!`
pub use diesel_async::{AsyncConnection, AsyncPgConnection};
pub use error::{DbError, DbResult, OptionalExt};
pub use migrate::{MIGRATIONS, embedded_versions, pending_migrations, run_migrations};
pub use pool::{DbPool, PoolStatus, PooledConn};
pub use text_enum::UnknownValue;

/// `SELECT 1` through the pool, for readiness checks.
pub async fn ping(pool: &DbPool) -> DbResult<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

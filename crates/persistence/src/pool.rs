//! The bounded PostgreSQL pool every crate shares.

use crate::error::{DbError, DbResult};
use crate::reads::{SharedReads, connect};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_config::DatabaseSettings;
use std::sync::Arc;
use std::time::Instant;

/// A pooled connection; derefs to [`AsyncPgConnection`].
pub type PooledConn = Object<AsyncPgConnection>;

/// The shared pool. Cheap to clone.
///
/// Bounded on purpose: when every connection is busy, [`DbPool::get`] waits at most the
/// configured acquire timeout and then fails with [`DbError::Busy`], which the HTTP layer
/// answers with 503 + `Retry-After`. A queue of requests waiting forever for a connection
/// is how a slow database takes the whole service down.
#[derive(Clone)]
pub struct DbPool {
    pool: Pool<AsyncPgConnection>,
    /// `None` when `database.read_connections` is 0: [`DbPool::read`] then uses the pool.
    reads: Option<Arc<SharedReads>>,
}

impl std::fmt::Debug for DbPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbPool")
            .field("status", &self.pool.status())
            .finish()
    }
}

/// Pool occupancy, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub in_use: usize,
    pub waiting: usize,
}

impl DbPool {
    /// Builds the pool. No connection is opened yet: the first `get` connects, so a
    /// database outage at start-up shows in `/health/ready` instead of a crash loop.
    pub fn new(settings: &DatabaseSettings) -> DbResult<Self> {
        Self::with_url(settings, settings.url.expose())
    }

    /// Like [`DbPool::new`] but for another database on the same server (tests).
    pub fn with_url(settings: &DatabaseSettings, url: &str) -> DbResult<Self> {
        let statement_timeout_ms = settings.statement_timeout_ms;
        // At 0 from the start, so `rate()` and `increase()` see the first timeouts.
        for name in [
            "keel_db_pool_timeouts_total",
            "keel_db_transaction_rollbacks_total",
            "keel_db_shared_reads_reconnects_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        let mut config = ManagerConfig::default();
        // deadpool's default checks every checkout with `SELECT 1`: a second round trip
        // (and transaction) for each request that reads once. A connection the server
        // closed is noticed without it (`is_broken` sees the closed socket), so the check
        // is for networks that drop connections silently only.
        if !settings.verify_on_checkout {
            config.recycling_method = RecyclingMethod::Fast;
        }
        config.custom_setup = Box::new(move |url| {
            connect(
                url,
                statement_timeout_ms,
                crate::observe::Observer::default(),
            )
            .boxed()
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.acquire_timeout()))
            .create_timeout(Some(settings.connect_timeout()))
            .recycle_timeout(Some(settings.connect_timeout()))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        let reads = SharedReads::new(settings, url).map(Arc::new);
        Ok(Self { pool, reads })
    }

    /// Runs one read-only statement — a page of a list — on a connection shared with
    /// other requests' reads, pipelined behind theirs (see [`crate::reads`]); through a
    /// pooled connection when `database.read_connections` is 0. Never for a statement in a
    /// transaction or one that writes. `read` may run twice: once more on a new connection
    /// when the shared one turns out to be closed.
    ///
    /// ```ignore
    /// let rows = pool.read(|conn| repo::list_members(conn, org_id, limit, after).boxed()).await?;
    /// ```
    pub async fn read<T, F>(&self, read: F) -> DbResult<T>
    where
        F: for<'c> Fn(&'c AsyncPgConnection) -> BoxFuture<'c, DbResult<T>>,
    {
        match &self.reads {
            Some(reads) => reads.run(read).await,
            None => {
                let conn = self.get().await?;
                read(&conn).await
            }
        }
    }

    /// Takes a connection, waiting at most the acquire timeout. The wait is recorded in
    /// `keel_db_pool_acquire_seconds`; a timeout also counts in `keel_db_pool_timeouts_total`.
    pub async fn get(&self) -> DbResult<PooledConn> {
        let started = Instant::now();
        let result = self.pool.get().await;
        metrics::histogram!("keel_db_pool_acquire_seconds").record(started.elapsed().as_secs_f64());
        result.map_err(|e| {
            let err = DbError::from(e);
            if matches!(err, DbError::Busy) {
                metrics::counter!("keel_db_pool_timeouts_total").increment(1);
            }
            err
        })
    }

    pub fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            in_use: s.size.saturating_sub(s.available),
            waiting: s.waiting,
        }
    }

    /// Publishes the pool gauges; called when `/metrics` is scraped.
    pub fn record_metrics(&self) {
        let s = self.status();
        metrics::gauge!("keel_db_pool_max_size").set(s.max_size as f64);
        metrics::gauge!("keel_db_pool_size").set(s.size as f64);
        metrics::gauge!("keel_db_pool_in_use").set(s.in_use as f64);
        metrics::gauge!("keel_db_pool_waiting").set(s.waiting as f64);
    }

    /// Closes the pool: idle connections and the shared read connections are dropped,
    /// later `get`s and `read`s fail.
    pub fn close(&self) {
        self.pool.close();
        if let Some(reads) = &self.reads {
            reads.close();
        }
    }
}

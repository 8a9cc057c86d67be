//! The crate's error type.

use std::time::Duration;

/// Why a cache operation that reports errors (pool set-up, [`crate::Cache::new`],
/// [`crate::Cache::ping`]) failed. Reads never return it: a Redis failure on the read
/// path degrades to the loader instead.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL could not be parsed. Only the error kind is kept, because the URL
    /// itself may carry a password.
    #[error("invalid redis url ({0})")]
    InvalidUrl(String),
    /// The connection pool could not be built.
    #[error("could not build the redis pool: {0}")]
    Pool(String),
    /// No connection could be taken from the pool (Redis down, pool exhausted).
    #[error("no redis connection: {0}")]
    Connection(#[from] deadpool_redis::PoolError),
    /// Redis answered with an error or the connection broke mid-command.
    #[error("redis command failed: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// [`crate::Cache::new`] was called outside a Tokio runtime, so the invalidation
    /// listener cannot be spawned.
    #[error("the cache must be created inside a Tokio runtime")]
    NoRuntime,
}

impl CacheError {
    pub(crate) fn invalid_url(err: &redis::RedisError) -> Self {
        Self::InvalidUrl(format!("{:?}", err.kind()))
    }
}

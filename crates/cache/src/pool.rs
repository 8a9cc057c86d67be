//! The shared deadpool-redis pool.

use crate::CacheError;
use deadpool_redis::{Manager, Pool, PoolConfig, Runtime, Timeouts};
use keel_config::RedisSettings;
use redis::AsyncConnectionConfig;

/// Builds the deadpool-redis pool every Keel crate shares.
///
/// Every timeout (waiting for a free connection, connecting, recycling, and each
/// command's response) is `redis.timeout`, so a dead or unreachable Redis makes each
/// operation fail within that bound instead of hanging request handlers. Building the
/// pool does not connect: it succeeds while Redis is down.
pub fn redis_pool(settings: &RedisSettings) -> Result<Pool, CacheError> {
    let timeout = settings.timeout();
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let manager = Manager::new_with_config(settings.url.expose().as_str(), connection)
        .map_err(|e| CacheError::invalid_url(&e))?;
    let mut config = PoolConfig::new(settings.pool_size.max(1));
    config.timeouts = Timeouts {
        wait: Some(timeout),
        create: Some(timeout),
        recycle: Some(timeout),
    };
    Pool::builder(manager)
        .config(config)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| CacheError::Pool(e.to_string()))
}

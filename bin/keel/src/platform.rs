//! The shared services every part of the process uses, built once from settings.

use keel_cache::Cache;
use keel_config::Settings;
use keel_persistence::DbPool;
use keel_queue::Queue;
use keel_storage::Storage;
use std::sync::Arc;

/// Pool, cache and queue handle. Cheap to clone; nothing here connects eagerly, so a
/// process starts (and reports itself not ready) while Postgres or Redis is down.
#[derive(Clone, Debug)]
pub struct Platform {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    /// The read replica's pool, when `database.replica_url` is set: heavy reads
    /// (exports) go there, sparing the primary.
    pub replica: Option<DbPool>,
    pub cache: Cache,
    pub queue: Queue,
    /// The Redis pool the cache uses, shared with domains that need Redis directly.
    pub redis: deadpool_redis::Pool,
    /// Where files live (uploads, exports).
    pub storage: Storage,
}

impl Platform {
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        keel_persistence::observe::log_slow_queries(settings.telemetry.slow_query());
        let pool = DbPool::new(&settings.database)?;
        let replica = settings
            .database
            .replica_url
            .non_empty()
            .map(|url| DbPool::with_url(&settings.database, url))
            .transpose()?;
        let redis = keel_cache::redis_pool(&settings.redis)?;
        let cache = Cache::new(&settings.cache, &settings.redis, redis.clone())?;
        let queue = Queue::new(&settings, pool.clone())?;
        let storage = Storage::new(&settings.storage)?;
        Ok(Self {
            settings,
            pool,
            replica,
            cache,
            queue,
            redis,
            storage,
        })
    }
}

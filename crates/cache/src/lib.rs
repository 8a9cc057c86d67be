//! Keel's read-through cache: an in-process L1 (moka: bounded, short TTL) over Redis L2
//! over a loader (normally Postgres).
//!
//! Why two tiers: an L1 hit costs about as much as serving static JSON, a Redis round
//! trip about seven times more, so hot reads must stay in process; Redis is the tier the
//! processes share and the channel that tells them to drop entries after a write.
//!
//! - Reads: [`Namespace::get_or_load`]. One load per key per process at a time; across
//!   processes a short Redis lock makes the others wait briefly for the winner's value.
//! - Writes: [`Namespace::invalidate`] after the transaction commits.
//! - Redis down: reads go to the loader (each Redis operation fails within the pool
//!   timeout), [`Cache::redis_available`] turns false, `keel_cache_redis_up` drops to 0,
//!   and the invalidation listener keeps reconnecting in the background.

mod error;
mod health;
mod invalidation;
mod jitter;
mod l2;
mod metrics;
mod namespace;
mod options;
mod pool;

pub use error::CacheError;
pub use namespace::Namespace;
pub use options::CacheOptions;
pub use pool::redis_pool;

use health::RedisHealth;
use invalidation::{Listener, ListenerConfig, Registry};
use keel_config::{CacheSettings, RedisSettings};
use l2::L2;
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// The cache of one process. Cheap to clone; every clone and every [`Namespace`] share
/// the same L1s, pool and listener. The listener stops when the last of them is dropped.
#[derive(Clone)]
pub struct Cache {
    shared: Arc<Shared>,
}

/// What a [`Cache`] and its namespaces share.
pub(crate) struct Shared {
    pub(crate) l2: L2,
    pub(crate) registry: Arc<Registry>,
    pub(crate) settings: CacheSettings,
    pub(crate) options: CacheOptions,
    pub(crate) key_prefix: String,
    pub(crate) channel: String,
    /// Identifies this instance in invalidation messages.
    pub(crate) origin: String,
    listener_connected: Arc<AtomicBool>,
    /// Dropped with the last clone, which ends the listener task.
    _shutdown: watch::Sender<()>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("key_prefix", &self.shared.key_prefix)
            .field("origin", &self.shared.origin)
            .field("redis_available", &self.redis_available())
            .field("namespaces", &self.shared.registry)
            .finish()
    }
}

impl Cache {
    /// Creates the cache with default [`CacheOptions`]; see [`Cache::with_options`].
    pub fn new(
        settings: &CacheSettings,
        redis: &RedisSettings,
        pool: deadpool_redis::Pool,
    ) -> Result<Cache, CacheError> {
        Self::with_options(settings, redis, pool, CacheOptions::default())
    }

    /// Creates the cache and spawns its invalidation listener, a subscription to
    /// `{key_prefix}:cache:invalidations`. Does not touch Redis itself, so it succeeds
    /// while Redis is down; the listener keeps reconnecting with backoff. Fails only on
    /// an unparsable Redis URL or outside a Tokio runtime.
    pub fn with_options(
        settings: &CacheSettings,
        redis: &RedisSettings,
        pool: deadpool_redis::Pool,
        options: CacheOptions,
    ) -> Result<Cache, CacheError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CacheError::NoRuntime)?;
        let client = redis::Client::open(redis.url.expose().as_str())
            .map_err(|e| CacheError::invalid_url(&e))?;

        let health = Arc::new(RedisHealth::new());
        let registry = Arc::new(Registry::default());
        let listener_connected = Arc::new(AtomicBool::new(false));
        let (shutdown, shutdown_rx) = watch::channel(());
        let origin = format!("{:016x}", rand::rng().random::<u64>());
        let channel = format!("{}:cache:invalidations", redis.key_prefix);

        let listener = Listener {
            client,
            config: ListenerConfig {
                channel: channel.clone(),
                origin: origin.clone(),
                timeout: redis.timeout(),
                backoff_min: options.reconnect_backoff_min,
                backoff_max: options.reconnect_backoff_max,
                ping_interval: options.listener_ping_interval,
            },
            registry: registry.clone(),
            health: health.clone(),
            connected: listener_connected.clone(),
            shutdown: shutdown_rx,
        };
        runtime.spawn(listener.run());

        Ok(Cache {
            shared: Arc::new(Shared {
                l2: L2::new(pool, redis.timeout(), health),
                registry,
                settings: settings.clone(),
                options,
                key_prefix: redis.key_prefix.clone(),
                channel,
                origin,
                listener_connected,
                _shutdown: shutdown,
            }),
        })
    }

    /// A typed namespace; see [`Namespace`]. Opening the same name and version twice
    /// (with the same `V`) returns handles to the same L1.
    pub fn namespace<V>(&self, name: &'static str, version: u32) -> Namespace<V>
    where
        V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        Namespace::new(self.shared.clone(), name, version)
    }

    /// PING through the pool, bounded by the Redis timeout (for `/health/ready`).
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.shared.l2.ping().await
    }

    /// Whether the last Redis operation succeeded. Cheap: reads an atomic.
    pub fn redis_available(&self) -> bool {
        self.shared.l2.health.is_up()
    }

    /// Whether the invalidation listener is subscribed right now. While it is not, this
    /// process may serve L1 entries that another process invalidated, for at most the L1
    /// TTL (and its L1 is cleared when it subscribes again).
    pub fn invalidation_listener_connected(&self) -> bool {
        self.shared.listener_connected.load(Ordering::Relaxed)
    }
}

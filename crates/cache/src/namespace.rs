//! A typed slice of the cache and its read path: L1 → L2 → loader.

use crate::invalidation::{L1Handle, Message};
use crate::jitter::{JitteredTtl, jittered};
use crate::{Shared, metrics};
use futures::future::BoxFuture;
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

type L1Cache<V> = moka::future::Cache<String, V>;

/// Keys of one kind of value, e.g. `("user", 3)`. In Redis a key becomes
/// `{key_prefix}:cache:{name}:v{version}:{key}`; bump the version when `V`'s serialized
/// shape changes so old entries are ignored (they expire on their own).
///
/// Cheap to clone. Each namespace has its own L1 of up to `l1_capacity` entries.
pub struct Namespace<V> {
    name: &'static str,
    /// `"{name}:v{version}"`: how invalidation messages address this namespace.
    id: Arc<str>,
    /// `"{key_prefix}:cache:{name}:v{version}:"`.
    key_base: Arc<str>,
    l1: L1Cache<V>,
    /// `keel_cache_requests_total{tier="l1"}` handles, resolved once: a registry lookup
    /// per read would cost more than the read.
    l1_hits: ::metrics::Counter,
    l1_misses: ::metrics::Counter,
    shared: Arc<Shared>,
}

impl<V> Clone for Namespace<V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            id: self.id.clone(),
            key_base: self.key_base.clone(),
            l1: self.l1.clone(),
            l1_hits: self.l1_hits.clone(),
            l1_misses: self.l1_misses.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<V> fmt::Debug for Namespace<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("id", &self.id)
            .field("l1_entries", &self.l1.entry_count())
            .finish()
    }
}

/// Outcome of one L2 read. A failed read is kept apart from a miss: after a failure the
/// read path stops talking to Redis, so a dead Redis costs one timeout, not four.
enum L2Read<V> {
    Hit(V),
    Miss,
    Failed,
}

impl<V> Namespace<V>
where
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    pub(crate) fn new(shared: Arc<Shared>, name: &'static str, version: u32) -> Self {
        let id: Arc<str> = format!("{name}:v{version}").into();
        let key_base: Arc<str> = format!("{}:cache:{id}:", shared.key_prefix).into();
        let l1 = shared.registry.get_or_register(&id, || L1 {
            name,
            cache: L1Cache::builder()
                .name(&id)
                .max_capacity(shared.settings.l1_capacity)
                .expire_after(JitteredTtl {
                    base: shared.settings.l1_ttl(),
                    percent: shared.settings.ttl_jitter_percent,
                })
                .build(),
        });
        Self {
            name,
            id,
            key_base,
            l1,
            l1_hits: metrics::request_counter(name, "l1", true),
            l1_misses: metrics::request_counter(name, "l1", false),
            shared,
        }
    }

    /// The Redis key under which `key` is stored in L2.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.key_base)
    }

    /// Returns the cached value for `key`, or calls `loader` and caches what it returns.
    ///
    /// L1, then L2, then `loader`. Concurrent calls for the same key in this process
    /// share one load; across processes a short Redis lock lets one process load while
    /// the others wait briefly for its value to appear in L2. Only `Ok` values are
    /// cached (use `V = Option<T>` to cache "not found"). A loader error is not cached
    /// and reaches every caller that shared the load, hence `Arc<E>`; `Arc<E>` is itself
    /// an error type when `E` is, so `?` into `anyhow::Error` works.
    ///
    /// Redis failures never surface here: they are counted and the read goes on to the
    /// loader.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(value) = self.l1.get(key).await {
            self.l1_hits.increment(1);
            return Ok(value);
        }
        self.l1_misses.increment(1);
        // Boxed: the miss path's future (moka's single-flight, Redis, the loader) is
        // kilobytes, and every future that awaits this one would otherwise carry and copy
        // it on every cached request.
        Box::pin(self.l1.try_get_with_by_ref(key, self.fill(key, loader))).await
    }

    /// Replaces the cached value of `key` with `value` — the row as a write just left
    /// it — in this process's L1 and in L2, after a change nobody must see at once: an
    /// activity timestamp, say. One Redis `SET`, no reload of the row and no message to
    /// the other processes, whose L1 copies age out within `cache.l1_ttl_ms`. Never for
    /// a change that takes something away (a revocation, a role): that is
    /// [`Namespace::invalidate`]'s job, and its repeated `DEL` also removes a `replace`
    /// that raced with it.
    pub async fn replace(&self, key: &str, value: V) {
        self.write_l2(&self.redis_key(key), &value).await;
        self.l1.insert(key.to_owned(), value).await;
    }

    /// Drops `key` everywhere. Call it after the writing transaction has committed.
    ///
    /// Removes the key from this process's L1, deletes it from L2 and publishes it so
    /// every other process drops it from its L1. A load that read the old row before the
    /// commit may still write it to L2 after the DEL; to close that window the DEL and
    /// publish are repeated once after [`crate::CacheOptions::invalidation_repeat_delay`]
    /// in a spawned task. Redis failures are counted, not returned: the entries then age
    /// out by TTL.
    pub async fn invalidate(&self, key: &str) {
        self.l1.invalidate(key).await;
        metrics::invalidation(self.name, "local");
        self.invalidate_l2(key).await;

        let delay = self.shared.options.invalidation_repeat_delay;
        if delay.is_zero() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let this = self.clone();
                let key = key.to_owned();
                runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    this.l1.invalidate(&key).await;
                    this.invalidate_l2(&key).await;
                });
            }
            Err(_) => {
                tracing::debug!(namespace = %self.id, "no Tokio runtime; invalidation not repeated")
            }
        }
    }

    async fn invalidate_l2(&self, key: &str) {
        let message = Message {
            origin: Cow::Borrowed(&self.shared.origin),
            namespace: Cow::Borrowed(&self.id),
            key: Cow::Borrowed(key),
        };
        match serde_json::to_string(&message) {
            Ok(message) => {
                // A failure is already counted and logged by the L2 tier.
                let _ = self
                    .shared
                    .l2
                    .delete_and_publish(&self.redis_key(key), &self.shared.channel, &message)
                    .await;
            }
            Err(e) => {
                tracing::warn!(namespace = %self.id, error = %e, "could not encode invalidation")
            }
        }
    }

    /// The L1 miss path; runs once per key at a time in this process.
    async fn fill<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let redis_key = self.redis_key(key);
        match self.read_l2(&redis_key, true).await {
            L2Read::Hit(value) => return Ok(value),
            L2Read::Failed => return self.load(loader).await,
            L2Read::Miss => {}
        }

        let l2 = &self.shared.l2;
        let options = &self.shared.options;
        let lock_key = format!("{redis_key}:lock");
        let token = format!(
            "{}:{:016x}",
            self.shared.origin,
            rand::rng().random::<u64>()
        );
        let locked = match l2.try_lock(&lock_key, &token, options.lock_ttl).await {
            Ok(true) => true,
            Ok(false) => match self.wait_for_l2(&redis_key).await {
                Some(value) => return Ok(value),
                None => false,
            },
            Err(_) => return self.load(loader).await,
        };

        let result = self.load(loader).await;
        if let Ok(value) = &result {
            self.write_l2(&redis_key, value).await;
        }
        if locked {
            // On failure the lock simply expires after `lock_ttl`.
            let _ = l2.unlock(&lock_key, &token).await;
        }
        result
    }

    async fn load<F, Fut, E>(&self, loader: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        metrics::load(self.name);
        loader().await
    }

    /// Another process holds the load lock: give it a bounded time to fill L2.
    async fn wait_for_l2(&self, redis_key: &str) -> Option<V> {
        let options = &self.shared.options;
        for _ in 0..options.lock_poll_attempts {
            tokio::time::sleep(options.lock_poll_interval).await;
            match self.read_l2(redis_key, false).await {
                L2Read::Hit(value) => {
                    metrics::lock_wait(self.name, true);
                    return Some(value);
                }
                L2Read::Miss => {}
                L2Read::Failed => return None,
            }
        }
        metrics::lock_wait(self.name, false);
        None
    }

    /// `count` is false for the lock-wait polls, so one read counts as one L2 request.
    async fn read_l2(&self, redis_key: &str, count: bool) -> L2Read<V> {
        let bytes = match self.shared.l2.get(redis_key).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                if count {
                    metrics::request(self.name, "l2", false);
                }
                return L2Read::Miss;
            }
            Err(_) => return L2Read::Failed,
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => {
                if count {
                    metrics::request(self.name, "l2", true);
                }
                L2Read::Hit(value)
            }
            Err(e) => {
                // Written by an older shape of `V` under the same version: a miss; the
                // load that follows overwrites it.
                tracing::debug!(namespace = %self.id, error = %e, "undecodable L2 entry treated as a miss");
                if count {
                    metrics::request(self.name, "l2", false);
                }
                L2Read::Miss
            }
        }
    }

    async fn write_l2(&self, redis_key: &str, value: &V) {
        let settings = &self.shared.settings;
        if settings.l2_ttl().is_zero() {
            return;
        }
        let bytes = match serde_json::to_vec(value) {
            Ok(bytes) => bytes,
            Err(e) => {
                metrics::error("encode");
                tracing::debug!(namespace = %self.id, error = %e, "value not encodable; not written to L2");
                return;
            }
        };
        let ttl = jittered(settings.l2_ttl(), settings.ttl_jitter_percent);
        // A failure is already counted and logged by the L2 tier.
        let _ = self.shared.l2.set(redis_key, &bytes, ttl).await;
    }
}

/// A namespace's L1 as the invalidation registry sees it.
pub(crate) struct L1<V> {
    name: &'static str,
    cache: L1Cache<V>,
}

impl<V> AsRef<L1Cache<V>> for L1<V> {
    fn as_ref(&self) -> &L1Cache<V> {
        &self.cache
    }
}

impl<V> L1Handle for L1<V>
where
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.cache.invalidate(key))
    }

    fn clear(&self) {
        self.cache.invalidate_all();
    }

    fn as_any(&self) -> &dyn Any {
        &self.cache
    }
}

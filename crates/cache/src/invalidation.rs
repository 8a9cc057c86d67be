//! Cross-process L1 invalidation over Redis pub/sub.
//!
//! A write deletes the key from L2 and publishes `{namespace, key}` on
//! `{key_prefix}:cache:invalidations`; every process's listener drops the key from its
//! own L1. Pub/sub is fire-and-forget, so a listener that was disconnected may have
//! missed messages: on every (re)subscription it clears its whole L1.

use crate::health::RedisHealth;
use crate::metrics;
use futures::StreamExt;
use futures::future::BoxFuture;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// What travels on the channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Message<'a> {
    /// The publishing [`crate::Cache`] instance, so it can skip its own messages (it has
    /// already dropped the key locally).
    #[serde(borrow)]
    pub(crate) origin: Cow<'a, str>,
    /// `"{name}:v{version}"`, the registry key of the namespace.
    #[serde(borrow)]
    pub(crate) namespace: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) key: Cow<'a, str>,
}

/// A namespace's L1 with its value type erased, so the listener can reach every
/// namespace without knowing its `V`.
pub(crate) trait L1Handle: Send + Sync {
    fn name(&self) -> &'static str;
    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
    fn clear(&self);
    /// The typed L1 (a `moka::future::Cache<String, V>`), for reuse by a later
    /// [`crate::Cache::namespace`] call with the same name, version and type.
    fn as_any(&self) -> &dyn Any;
}

/// The L1 caches of one [`crate::Cache`], keyed by `"{name}:v{version}"`. Normally one
/// per key; more only if the same name and version were opened with different value
/// types (a bug, warned about when it happens).
#[derive(Default)]
pub(crate) struct Registry {
    namespaces: RwLock<HashMap<String, Vec<Arc<dyn L1Handle>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.read().keys().cloned().collect();
        f.debug_struct("Registry")
            .field("namespaces", &names)
            .finish()
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<Arc<dyn L1Handle>>>> {
        // A panic while holding the lock cannot leave the map half-updated (every write
        // is a single push), so a poisoned lock is still safe to use.
        self.namespaces.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The registered L1 for `id` of type `T` (what [`L1Handle::as_any`] exposes), or
    /// the one `create` makes, registered first.
    pub(crate) fn get_or_register<T, H>(&self, id: &str, create: impl FnOnce() -> H) -> T
    where
        T: Clone + 'static,
        H: L1Handle + AsRef<T> + 'static,
    {
        let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        let entries = map.entry(id.to_owned()).or_default();
        if let Some(existing) = entries.iter().find_map(|h| h.as_any().downcast_ref::<T>()) {
            return existing.clone();
        }
        if !entries.is_empty() {
            tracing::warn!(
                namespace = id,
                "cache namespace opened with a second value type; its L2 entries will not decode for one of them"
            );
        }
        let handle = create();
        let typed = handle.as_ref().clone();
        entries.push(Arc::new(handle));
        typed
    }

    fn handles(&self, id: &str) -> Vec<Arc<dyn L1Handle>> {
        self.read().get(id).cloned().unwrap_or_default()
    }

    pub(crate) async fn invalidate(&self, id: &str, key: &str) {
        for handle in self.handles(id) {
            handle.invalidate(key).await;
            metrics::invalidation(handle.name(), "remote");
        }
    }

    pub(crate) fn clear_all(&self) {
        for handle in self.read().values().flatten() {
            handle.clear();
        }
    }
}

/// Timing of the listener.
#[derive(Debug, Clone)]
pub(crate) struct ListenerConfig {
    pub(crate) channel: String,
    pub(crate) origin: String,
    /// Bound on connecting and subscribing, and on each health-check PING.
    pub(crate) timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// A silently dead TCP connection never ends the message stream; a periodic PING
    /// detects it.
    pub(crate) ping_interval: Duration,
}

/// The background task. It owns nothing of the [`crate::Cache`] but the registry and
/// health, and stops when the cache's `shutdown` sender is dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) client: redis::Client,
    pub(crate) config: ListenerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) health: Arc<RedisHealth>,
    pub(crate) connected: Arc<AtomicBool>,
    pub(crate) shutdown: watch::Receiver<()>,
}

enum Ended {
    Shutdown,
    Lost(String),
}

impl Listener {
    pub(crate) async fn run(mut self) {
        let mut backoff = self.config.backoff_min;
        loop {
            let subscribed = tokio::select! {
                _ = self.shutdown.changed() => return,
                r = tokio::time::timeout(self.config.timeout, subscribe(&self.client, &self.config.channel)) => r,
            };
            match subscribed {
                Ok(Ok(pubsub)) => {
                    self.health.success();
                    self.registry.clear_all();
                    self.connected.store(true, Ordering::Relaxed);
                    tracing::debug!("cache invalidation listener subscribed; L1 cleared");
                    backoff = self.config.backoff_min;
                    let ended = self.listen(pubsub).await;
                    self.connected.store(false, Ordering::Relaxed);
                    match ended {
                        Ended::Shutdown => return,
                        Ended::Lost(reason) => self.health.failure("listen", &reason),
                    }
                }
                Ok(Err(e)) => self.health.failure("subscribe", &e),
                Err(_) => self.health.failure("subscribe", &"timed out"),
            }
            let pause = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
            tokio::select! {
                _ = self.shutdown.changed() => return,
                () = tokio::time::sleep(pause) => {}
            }
            backoff = backoff.saturating_mul(2).min(self.config.backoff_max);
        }
    }

    async fn listen(&mut self, pubsub: redis::aio::PubSub) -> Ended {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(self.config.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = self.shutdown.changed() => return Ended::Shutdown,
                msg = stream.next() => match msg {
                    Some(msg) => self.handle(msg.get_payload_bytes()).await,
                    None => return Ended::Lost("subscription connection closed".to_owned()),
                },
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(self.config.timeout, sink.ping::<redis::Value>()).await;
                    match pong {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Lost(e.to_string()),
                        Err(_) => return Ended::Lost("ping timed out".to_owned()),
                    }
                }
            }
        }
    }

    async fn handle(&self, payload: &[u8]) {
        match serde_json::from_slice::<Message<'_>>(payload) {
            Ok(msg) if msg.origin == self.config.origin => {}
            Ok(msg) => self.registry.invalidate(&msg.namespace, &msg.key).await,
            Err(e) => tracing::debug!(error = %e, "ignoring malformed cache invalidation message"),
        }
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

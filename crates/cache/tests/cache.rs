//! Integration tests against a real Redis.
//!
//! The shared server comes from `KEEL_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/0`); each test writes under its own random key prefix, so they
//! run in parallel and never flush anything. Tests that need Redis to die start their own
//! `redis-server` on a free port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keel_cache::{Cache, CacheOptions, Namespace, redis_pool};
use keel_config::{CacheSettings, RedisSettings, Secret};
use keel_testing::{OwnRedis, free_port, wait_until};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn shared_redis_url() -> String {
    std::env::var("KEEL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

fn random_prefix() -> String {
    format!("keel_test_{:016x}", rand::rng().random::<u64>())
}

fn redis_settings(url: &str, prefix: &str, timeout_ms: u64) -> RedisSettings {
    RedisSettings {
        url: Secret::new(url.to_owned()),
        key_prefix: prefix.to_owned(),
        pool_size: 8,
        timeout_ms,
    }
}

fn cache_settings(l1_ttl_ms: u64, l2_ttl_secs: u64, jitter: u8) -> CacheSettings {
    CacheSettings {
        l1_capacity: 10_000,
        l1_ttl_ms,
        l2_ttl_secs,
        ttl_jitter_percent: jitter,
    }
}

/// A second `Cache` built this way stands for a second process: its own pool, L1s and
/// listener.
fn cache(cache: &CacheSettings, redis: &RedisSettings, options: CacheOptions) -> Cache {
    Cache::with_options(cache, redis, redis_pool(redis).unwrap(), options).unwrap()
}

fn shared_cache(prefix: &str, l1_ttl_ms: u64) -> Cache {
    cache(
        &cache_settings(l1_ttl_ms, 60, 10),
        &redis_settings(&shared_redis_url(), prefix, 2000),
        CacheOptions::default(),
    )
}

/// Waits for the listener's first subscription, which clears L1, so a test's first
/// reads are not wiped by it.
async fn wait_listening(cache: &Cache) {
    assert!(
        wait_until(Duration::from_secs(5), || async {
            cache.invalidation_listener_connected()
        })
        .await,
        "invalidation listener never subscribed"
    );
}

async fn direct(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Removes what a test wrote on the shared server (everything expires anyway).
async fn cleanup(prefix: &str) {
    let mut conn = direct(&shared_redis_url()).await;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// A loader that counts its calls and returns `value`.
fn counting<V>(
    calls: &Arc<AtomicUsize>,
    value: V,
) -> impl FnOnce() -> Ready<Result<V, Infallible>> {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value))
    }
}

async fn read(ns: &Namespace<String>, key: &str, calls: &Arc<AtomicUsize>, value: &str) -> String {
    ns.get_or_load(key, counting(calls, value.to_owned()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_hit_l1_then_l2_then_loader() {
    let prefix = random_prefix();
    let a = shared_cache(&prefix, 30_000);
    let b = shared_cache(&prefix, 30_000);
    wait_listening(&a).await;
    wait_listening(&b).await;
    let ns_a = a.namespace::<String>("item", 1);
    let ns_b = b.namespace::<String>("item", 1);
    let (calls_a, calls_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    // Cold: L1 miss, L2 miss, loader; the value lands in L2 as JSON.
    assert_eq!(read(&ns_a, "k", &calls_a, "v1").await, "v1");
    assert_eq!(calls_a.load(Ordering::SeqCst), 1);
    let mut conn = direct(&shared_redis_url()).await;
    let stored: Option<String> = redis::cmd("GET")
        .arg(ns_a.redis_key("k"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("\"v1\""));
    assert_eq!(ns_a.redis_key("k"), format!("{prefix}:cache:item:v1:k"));

    // Another process: L1 miss, L2 hit, its loader is not called.
    assert_eq!(read(&ns_b, "k", &calls_b, "other").await, "v1");
    assert_eq!(calls_b.load(Ordering::SeqCst), 0);

    // With L2 gone, both still answer without loading: that can only be L1.
    let _: () = redis::cmd("DEL")
        .arg(ns_a.redis_key("k"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(read(&ns_a, "k", &calls_a, "other").await, "v1");
    assert_eq!(read(&ns_b, "k", &calls_b, "other").await, "v1");
    assert_eq!(calls_a.load(Ordering::SeqCst), 1);
    assert_eq!(calls_b.load(Ordering::SeqCst), 0);
    assert!(a.redis_available() && b.redis_available());
    a.ping().await.unwrap();

    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalidation_reaches_another_instance() {
    let prefix = random_prefix();
    // A 30 s L1 TTL: only the pub/sub message can explain B reloading within 2 s.
    let a = shared_cache(&prefix, 30_000);
    let b = shared_cache(&prefix, 30_000);
    wait_listening(&a).await;
    wait_listening(&b).await;
    let ns_a = a.namespace::<String>("user", 1);
    let ns_b = b.namespace::<String>("user", 1);
    let (calls_a, calls_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    assert_eq!(read(&ns_a, "42", &calls_a, "old").await, "old");
    assert_eq!(read(&ns_b, "42", &calls_b, "old").await, "old");
    assert_eq!(read(&ns_b, "42", &calls_b, "new").await, "old");
    assert_eq!(calls_b.load(Ordering::SeqCst), 0, "B filled its L1 from L2");

    // The write commits "new", then A invalidates.
    ns_a.invalidate("42").await;
    let start = Instant::now();
    let mut seen = String::new();
    while start.elapsed() < Duration::from_secs(2) {
        seen = read(&ns_b, "42", &calls_b, "new").await;
        if seen == "new" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen, "new",
        "B still served the old value 2 s after the invalidation"
    );
    assert_eq!(calls_b.load(Ordering::SeqCst), 1);
    assert_eq!(read(&ns_a, "42", &calls_a, "new").await, "new");

    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_cold_reads_load_once() {
    let prefix = random_prefix();
    let cache = shared_cache(&prefix, 30_000);
    let ns = cache.namespace::<String>("hot", 1);
    let calls = Arc::new(AtomicUsize::new(0));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (ns, calls) = (ns.clone(), calls.clone());
            tokio::spawn(async move {
                ns.get_or_load("cold", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, Infallible>("value".to_owned())
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "value");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_cold_reads_in_two_instances_load_once() {
    let prefix = random_prefix();
    let options = CacheOptions {
        lock_poll_attempts: 100,
        ..CacheOptions::default()
    };
    let settings = cache_settings(30_000, 60, 10);
    let redis = redis_settings(&shared_redis_url(), &prefix, 2000);
    let a = cache(&settings, &redis, options.clone());
    let b = cache(&settings, &redis, options);
    let calls = Arc::new(AtomicUsize::new(0));

    let tasks: Vec<_> = [
        a.namespace::<String>("hot", 1),
        b.namespace::<String>("hot", 1),
    ]
    .into_iter()
    .map(|ns| {
        let calls = calls.clone();
        tokio::spawn(async move {
            ns.get_or_load("cold", || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, Infallible>("value".to_owned())
            })
            .await
            .unwrap()
        })
    })
    .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "value");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the lock loser waited for L2"
    );

    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loader_errors_pass_through_uncached() {
    let prefix = random_prefix();
    let cache = shared_cache(&prefix, 30_000);
    let ns = cache.namespace::<Option<String>>("maybe", 1);

    let err = ns
        .get_or_load("k", || async { Err::<Option<String>, _>("database down") })
        .await
        .unwrap_err();
    assert_eq!(*err, "database down");

    // Not cached: the next read loads again; "not found" is cached like any value.
    let none = ns
        .get_or_load("k", || async { Ok::<_, Infallible>(None) })
        .await
        .unwrap();
    assert_eq!(none, None);
    let again = ns
        .get_or_load("k", || async {
            Ok::<_, Infallible>(Some("late".to_owned()))
        })
        .await
        .unwrap();
    assert_eq!(again, None);

    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_redis_falls_back_to_loader() {
    let prefix = random_prefix();
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let cache = cache(
        &cache_settings(30_000, 60, 10),
        &redis_settings(&url, &prefix, 300),
        CacheOptions::default(),
    );
    let ns = cache.namespace::<String>("item", 1);
    let calls = Arc::new(AtomicUsize::new(0));

    let start = Instant::now();
    assert_eq!(read(&ns, "a", &calls, "va").await, "va");
    assert_eq!(read(&ns, "b", &calls, "vb").await, "vb");
    assert_eq!(
        read(&ns, "a", &calls, "other").await,
        "va",
        "L1 still works"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!cache.redis_available());

    let start = Instant::now();
    assert!(cache.ping().await.is_err());
    assert!(start.elapsed() < Duration::from_secs(2));
    ns.invalidate("a").await;
    assert!(!cache.invalidation_listener_connected());
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopping_and_returning() {
    let prefix = random_prefix();
    let port = free_port();
    let mut server = OwnRedis::start_on(port);
    let options = CacheOptions {
        reconnect_backoff_max: Duration::from_millis(500),
        ..CacheOptions::default()
    };
    let cache = cache(
        &cache_settings(30_000, 60, 10),
        &redis_settings(&server.url(), &prefix, 300),
        options,
    );
    wait_listening(&cache).await;
    let ns = cache.namespace::<String>("item", 1);
    let calls = Arc::new(AtomicUsize::new(0));

    assert_eq!(read(&ns, "a", &calls, "va").await, "va");
    assert!(cache.redis_available());

    server.stop();
    let start = Instant::now();
    assert_eq!(read(&ns, "b", &calls, "vb").await, "vb");
    assert_eq!(read(&ns, "a", &calls, "other").await, "va");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!cache.redis_available());
    assert!(cache.ping().await.is_err());

    let _server = OwnRedis::start_on(port);
    let mut n = 0;
    let recovered = {
        let start = Instant::now();
        loop {
            n += 1;
            read(&ns, &format!("c{n}"), &calls, "vc").await;
            if cache.redis_available() || start.elapsed() > Duration::from_secs(10) {
                break cache.redis_available();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(recovered, "redis_available() did not recover");
    cache.ping().await.unwrap();

    // Resubscribed: invalidations may have been missed meanwhile, so L1 was cleared and
    // "a" (absent from the new, empty server) is loaded again.
    wait_listening(&cache).await;
    let before = calls.load(Ordering::SeqCst);
    assert_eq!(read(&ns, "a", &calls, "va2").await, "va2");
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn l2_ttl_is_jittered() {
    let prefix = random_prefix();
    let cache = cache(
        &cache_settings(30_000, 100, 20),
        &redis_settings(&shared_redis_url(), &prefix, 2000),
        CacheOptions::default(),
    );
    let ns = cache.namespace::<u32>("ttl", 1);
    let mut conn = direct(&shared_redis_url()).await;
    let mut ttls = Vec::new();
    for i in 0..30u32 {
        let key = i.to_string();
        ns.get_or_load(&key, || async move { Ok::<_, Infallible>(i) })
            .await
            .unwrap();
        let ttl: i64 = redis::cmd("TTL")
            .arg(ns.redis_key(&key))
            .query_async(&mut conn)
            .await
            .unwrap();
        ttls.push(ttl);
    }
    for ttl in &ttls {
        assert!(
            (79..=120).contains(ttl),
            "TTL {ttl} outside 100 s ± 20 %: {ttls:?}"
        );
    }
    ttls.sort_unstable();
    ttls.dedup();
    assert!(ttls.len() > 1, "all TTLs equal: no jitter");

    cleanup(&prefix).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn old_shape_in_l2_is_a_miss() {
    let prefix = random_prefix();
    let cache = shared_cache(&prefix, 30_000);
    let ns = cache.namespace::<Item>("item", 1);
    let mut conn = direct(&shared_redis_url()).await;
    let _: () = redis::cmd("SET")
        .arg(ns.redis_key("7"))
        .arg(r#"{"id":7,"title":"old shape"}"#)
        .query_async(&mut conn)
        .await
        .unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let item = Item {
        id: 7,
        name: "seven".to_owned(),
    };
    let loaded = ns
        .get_or_load("7", counting(&calls, item.clone()))
        .await
        .unwrap();
    assert_eq!(loaded, item);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Overwritten with the current shape, and with a TTL.
    let stored: String = redis::cmd("GET")
        .arg(ns.redis_key("7"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Item>(&stored).unwrap(), item);
    let ttl: i64 = redis::cmd("TTL")
        .arg(ns.redis_key("7"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0);

    cleanup(&prefix).await;
}

//! One-minute windows of every replica's metrics, in Redis: how the console shows the
//! whole deployment rather than the replica that happened to serve the page.
//!
//! Every process (`serve`, `work`, `all`) renders its own Prometheus exposition every
//! `admin.metrics_window_secs`, takes the difference of each counter and histogram bucket
//! since its last turn, and adds the non-zero ones with `HINCRBYFLOAT` to the hash of the
//! current minute, `{prefix}:ops:w:{minute}`. Addition commutes, so N replicas writing
//! into one hash leave the deployment's totals there, whatever their order; a restarted
//! process starts from zero and adds what it counted since. Gauges (pool occupancy,
//! breakers) cannot be added up that way: each replica sets its latest value under its
//! own field of `{prefix}:ops:g:{minute}`, and the reader sums or maxes them. Hashes live
//! 65 minutes: the console's longest window is an hour.

use crate::samples::{self, Sample};
use deadpool_redis::Pool;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// How long a minute's hashes live: the longest window, plus a margin.
const KEEP_SECS: i64 = 65 * 60;
/// A replica that has not published for this long is no longer listed.
const STALE_SECS: i64 = 90;

/// How a metric family enters the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treat {
    /// Cumulative: the difference since the last turn is added.
    Counter,
    /// Cumulative buckets, sum and count, added like counters.
    Histogram,
    /// Only `_sum` and `_count`: calls and mean time, without the buckets' cardinality.
    SumCount,
    /// The latest value, per replica.
    Gauge,
}

/// The families the console reads; nothing else is sent to Redis.
const FAMILIES: &[(&str, Treat)] = &[
    ("keel_http_requests_total", Treat::Counter),
    ("keel_http_request_duration_seconds", Treat::Histogram),
    ("keel_jobs_started_total", Treat::Counter),
    ("keel_jobs_succeeded_total", Treat::Counter),
    ("keel_jobs_failed_total", Treat::Counter),
    ("keel_jobs_dead_total", Treat::Counter),
    ("keel_job_duration_seconds", Treat::Histogram),
    ("keel_cache_requests_total", Treat::Counter),
    ("keel_webhook_attempts_total", Treat::Counter),
    ("keel_webhook_failures_total", Treat::Counter),
    ("keel_webhook_latency_seconds", Treat::Histogram),
    ("keel_ai_attempts_total", Treat::Counter),
    ("keel_ai_failures_total", Treat::Counter),
    ("keel_ai_latency_seconds", Treat::Histogram),
    ("keel_db_pool_acquire_seconds", Treat::Histogram),
    ("keel_db_pool_timeouts_total", Treat::Counter),
    ("keel_db_statement_seconds", Treat::SumCount),
    ("keel_db_statement_timeouts_total", Treat::Counter),
    ("keel_db_transaction_rollbacks_total", Treat::Counter),
    ("keel_db_pool_in_use", Treat::Gauge),
    ("keel_db_pool_waiting", Treat::Gauge),
    ("keel_db_pool_size", Treat::Gauge),
    ("keel_db_pool_max_size", Treat::Gauge),
    ("keel_cache_redis_up", Treat::Gauge),
    ("keel_webhook_breaker_open", Treat::Gauge),
    ("keel_ai_breaker_open", Treat::Gauge),
];

/// Labels left out of the windows: the latency histogram by status would multiply its
/// buckets by every status a route answers; the request counter keeps the status.
const DROPPED: &[(&str, &str)] = &[("keel_http_request_duration_seconds", "status")];

/// The family of a sample name and how it is treated; `None` for what the console does
/// not read.
fn family(name: &str) -> Option<(&'static str, Treat)> {
    FAMILIES
        .iter()
        .copied()
        .find(|(family, treat)| match treat {
            Treat::Counter | Treat::Gauge => name == *family,
            Treat::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family)),
            Treat::SumCount => ["_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family)),
        })
}

/// The window key of a sample (`name{labels}`, dropped labels removed), or `None`.
fn key_of(sample: &Sample<'_>) -> Option<(String, Treat)> {
    let (family, treat) = family(sample.name)?;
    let dropped: Vec<&str> = DROPPED
        .iter()
        .filter(|(f, _)| *f == family)
        .map(|(_, label)| *label)
        .collect();
    let labels = if dropped.is_empty() {
        sample.labels.to_owned()
    } else {
        let kept: Vec<(String, String)> = samples::labels(sample.labels)
            .into_iter()
            .filter(|(name, _)| !dropped.contains(&name.as_str()))
            .collect();
        samples::write_labels(&kept)
    };
    Some((format!("{}{{{labels}}}", sample.name), treat))
}

/// What one turn sends: the increments of the cumulative series, the latest gauges.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Turn {
    pub increments: Vec<(String, f64)>,
    pub gauges: Vec<(String, f64)>,
    /// The totals the increments lead to: what the next turn starts from, once Redis has
    /// them ([`Publisher::sent`]).
    totals: HashMap<String, f64>,
}

/// A process's side: remembers what it last sent, so each turn sends the difference.
#[derive(Debug, Default)]
pub struct Publisher {
    last: Mutex<HashMap<String, f64>>,
}

impl Publisher {
    /// The turn for exposition `text`: every cumulative series that moved since the
    /// last turn Redis took (summed over dropped labels first), every gauge as it is.
    pub(crate) fn turn(&self, text: &str) -> Turn {
        let mut current: HashMap<String, f64> = HashMap::new();
        let mut gauges = Vec::new();
        for sample in samples::parse(text) {
            let Some((key, treat)) = key_of(&sample) else {
                continue;
            };
            if treat == Treat::Gauge {
                gauges.push((key, sample.value));
            } else {
                *current.entry(key).or_default() += sample.value;
            }
        }
        let Ok(last) = self.last.lock() else {
            return Turn::default();
        };
        let mut increments: Vec<(String, f64)> = current
            .iter()
            .filter_map(|(key, now)| {
                let before = last.get(key).copied().unwrap_or(0.0);
                // A counter never goes down in one process; if it did, count from zero.
                let delta = if *now >= before { now - before } else { *now };
                (delta > 0.0).then(|| (key.clone(), delta))
            })
            .collect();
        increments.sort_by(|a, b| a.0.cmp(&b.0));
        Turn {
            increments,
            gauges,
            totals: current,
        }
    }

    /// Redis took `turn`: the next one counts from its totals. A turn that failed is not
    /// marked, so its increments go out with the next one instead of being lost.
    pub(crate) fn sent(&self, turn: Turn) {
        if let Ok(mut last) = self.last.lock() {
            *last = turn.totals;
        }
    }

    /// Sends one turn of `text` to Redis, as `instance` (`role`: serve, work, all).
    pub async fn publish(
        &self,
        redis: &Pool,
        prefix: &str,
        instance: &str,
        role: &str,
        text: &str,
    ) -> Result<(), redis::RedisError> {
        let turn = self.turn(text);
        let now = chrono::Utc::now().timestamp();
        let minute = now / 60;
        let windows = format!("{prefix}:ops:w:{minute}");
        let gauges = format!("{prefix}:ops:g:{minute}");
        let mut pipe = redis::pipe();
        for (key, delta) in &turn.increments {
            pipe.cmd("HINCRBYFLOAT")
                .arg(&windows)
                .arg(key)
                .arg(*delta)
                .ignore();
        }
        for (key, value) in &turn.gauges {
            pipe.cmd("HSET")
                .arg(&gauges)
                .arg(format!("{instance}|{key}"))
                .arg(*value)
                .ignore();
        }
        for key in [&windows, &gauges] {
            pipe.cmd("EXPIRE").arg(key).arg(KEEP_SECS).ignore();
        }
        pipe.cmd("HSET")
            .arg(format!("{prefix}:ops:replicas"))
            .arg(instance)
            .arg(format!("{role} {now}"))
            .ignore();
        let mut conn = redis
            .get()
            .await
            .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "pool", e.to_string())))?;
        pipe.query_async::<()>(&mut conn).await?;
        self.sent(turn);
        Ok(())
    }

    /// Publishes every `every` until `shutdown` resolves, and once more then, so the last
    /// seconds of a stopping process are not lost. `render` gives the exposition text.
    pub async fn run(
        self,
        redis: Pool,
        prefix: String,
        role: &'static str,
        every: Duration,
        render: impl Fn() -> String + Send + 'static,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let instance = keel_telemetry::instance();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                () = &mut shutdown => true,
            };
            if let Err(e) = self
                .publish(&redis, &prefix, instance, role, &render())
                .await
            {
                tracing::debug!(error = %e, "metrics windows not published");
            }
            if stopping {
                return;
            }
        }
    }
}

/// One series of a window: its family sample name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Entry {
    /// The value of label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn parse(key: &str, value: f64) -> Option<Self> {
        let sample = samples::parse_series(key, value)?;
        Some(Self {
            name: sample.name.to_owned(),
            labels: samples::labels(sample.labels),
            value: sample.value,
        })
    }
}

/// One minute of the deployment: the sum of every replica's increments.
#[derive(Debug, Clone, Default)]
pub struct Minute {
    /// Unix seconds of the minute's start.
    pub start: i64,
    pub entries: Vec<Entry>,
}

/// One minute of gauges: each replica's latest value per series.
#[derive(Debug, Clone, Default)]
pub struct GaugeMinute {
    pub start: i64,
    /// `(instance, entry)`.
    pub values: Vec<(String, Entry)>,
}

/// A process that published lately.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replica {
    pub instance: String,
    pub role: String,
    pub seconds_ago: i64,
}

/// The console's side: reads the windows back.
#[derive(Clone)]
pub struct Windows {
    redis: Pool,
    prefix: String,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the windows of the last `n` minutes hold.
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// Oldest first; the last one is the current, partial minute.
    pub minutes: Vec<Minute>,
    pub gauges: Vec<GaugeMinute>,
    pub replicas: Vec<Replica>,
    /// Seconds covered, from the oldest minute's start to now.
    pub seconds: f64,
}

impl Windows {
    pub fn new(redis: Pool, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
        }
    }

    /// The last `n` minutes (the current one included), their gauges and the replicas
    /// that published in the last 90 s.
    pub async fn recent(&self, n: i64) -> Result<Recent, redis::RedisError> {
        let now = chrono::Utc::now().timestamp();
        let current = now / 60;
        let first = current - n + 1;
        let mut pipe = redis::pipe();
        for minute in first..=current {
            pipe.cmd("HGETALL")
                .arg(format!("{}:ops:w:{minute}", self.prefix));
            pipe.cmd("HGETALL")
                .arg(format!("{}:ops:g:{minute}", self.prefix));
        }
        pipe.cmd("HGETALL")
            .arg(format!("{}:ops:replicas", self.prefix));
        let mut conn =
            self.redis.get().await.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Io, "pool", e.to_string()))
            })?;
        let mut hashes: Vec<BTreeMap<String, f64>> = Vec::new();
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let (last, pairs) = replies.split_last().unzip();
        for reply in pairs.unwrap_or_default() {
            hashes.push(redis::from_redis_value_ref(reply).unwrap_or_default());
        }
        let registered: BTreeMap<String, String> = last
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or_default();
        let mut recent = Recent {
            seconds: (now - first * 60).max(1) as f64,
            ..Recent::default()
        };
        for (i, pair) in hashes.chunks(2).enumerate() {
            let start = (first + i as i64) * 60;
            recent.minutes.push(Minute {
                start,
                entries: pair[0]
                    .iter()
                    .filter_map(|(k, v)| Entry::parse(k, *v))
                    .collect(),
            });
            recent.gauges.push(GaugeMinute {
                start,
                values: pair
                    .get(1)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| {
                        let (instance, key) = k.split_once('|')?;
                        Some((instance.to_owned(), Entry::parse(key, *v)?))
                    })
                    .collect(),
            });
        }
        let mut gone = Vec::new();
        for (instance, value) in registered {
            let (role, at) = value.split_once(' ').unwrap_or(("?", "0"));
            let ago = now - at.parse::<i64>().unwrap_or(0);
            if ago > KEEP_SECS {
                gone.push(instance);
            } else if ago <= STALE_SECS {
                recent.replicas.push(Replica {
                    instance,
                    role: role.to_owned(),
                    seconds_ago: ago,
                });
            }
        }
        if !gone.is_empty() {
            let _: Result<(), _> = redis::cmd("HDEL")
                .arg(format!("{}:ops:replicas", self.prefix))
                .arg(&gone)
                .query_async(&mut conn)
                .await;
        }
        Ok(recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = "\
keel_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 10
keel_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/a\",status=\"200\"} 8
keel_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/a\",status=\"404\"} 1
keel_db_pool_in_use 3
keel_unrelated_total 99
";
    const SECOND: &str = "\
keel_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 15
keel_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/a\",status=\"200\"} 8
keel_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/a\",status=\"404\"} 3
keel_db_pool_in_use 1
";

    #[test]
    fn a_turn_sends_what_moved_since_the_last_one() {
        let publisher = Publisher::default();
        let first = publisher.turn(FIRST);
        let unsent = publisher.turn(FIRST);
        assert_eq!(
            unsent.increments, first.increments,
            "until Redis takes a turn, it is sent again"
        );
        publisher.sent(unsent);
        let bucket =
            "keel_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/a\"}";
        let requests = "keel_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"}";
        assert_eq!(
            first.increments,
            [(bucket.to_owned(), 9.0), (requests.to_owned(), 10.0)],
            "the status is summed out of the buckets; unrelated families stay home"
        );
        assert_eq!(first.gauges, [("keel_db_pool_in_use{}".to_owned(), 3.0)]);
        let second = publisher.turn(SECOND);
        assert_eq!(
            second.increments,
            [(bucket.to_owned(), 2.0), (requests.to_owned(), 5.0)]
        );
        publisher.sent(second);
        assert!(publisher.turn(SECOND).increments.is_empty());
    }
}

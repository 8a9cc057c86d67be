//! The Redis tier: the few commands the cache sends, each bounded in time and each
//! feeding [`RedisHealth`], so callers only decide what a failure means for them.

use crate::CacheError;
use crate::health::RedisHealth;
use deadpool_redis::Pool;
use redis::{Cmd, FromRedisValue, Pipeline};
use std::sync::Arc;
use std::time::Duration;

/// Deletes the lock only if it still holds our token, so a slow loader whose lock
/// expired cannot release the lock another process took since.
const UNLOCK_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

#[derive(Debug)]
pub(crate) struct L2 {
    pool: Pool,
    /// Bound on one whole operation (checkout + command). The pool's own timeouts
    /// already bound each step; this guards against a step that has none.
    deadline: Duration,
    pub(crate) health: Arc<RedisHealth>,
}

impl L2 {
    pub(crate) fn new(pool: Pool, timeout: Duration, health: Arc<RedisHealth>) -> Self {
        Self {
            pool,
            deadline: timeout.saturating_mul(2),
            health,
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        self.query::<String>("ping", &redis::cmd("PING"))
            .await
            .map(drop)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.query("get", redis::cmd("GET").arg(key)).await
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let ttl_ms = ttl_millis(ttl);
        self.query(
            "set",
            redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl_ms),
        )
        .await
    }

    /// `SET key token NX PX ttl`: true if this caller now holds the lock.
    pub(crate) async fn try_lock(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .to_owned();
        self.query::<Option<String>>("lock", &cmd)
            .await
            .map(|r| r.is_some())
    }

    pub(crate) async fn unlock(&self, key: &str, token: &str) -> Result<(), CacheError> {
        let cmd = redis::cmd("EVAL")
            .arg(UNLOCK_SCRIPT)
            .arg(1)
            .arg(key)
            .arg(token)
            .to_owned();
        self.query::<i64>("unlock", &cmd).await.map(drop)
    }

    /// DEL and PUBLISH in one round trip.
    pub(crate) async fn delete_and_publish(
        &self,
        key: &str,
        channel: &str,
        message: &str,
    ) -> Result<(), CacheError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(key).ignore();
        pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
        self.query_pipe("invalidate", &pipe).await
    }

    async fn query<T: FromRedisValue>(&self, op: &'static str, cmd: &Cmd) -> Result<T, CacheError> {
        let attempt = async {
            let mut conn = self.pool.get().await?;
            Ok(cmd.query_async::<T>(&mut conn).await?)
        };
        self.settle(op, tokio::time::timeout(self.deadline, attempt).await)
    }

    async fn query_pipe<T: FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, CacheError> {
        let attempt = async {
            let mut conn = self.pool.get().await?;
            Ok(pipe.query_async::<T>(&mut conn).await?)
        };
        self.settle(op, tokio::time::timeout(self.deadline, attempt).await)
    }

    fn settle<T>(
        &self,
        op: &'static str,
        outcome: Result<Result<T, CacheError>, tokio::time::error::Elapsed>,
    ) -> Result<T, CacheError> {
        let result = outcome.unwrap_or(Err(CacheError::Timeout(self.deadline)));
        match &result {
            Ok(_) => self.health.success(),
            Err(e) => self.health.failure(op, e),
        }
        result
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

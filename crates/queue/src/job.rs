//! What a job is, what its handler receives, and how a handler reports failure.

use keel_cache::Cache;
use keel_config::Settings;
use keel_persistence::{DbError, DbPool};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A kind of background job: its payload type plus the stable facts about it.
///
/// Handlers must be idempotent: delivery is at least once (a worker can die after the
/// side effect and before recording success). Key side effects with a unique constraint
/// (e.g. on the job id) so a second run does nothing.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable name, `"domain.verb_noun"`. Stored in every row and used as the Redis queue
    /// name, so renaming it strands queued jobs: add a new kind instead.
    const NAME: &'static str;
    /// Attempts before the job is dead; `None` uses `queue.default_max_attempts`.
    const MAX_ATTEMPTS: Option<u32> = None;
    /// Time limit of one attempt; `None` uses `queue.default_timeout_secs`.
    const TIMEOUT: Option<Duration> = None;
}

/// What a handler gets besides its payload. Domain services a handler needs are
/// captured by the handler closure at registration.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub pool: DbPool,
    pub cache: Cache,
    pub settings: Arc<Settings>,
    pub job_id: Uuid,
    /// 1 on the first attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    /// The attempt's `job.run` span, for what only the handler learns (see
    /// [`JobContext::record_org`]).
    pub span: tracing::Span,
}

impl JobContext {
    /// Marks the attempt's span with the organization it works for (`org.id`), so an
    /// operator finds an organization's jobs in the traces. Payloads carry ids, not the
    /// organization, so the handler records it once it has loaded its row.
    pub fn record_org(&self, org_id: uuid::Uuid) {
        self.span.record("org.id", tracing::field::display(org_id));
    }

    /// True when this attempt is the last one: a failure now makes the job dead.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Transient (network, timeout, database busy): retried with backoff until the job's
    /// attempts run out.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Retrying cannot help (bad payload, a referenced row is gone): the job goes dead at
    /// once, to be inspected and retried by hand.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
    /// Transient, and the handler knows when to try again (a receiver's `Retry-After`,
    /// its own backoff): like `Retry`, but the next attempt waits this long.
    #[error("{1:#} (retry in {0:?})")]
    RetryAfter(Duration, anyhow::Error),
    /// Not attempted at all (a circuit breaker is open): run again after this long
    /// without using up an attempt.
    #[error("deferred for {0:?}: {1}")]
    Defer(Duration, String),
}

impl JobError {
    pub fn retry(err: impl Into<anyhow::Error>) -> Self {
        JobError::Retry(err.into())
    }

    pub fn permanent(err: impl Into<anyhow::Error>) -> Self {
        JobError::Permanent(err.into())
    }

    pub fn retry_after(delay: Duration, err: impl Into<anyhow::Error>) -> Self {
        JobError::RetryAfter(delay, err.into())
    }
}

impl From<anyhow::Error> for JobError {
    fn from(err: anyhow::Error) -> Self {
        JobError::Retry(err)
    }
}

impl From<DbError> for JobError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => JobError::Permanent(err.into()),
            other => JobError::Retry(other.into()),
        }
    }
}

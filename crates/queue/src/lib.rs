//! Durable background jobs: Postgres is the record, apalis + Redis the delivery path.
//!
//! 1. [`Queue::enqueue`] writes a `queue_jobs` row on the caller's connection, inside its
//!    transaction: a rolled-back request leaves no job, a committed one always has it.
//! 2. After commit, [`Queue::ring`] pushes the job id to the kind's apalis queue.
//! 3. A worker claims the row with a conditional UPDATE (attempt + 1, lease), runs the
//!    handler within a timeout and inside the enqueuing request's trace, then marks it
//!    succeeded, or failed with exponential backoff and jitter, or dead after its maximum
//!    attempts. `attempts` fences the claim: a stale worker cannot overwrite a newer one.
//! 4. The reconciler (one at a time, advisory lock) re-rings rows whose doorbell was lost
//!    or whose lease expired.
//! 5. Handlers are idempotent: delivery is at least once.
//!
//! 6. Operators inspect, retry, discard and pause through [`Queue`]'s operator methods
//!    (the ops console and `/admin/jobs`); a paused kind's jobs wait untouched.
//!
//! Domain crates implement [`Job`] for their payloads and register handlers on a
//! [`Registry`]; the binary starts [`Workers`] with it.

pub mod backoff;
mod cron;
mod doorbell;
mod inspect;
mod job;
mod operate;
mod queue;
mod reconciler;
mod registry;
mod repo;
mod runner;
mod workers;

pub use doorbell::{Doorbell, DoorbellError};
pub use inspect::{JobState, JobStatus, KindCounts};
pub use job::{Job, JobContext, JobError};
pub use operate::{DeadFilter, JobDetail, PausedKind};
pub use queue::{EnqueueOptions, Enqueued, Queue};
pub use reconciler::PassReport;
pub use registry::{Registry, RegistryError, is_kind_name};
pub use workers::Workers;

//! The job kinds a worker process can run, and its periodic jobs.

use crate::job::{Job, JobContext, JobError};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type ErasedHandler = Arc<
    dyn Fn(JobContext, serde_json::Value) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync,
>;

/// One registered job kind.
#[derive(Clone)]
pub(crate) struct JobSpec {
    pub handler: ErasedHandler,
    /// Jobs of this kind run at once per process; `None`: `queue.concurrency`.
    pub concurrency: Option<usize>,
}

/// Enqueues one job per tick of a cron schedule.
pub(crate) type MakeJob = Arc<dyn Fn() -> serde_json::Result<serde_json::Value> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Periodic {
    pub name: &'static str,
    pub schedule: cron::Schedule,
    pub make: MakeJob,
    pub max_attempts: Option<u32>,
    pub timeout: Option<Duration>,
}

/// Collects handlers from the domain crates (`jobs::register(&mut registry, ...)`); the
/// binary hands the result to [`crate::Workers`].
#[derive(Default, Clone)]
pub struct Registry {
    pub(crate) jobs: BTreeMap<&'static str, JobSpec>,
    pub(crate) periodic: Vec<Periodic>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("jobs", &self.jobs.keys().collect::<Vec<_>>())
            .field(
                "periodic",
                &self.periodic.iter().map(|p| p.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("job kind {0:?} is registered twice")]
    Duplicate(&'static str),
    #[error("job name {0:?} must look like \"domain.verb_noun\" (lowercase, one dot)")]
    BadName(&'static str),
    #[error("cron schedule {schedule:?} of {name:?} is invalid: {reason}")]
    BadSchedule {
        name: &'static str,
        schedule: String,
        reason: String,
    },
    #[error("job kind {0:?} has no registered handler")]
    NoHandler(&'static str),
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of job kind `J`. The handler is an async closure that owns
    /// (clones of) the services it needs.
    pub fn register<J, F, Fut>(&mut self, handler: F) -> Result<&mut Self, RegistryError>
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        check_name(J::NAME)?;
        if self.jobs.contains_key(J::NAME) {
            return Err(RegistryError::Duplicate(J::NAME));
        }
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |ctx, payload| {
            let handler = handler.clone();
            async move {
                let job: J = serde_json::from_value(payload).map_err(|e| {
                    JobError::permanent(anyhow::anyhow!("payload is not a valid {}: {e}", J::NAME))
                })?;
                handler(ctx, job).await
            }
            .boxed()
        });
        self.jobs.insert(
            J::NAME,
            JobSpec {
                handler: erased,
                concurrency: None,
            },
        );
        Ok(self)
    }

    /// Runs at most `limit` jobs of kind `J` at once per worker process (instead of
    /// `queue.concurrency`): for jobs bound by something scarcer than this machine, such
    /// as a third party's rate limit.
    pub fn concurrency<J: Job>(&mut self, limit: usize) -> Result<&mut Self, RegistryError> {
        let spec = self
            .jobs
            .get_mut(J::NAME)
            .ok_or(RegistryError::NoHandler(J::NAME))?;
        spec.concurrency = Some(limit.max(1));
        Ok(self)
    }

    /// The concurrency of `kind`, when it has its own.
    pub(crate) fn concurrency_of(&self, kind: &str) -> Option<usize> {
        self.jobs.get(kind).and_then(|spec| spec.concurrency)
    }

    /// Runs `make()` as job kind `J` once per tick of `schedule` (cron syntax with seconds:
    /// `"0 */5 * * * *"` = every five minutes) — once per tick across all worker processes:
    /// every process enqueues the tick, a unique key lets only the first row in.
    pub fn periodic<J, M>(&mut self, schedule: &str, make: M) -> Result<&mut Self, RegistryError>
    where
        J: Job,
        M: Fn() -> J + Send + Sync + 'static,
    {
        if !self.jobs.contains_key(J::NAME) {
            return Err(RegistryError::NoHandler(J::NAME));
        }
        let parsed =
            cron::Schedule::from_str(schedule).map_err(|e| RegistryError::BadSchedule {
                name: J::NAME,
                schedule: schedule.to_owned(),
                reason: e.to_string(),
            })?;
        self.periodic.push(Periodic {
            name: J::NAME,
            schedule: parsed,
            make: Arc::new(move || serde_json::to_value(make())),
            max_attempts: J::MAX_ATTEMPTS,
            timeout: J::TIMEOUT,
        });
        Ok(self)
    }

    /// The registered job kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.jobs.keys().copied().collect()
    }
}

/// Whether `name` is a job kind: `domain.verb_noun`, each part a lowercase letter then
/// lowercase letters, digits and `_` — the rule of the `queue_jobs.kind` check
/// constraint, for anything that takes a kind from outside (a form, a command line).
pub fn is_kind_name(name: &str) -> bool {
    let valid_part = |p: &str| {
        let mut chars = p.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    name.split_once('.')
        .is_some_and(|(domain, verb)| valid_part(domain) && valid_part(verb))
}

pub(crate) fn check_name(name: &'static str) -> Result<(), RegistryError> {
    if is_kind_name(name) {
        Ok(())
    } else {
        Err(RegistryError::BadName(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Slow;
    impl Job for Slow {
        const NAME: &'static str = "test.slow";
    }

    #[test]
    fn a_kind_may_have_its_own_concurrency_once_registered() {
        let mut registry = Registry::new();
        assert!(matches!(
            registry.concurrency::<Slow>(2),
            Err(RegistryError::NoHandler("test.slow"))
        ));
        registry
            .register(|_: JobContext, _: Slow| async { Ok(()) })
            .expect("register");
        assert_eq!(registry.concurrency_of("test.slow"), None);
        registry.concurrency::<Slow>(2).expect("concurrency");
        assert_eq!(registry.concurrency_of("test.slow"), Some(2));
        registry.concurrency::<Slow>(0).expect("concurrency");
        assert_eq!(
            registry.concurrency_of("test.slow"),
            Some(1),
            "at least one"
        );
    }

    #[test]
    fn names_are_domain_dot_verb_noun() {
        assert!(check_name("accounts.send_email").is_ok());
        assert!(check_name("exports.build_csv2").is_ok());
        assert!(check_name("SendEmail").is_err());
        assert!(check_name("accounts.send.email").is_err());
        assert!(check_name("accounts.").is_err());
        assert!(check_name(".send").is_err());
    }
}
